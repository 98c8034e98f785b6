"""rlpipe.tuning.samplers: the Optuna sampler and pruner each ``optimize`` setting becomes, the grid and its size,
and the sampler rebuilt for every trial from the study's seed and the trial's number."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.samplers import BaseSampler, CmaEsSampler, GridSampler, RandomSampler, TPESampler

from rlpipe.runtime.seeding import keyed_child
from rlpipe.spec.optimize import PRUNER_METHODS, SAMPLER_CLASSES
from rlpipe.spec.search_space import grid_values, suggest
from rlpipe.tuning import samplers
from rlpipe.tuning.samplers import TrialSeededSampler, _sampler_factory, grid_size, make_pruner, make_sampler

from helpers_configs import GRID_SPACE

optuna.logging.set_verbosity(optuna.logging.WARNING)


def settings(method: str, sampler_kwargs: dict[str, Any] | None = None, search_space: Any = None) -> dict[str, Any]:
    """The keys of an optimize task's settings that the sampler reads."""
    return {"sampler_method": method, "sampler_kwargs": sampler_kwargs or {}, "search_space": search_space}


def recorder() -> type:
    """A stand-in for an Optuna class that records the arguments of each instance it makes."""

    class Recorded:
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.calls.append((args, kwargs))

    return Recorded


