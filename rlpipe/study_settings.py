"""What an ``optimize`` section may say, and the Optuna sampler and pruner it becomes.

Checked before any trial runs (by config validation and by ``ExperimentManager.optimize_hyperparams``),
so a bad setting fails at once instead of in every trial.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler, GridSampler
from optuna.trial import FrozenTrial, TrialState

from rlpipe.agents.base import Agent
from rlpipe.search_space import (
    check_dimension,
    defines_sample_parameters,
    grid_problems,
    grid_values,
    suggested_names,
    tuned_keys,
)
from rlpipe.seeding import keyed_child
from rlpipe.signatures import accepted_keywords, rejected_keywords

SAMPLER_CLASSES = {"optuna_default": "TPESampler", "random": "RandomSampler", "grid": "GridSampler", "cmaes": "CmaEsSampler"}
PRUNER_METHODS = ("halving", "median", "none")


def sampler_problems(method: str, sampler_kwargs: Mapping[str, Any], search_space: Mapping[str, Any] | None) -> list[str]:
    """What is wrong with a sampler's settings, checked before any trial runs."""
    if method not in SAMPLER_CLASSES:
        return [f"sampler_method: '{method}' is not one of {', '.join(SAMPLER_CLASSES)}"]
    problems = []
    if "seed" in sampler_kwargs:
        problems.append("sampler_kwargs.seed: the sampler is seeded by rlpipe from the study's seed (set `seed` instead)")
    explicit_grid = method == "grid" and "search_space" in sampler_kwargs
    others = [key for key in sampler_kwargs if key != "seed" and not (explicit_grid and key == "search_space")]
    sampler = getattr(optuna.samplers, SAMPLER_CLASSES[method])
    problems += [f"sampler_kwargs: {p}" for p in rejected_keywords(sampler.__name__, others, accepted_keywords(sampler))]
    if method == "grid" and not explicit_grid:
        problems += grid_problems(search_space)
    if explicit_grid:
        grid = sampler_kwargs["search_space"]
        if not isinstance(grid, Mapping) or not grid:
            problems.append("sampler_kwargs.search_space: must map each suggested parameter to a list of values")
        else:
            problems += [f"sampler_kwargs.search_space.{name}: must be a non-empty list of values, got {values!r}"
                         for name, values in grid.items() if not isinstance(values, (list, tuple)) or not values]
    return problems


def settings_problems(settings: Mapping[str, Any], agent_class: type[Agent],
                      init_kwargs_per_instance: list[dict[str, Any]] | None) -> list[str]:
    """What is wrong with an experiment's optimize settings, as ``<key>: <problem>`` lines (the schema
    has already checked types and ranges)."""
    from rlpipe.config import RESERVED_INIT_KWARGS

    search_space = settings.get("search_space")
    problems = []
    if search_space:
        for name, dimension in search_space.items():
            problems += [f"search_space.{name}: {p}" for p in check_dimension(dimension)]
            if name in RESERVED_INIT_KWARGS:
                problems.append(f"search_space.{name}: is set by rlpipe for each instance and cannot be tuned")
        accepted = accepted_keywords(agent_class)
        problems += [f"search_space: {p}" for p in rejected_keywords(agent_class.__name__, search_space, accepted)]
    elif not defines_sample_parameters(agent_class):
        problems.append(f"search_space: missing, and {agent_class.__name__} does not define sample_parameters(trial); "
                        "give the parameters to tune here")
        return problems + sampler_problems(settings["sampler_method"], settings["sampler_kwargs"], search_space)
    explicit_grid = settings["sampler_kwargs"].get("search_space") if settings["sampler_method"] == "grid" else None
    if isinstance(explicit_grid, Mapping) and set(explicit_grid) != set(suggested_names(agent_class, search_space)):
        problems.append(f"sampler_kwargs.search_space: the grid names {sorted(explicit_grid)} are not the parameters "
                        f"the trials suggest {sorted(suggested_names(agent_class, search_space))}")
    per_instance_keys = {key for kwargs in init_kwargs_per_instance or [] for key in kwargs}
    where = "search_space." if search_space else f"search_space: {agent_class.__name__}.sample_parameters tunes "
    problems += [f"{where}{name}: is set per instance in init_kwargs_per_instance, so it cannot be tuned"
                 for name in tuned_keys(agent_class, search_space) if name in per_instance_keys]
    return problems + sampler_problems(settings["sampler_method"], settings["sampler_kwargs"], search_space)


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
