"""The Optuna sampler and pruner an ``optimize`` section becomes (its checks are in ``rlpipe.spec.optimize``)."""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler, GridSampler
from optuna.trial import FrozenTrial, TrialState

from rlpipe.runtime.seeding import keyed_child
from rlpipe.spec.optimize import PRUNER_METHODS, SAMPLER_CLASSES
from rlpipe.spec.search_space import grid_values


def _grid(settings: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid sampler's grid: ``sampler_kwargs["search_space"]`` (rlberry's way) or the declarative search space."""
    explicit = settings["sampler_kwargs"].get("search_space")
    return {k: list(v) for k, v in explicit.items()} if explicit else grid_values(settings["search_space"])


def _sampler_factory(settings: Mapping[str, Any], study_seed: int) -> Callable[[int], BaseSampler]:
    method = settings["sampler_method"]
    kwargs = {k: v for k, v in settings["sampler_kwargs"].items() if k != "search_space"}
    sampler = getattr(optuna.samplers, SAMPLER_CLASSES[method])
    if method == "grid":
        grid = _grid(settings)
        # GridSampler shuffles the grid with its seed and records each trial's point as an index into
        # that order: every trial must share one order, or two trials get one point and others none.
        return lambda seed: GridSampler(grid, seed=study_seed, **kwargs)
    if method == "cmaes":
        kwargs.setdefault("warn_independent_sampling", False)  # categorical dimensions are sampled at random, by design
    return lambda seed: sampler(seed=seed, **kwargs)


def make_pruner(method: str) -> optuna.pruners.BasePruner:
    """Successive halving as rlberry configures it, the median rule, or no pruning."""
    if method == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4, min_early_stopping_rate=0)
    if method == "median":
        return optuna.pruners.MedianPruner()
    if method == "none":
        return optuna.pruners.NopPruner()
    # the schema allows only the names above, but a task typed on the command line is not validated
    raise ValueError(f"pruner_method must be one of {', '.join(PRUNER_METHODS)}, got {method!r}")


class TrialSeededSampler(BaseSampler):
    """Delegates each trial to a fresh sampler seeded from (study seed, trial number).

    Optuna's samplers draw from one generator per process, so which proposals a trial gets would
    depend on how many trials that process ran before and on how trials were spread over workers.
    Rebuilding the sampler per trial makes a trial's proposal a function of its number and of the
    study's other trials only (none for random search).
    """

    def __init__(self, factory: Callable[[int], BaseSampler], seed: np.random.SeedSequence) -> None:
        self._factory, self._seed = factory, seed
        self._samplers: dict[int, BaseSampler] = {}
        self._lock = threading.Lock()

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            if trial.number not in self._samplers:
                seed = int(keyed_child(self._seed, trial.number).generate_state(1)[0])
                self._samplers[trial.number] = self._factory(seed)
            return self._samplers[trial.number]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: Any) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        with self._lock:
            sampler = self._samplers.pop(trial.number, None)
        # GridSampler's after_trial only stops an optimize() loop once the grid is done; workers cap
        # the trial count at the grid size instead (Study.stop cannot be called outside optimize()).
        if sampler is not None and not isinstance(sampler, GridSampler):
            sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to reseed: every trial's seed comes from its number."""


def make_sampler(settings: Mapping[str, Any], seed: np.random.SeedSequence) -> TrialSeededSampler:
    """The study's sampler, reseeded for every trial from ``seed`` and the trial number."""
    study_seed = int(seed.generate_state(1)[0])
    return TrialSeededSampler(_sampler_factory(settings, study_seed), seed)


def grid_size(settings: Mapping[str, Any]) -> int | None:
    """How many points the grid sampler has to propose (None for the other samplers)."""
    if settings["sampler_method"] != "grid":
        return None
    return math.prod(len(values) for values in _grid(settings).values())