def sample_x(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def xs(study: optuna.Study) -> list[float]:
    return [trial.params["x"] for trial in study.get_trials()]


# ---------------------------------------------------------------------------------------------- samplers
@pytest.mark.parametrize(("method", "sampler_class"), [
    ("optuna_default", TPESampler), ("random", RandomSampler), ("grid", GridSampler), ("cmaes", CmaEsSampler),
])
def test_each_method_builds_its_optuna_sampler(method: str, sampler_class: type) -> None:
    assert getattr(optuna.samplers, SAMPLER_CLASSES[method]) is sampler_class
    assert issubclass(sampler_class, BaseSampler)
    assert type(_sampler_factory(settings(method, search_space=GRID_SPACE), 5)(11)) is sampler_class


@pytest.mark.parametrize(("method", "sampler_kwargs", "built_with"), [
    ("optuna_default", {"n_startup_trials": 5, "multivariate": True},
     {"seed": 11, "n_startup_trials": 5, "multivariate": True}),
    ("random", {}, {"seed": 11}),
    # categorical dimensions are sampled at random by CMA-ES, by design: no warning for each of them
    ("cmaes", {"sigma0": 0.2}, {"seed": 11, "sigma0": 0.2, "warn_independent_sampling": False}),
    ("cmaes", {"warn_independent_sampling": True}, {"seed": 11, "warn_independent_sampling": True}),
], ids=["tpe", "random", "cmaes", "cmaes-warnings-asked-for"])
def test_the_trial_seed_and_the_sampler_kwargs_reach_the_sampler(monkeypatch, method: str, sampler_kwargs: dict[str, Any],
                                                                   built_with: dict[str, Any]) -> None:
    recorded = recorder()
    monkeypatch.setattr(optuna.samplers, SAMPLER_CLASSES[method], recorded)
    given = settings(method, dict(sampler_kwargs))
    factory = _sampler_factory(given, 5)
    assert isinstance(factory(11), recorded)
    assert recorded.calls == [((), built_with)]
    assert given["sampler_kwargs"] == sampler_kwargs  # the settings are not changed


def test_every_grid_sampler_gets_the_study_seed(monkeypatch) -> None:
    """The grid sampler's order of points is shuffled with its seed: every trial must see the same order."""
    recorded = recorder()
    monkeypatch.setattr(samplers, "GridSampler", recorded)
    factory = _sampler_factory(settings("grid", search_space=GRID_SPACE), 5)
    factory(11), factory(12)
    assert recorded.calls == [((grid_values(GRID_SPACE),), {"seed": 5})] * 2


def test_an_explicit_grid_wins_and_is_not_passed_as_a_keyword(monkeypatch) -> None:
    recorded = recorder()
    monkeypatch.setattr(samplers, "GridSampler", recorded)
    explicit = {"x": (0.1, 0.3), "level": ["high"]}
    _sampler_factory(settings("grid", {"search_space": explicit}, search_space=GRID_SPACE), 5)(11)
    assert recorded.calls == [(({"x": [0.1, 0.3], "level": ["high"]},), {"seed": 5})]


@pytest.mark.parametrize(("given", "size"), [
    (settings("optuna_default", search_space=GRID_SPACE), None),
    (settings("random"), None),
    (settings("cmaes"), None),
    (settings("grid", search_space=GRID_SPACE), 12),
    (settings("grid", search_space={"n": {"type": "int", "low": 0, "high": 9, "step": 3}}), 4),
    (settings("grid", {"search_space": {"x": [0.1, 0.3], "level": ["low", "high"]}}), 4),
    (settings("grid", {"search_space": {"x": [0.1]}}, search_space=GRID_SPACE), 1),  # the explicit grid wins
], ids=["tpe", "random", "cmaes", "grid", "int-step", "explicit", "explicit-wins"])
def test_grid_size(given: dict[str, Any], size: int | None) -> None:
    assert grid_size(given) == size


# ---------------------------------------------------------------------------------------------- pruners
@pytest.mark.parametrize(("method", "pruner_class"), [
    ("halving", optuna.pruners.SuccessiveHalvingPruner), ("median", optuna.pruners.MedianPruner),
    ("none", optuna.pruners.NopPruner),
])
def test_each_pruner_method_builds_its_optuna_pruner(method: str, pruner_class: type) -> None:
    assert type(make_pruner(method)) is pruner_class


def test_every_pruner_method_of_the_schema_is_built() -> None:
    assert all(isinstance(make_pruner(method), optuna.pruners.BasePruner) for method in PRUNER_METHODS)


def test_successive_halving_as_rlberry_configures_it(monkeypatch) -> None:
    recorded = recorder()
    monkeypatch.setattr(optuna.pruners, "SuccessiveHalvingPruner", recorded)
    make_pruner("halving")
    assert recorded.calls == [((), {"min_resource": 1, "reduction_factor": 4, "min_early_stopping_rate": 0})]


def test_an_unknown_pruner_method_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^pruner_method must be one of halving, median, none, got 'hyperband'$"):
        make_pruner("hyperband")


# ---------------------------------------------------------------------------------------------- trial-seeded sampler
def test_each_trial_gets_one_sampler_seeded_from_its_number() -> None:
    seeds: list[int] = []

    def factory(seed: int) -> BaseSampler:
        seeds.append(seed)
        return RandomSampler(seed=seed)

    root = np.random.SeedSequence(7)
    study = optuna.create_study(sampler=TrialSeededSampler(factory, root))
    study.optimize(lambda trial: sample_x(trial) + trial.suggest_float("y", 0.0, 1.0), n_trials=3)
    # one sampler per trial, however many parameters it suggests
    assert seeds == [int(keyed_child(root, number).generate_state(1)[0]) for number in range(3)]


def test_a_trials_proposal_depends_on_its_number_not_on_what_ran_before() -> None:
    sampler = make_sampler(settings("random"), np.random.SeedSequence(3))
    first = optuna.create_study(sampler=sampler)
    first.optimize(sample_x, n_trials=4)
    sampler.reseed_rng()  # nothing to reseed
    again = optuna.create_study(sampler=sampler)  # the same sampler object, its trials numbered from 0 again
    again.optimize(sample_x, n_trials=4)
    fresh = optuna.create_study(sampler=make_sampler(settings("random"), np.random.SeedSequence(3)))
    fresh.optimize(sample_x, n_trials=4)
    other = optuna.create_study(sampler=make_sampler(settings("random"), np.random.SeedSequence(4)))
    other.optimize(sample_x, n_trials=4)
    assert xs(first) == xs(again) == xs(fresh) and len(set(xs(first))) == 4
    assert all(a != b for a, b in zip(xs(first), xs(other)))


def spying(base: type[BaseSampler], finished: list[int]) -> type[BaseSampler]:
    """``base`` recording the trials whose ``after_trial`` it is told of."""

    class Spy(base):  # type: ignore[misc, valid-type]
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            finished.append(trial.number)
            super().after_trial(study, trial, state, values)

    return Spy


def test_after_trial_reaches_the_trials_sampler_except_a_grid_sampler() -> None:
    finished: list[int] = []
    random = spying(RandomSampler, finished)
    study = optuna.create_study(sampler=TrialSeededSampler(lambda seed: random(seed=seed), np.random.SeedSequence(0)))
    study.optimize(sample_x, n_trials=3)
    assert finished == [0, 1, 2]
    finished.clear()
    grid = spying(GridSampler, finished)
    sampler = TrialSeededSampler(lambda seed: grid({"x": [0.0, 0.5, 1.0]}, seed=0), np.random.SeedSequence(0))
    study = optuna.create_study(sampler=sampler)
    study.optimize(sample_x, n_trials=3)
    assert finished == [] and sorted(xs(study)) == [0.0, 0.5, 1.0]


def test_the_grid_sampler_visits_every_point_once_in_a_reproducible_order() -> None:
    def visited(seed: int) -> list[tuple[Any, ...]]:
        sampler = make_sampler(settings("grid", search_space=GRID_SPACE), np.random.SeedSequence(seed))
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda trial: float(suggest(trial, GRID_SPACE)["x"]), n_trials=12)
        return [tuple(trial.params[name] for name in GRID_SPACE) for trial in study.get_trials()]

    first = visited(3)
    assert sorted(first) == sorted(itertools.product([0.0, 0.25, 0.5], ["low", "high"], [1, 2]))
    assert visited(3) == first
