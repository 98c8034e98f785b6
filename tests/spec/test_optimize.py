"""rlpipe.spec.optimize: the checks of an experiment's ``optimize`` section, each problem one line naming its
key, found before any trial runs (the sampler's keywords apart, since checking them imports Optuna)."""
from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from rlpipe.errors import ConfigError
from rlpipe.spec.experiment import RESERVED_INIT_KWARGS, tuning_problems, validate_study
from rlpipe.spec.optimize import (
    PRUNER_METHODS,
    SAMPLER_CLASSES,
    sampler_kwargs_problems,
    sampler_problems,
    settings_problems,
)
from rlpipe.spec.schema import experiment_schema

from helpers_agents import EvalOnlyAgent, PeakAgent
from helpers_configs import FLOAT, peak_experiment, peak_task

# ---------------------------------------------------------------------------------------------- config
BAD_SECTIONS = [  # (optimize section, experiment overrides, expected text of the one problem)
    ({"n_trial": 3}, {}, "experiments.peak.optimize: unknown key 'n_trial' (did you mean 'n_trials'?)"),
    ({"n_trials": 0}, {}, "experiments.peak.optimize.n_trials: 0 is less than the minimum of 1"),
    ({"timeout": 0}, {}, "experiments.peak.optimize.timeout:"),
    ({"fit_fraction": 0}, {}, "experiments.peak.optimize.fit_fraction: 0 is less than or equal to the minimum of 0"),
    ({"fit_fraction": 1.5}, {}, "experiments.peak.optimize.fit_fraction: 1.5 is greater than the maximum of 1"),
    ({"sampler_method": "bayes"}, {}, "experiments.peak.optimize.sampler_method: 'bayes' is not one of"),
    ({"pruner_method": "hyperband"}, {}, "experiments.peak.optimize.pruner_method: 'hyperband' is not one of"),
    ({"search_space": {}}, {}, "experiments.peak.optimize.search_space: {} should be non-empty"),
    ({"search_space": {"x": {**FLOAT, "low": 2.0}}}, {},
     "experiments.peak.optimize.search_space.x: low (2.0) is above high (1.0)"),
    ({"search_space": {"x": {**FLOAT, "log": True}}}, {},
     "experiments.peak.optimize.search_space.x: log scale needs low > 0, got 0.0"),
    ({"search_space": {"x": {**FLOAT, "low": 0.1, "log": True, "step": 0.1}}}, {},
     "experiments.peak.optimize.search_space.x: log and step cannot be combined"),
    ({"search_space": {"x": {"type": "int", "low": 1, "high": 8, "log": True, "step": 2}}}, {},
     "experiments.peak.optimize.search_space.x: log and step cannot be combined"),
    ({"search_space": {"x": {"low": 0.0, "high": 1.0}}}, {},
     "experiments.peak.optimize.search_space.x: missing required key 'type'"),
    ({"search_space": {"x": {**FLOAT, "step": -0.1}}}, {},
     "experiments.peak.optimize.search_space.x.step: -0.1 is less than or equal to the minimum of 0"),
    ({"search_space": {"level": {"type": "categorical", "choices": []}}}, {},
     "experiments.peak.optimize.search_space.level.choices: [] should be non-empty"),
    ({"search_space": {"xx": FLOAT}}, {},
     "experiments.peak.optimize.search_space: PeakAgent does not accept 'xx' (did you mean 'x'?)"),
    ({"search_space": {"seeder": FLOAT}}, {},
     "experiments.peak.optimize.search_space.seeder: is set by rlpipe for each instance and cannot be tuned"),
    ({"search_space": {"x": FLOAT}}, {"n_fit": 2, "init_kwargs_per_instance": [{"x": 0.1}, {"x": 0.2}]},
     "experiments.peak.optimize.search_space.x: is set per instance in init_kwargs_per_instance"),
    ({"sampler_method": "grid"}, {},
     "experiments.peak.optimize.search_space: the grid sampler needs a search_space"),
    ({"sampler_method": "grid", "search_space": {"x": FLOAT}}, {},
     "experiments.peak.optimize.search_space.x: the grid sampler needs a 'step' for float parameters"),
    ({"sampler_kwargs": {"seed": 1}}, {},
     "experiments.peak.optimize.sampler_kwargs.seed: the sampler is seeded by rlpipe"),
    ({"sampler_method": "optuna_default", "sampler_kwargs": {"n_startup_trial": 5}}, {},
     "experiments.peak.optimize.sampler_kwargs: TPESampler does not accept 'n_startup_trial' (did you mean 'n_startup_trials'?)"),
    ({"sampler_method": "random", "sampler_kwargs": {"n_startup_trials": 5}}, {},
     "experiments.peak.optimize.sampler_kwargs: RandomSampler does not accept 'n_startup_trials'"),
    ({}, {"agent": "helpers_agents:EvalOnlyAgent"},
     "experiments.peak.optimize.search_space: missing, and EvalOnlyAgent does not define sample_parameters(trial)"),
]


@pytest.mark.parametrize(("optimize", "experiment", "expected"), BAD_SECTIONS,
                         ids=[case[2].split(": ")[0].removeprefix("experiments.peak.") + f"-{i}"
                              for i, case in enumerate(BAD_SECTIONS)])
def test_bad_optimize_sections_are_rejected_naming_the_key(optimize, experiment, expected) -> None:
    spec = {**peak_experiment(), "optimize": optimize, **experiment}
    config = {"seed": 3, "experiments": {"peak": spec}}
    try:
        problems = tuning_problems(validate_study(config))  # the sampler's keywords: checked apart (Optuna)
    except ConfigError as error:
        problems = str(error).splitlines()
    assert len(problems) == 1 and expected in problems[0]  # one problem, one line


def test_a_per_instance_kwarg_that_sample_parameters_tunes_is_refused_by_the_config_check() -> None:
    experiment = {"n_fit": 2, "init_kwargs_per_instance": [{"x": 0.1}, {"x": 0.2}]}
    with pytest.raises(ConfigError, match=r"experiments\.peak\.optimize\.search_space: PeakAgent\.sample_parameters "
                                          r"tunes x: is set per instance in init_kwargs_per_instance"):
        peak_task(n_fit=2, experiment=experiment)


@pytest.mark.parametrize(("optimize", "message"), [
    ({"sampler_method": "grid", "sampler_kwargs": {"search_space": {"x": 0.1, "level": ["high"]}}},
     "optimize.sampler_kwargs.search_space.x: must be a non-empty list of values, got 0.1"),
    ({"sampler_method": "grid", "sampler_kwargs": {"search_space": {"x": [0.1], "levl": ["high"]}}},
     "optimize.sampler_kwargs.search_space: the grid names ['levl', 'x'] are not the parameters the trials suggest ['level', 'x']"),
    ({"search_space": {"level": {"type": "categorical", "choices": ["high", "1e-3"]}}},
     "optimize.search_space.level.choices[1]: '1e-3' was read as a string"),
])
def test_review_found_sections_are_refused(optimize: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        peak_task(**optimize)
    assert f"experiments.peak.{message}" in str(raised.value)


# ---------------------------------------------------------------------------------------------- names
def test_sampler_and_pruner_names_are_those_of_the_schema() -> None:
    properties = experiment_schema()["properties"]["optimize"]["properties"]
    assert list(SAMPLER_CLASSES) == properties["sampler_method"]["enum"]
    assert list(PRUNER_METHODS) == properties["pruner_method"]["enum"]
    assert SAMPLER_CLASSES == {"optuna_default": "TPESampler", "random": "RandomSampler", "grid": "GridSampler",
                               "cmaes": "CmaEsSampler"}


# ---------------------------------------------------------------------------------------------- sampler settings
STEPPED = {"x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.5}}
NEEDS_SEARCH_SPACE = "search_space: the grid sampler needs a search_space (its grid is built from it)"
SEEDED = "sampler_kwargs.seed: the sampler is seeded by rlpipe from the study's seed (set `seed` instead)"


@pytest.mark.parametrize(("method", "sampler_kwargs", "search_space", "problems"), [
    ("optuna_default", {"n_startup_trials": 5}, None, []),
    ("random", {}, STEPPED, []),
    ("grid", {}, STEPPED, []),
    ("grid", {"search_space": {"x": [0.1, 0.2], "level": ("low",)}}, None, []),  # rlberry's explicit grid
    ("grid", {"search_space": {"x": [0.1]}}, {"x": FLOAT}, []),  # the explicit grid wins: no step needed
    ("bayes", {"seed": 1}, None, ["sampler_method: 'bayes' is not one of optuna_default, random, grid, cmaes"]),
    ("random", {"seed": 1}, None, [SEEDED]),
    ("grid", {"seed": 1}, None, [SEEDED, NEEDS_SEARCH_SPACE]),
    ("grid", {}, {"x": FLOAT}, ["search_space.x: the grid sampler needs a 'step' for float parameters"]),
    ("grid", {"search_space": [0.1]}, None,
     ["sampler_kwargs.search_space: must map each suggested parameter to a list of values"]),
    ("grid", {"search_space": {}}, None,
     ["sampler_kwargs.search_space: must map each suggested parameter to a list of values"]),
    ("grid", {"search_space": {"x": [], "y": (1,), "z": "ab"}}, None,
     ["sampler_kwargs.search_space.x: must be a non-empty list of values, got []",
      "sampler_kwargs.search_space.z: must be a non-empty list of values, got 'ab'"]),
], ids=["tpe", "random", "grid", "explicit-grid", "explicit-grid-wins", "unknown-method", "seed", "grid-seed-no-space",
        "grid-float-no-step", "explicit-grid-list", "explicit-grid-empty", "explicit-grid-values"])
def test_sampler_problems(method: str, sampler_kwargs: dict[str, Any], search_space: Any, problems: list[str]) -> None:
    assert sampler_problems(method, sampler_kwargs, search_space) == problems


@pytest.mark.parametrize(("method", "sampler_kwargs", "problems"), [
    ("optuna_default", {"n_startup_trials": 5, "multivariate": True}, []),
    ("cmaes", {"sigma0": 0.5}, []),
    ("grid", {"search_space": {"x": [1]}, "seed": 1}, []),  # the seed is sampler_problems' to refuse
    ("bayes", {"anything": 1}, []),  # sampler_problems refuses the method
    ("cmaes", {"sigma0": 0.5, "sigmaa": 1},
     ["sampler_kwargs: CmaEsSampler does not accept 'sigmaa' (did you mean 'sigma0'?)"]),
    ("random", {"search_space": {"x": [1]}},
     ["sampler_kwargs: RandomSampler does not accept 'search_space' (allowed: seed)"]),
    ("grid", {"search_space": {"x": [1]}, "shuffle": True},
     ["sampler_kwargs: GridSampler does not accept 'shuffle' (allowed: search_space, seed)"]),
], ids=["tpe", "cmaes", "grid", "unknown-method", "cmaes-typo", "random-search-space", "grid-unknown"])
def test_sampler_kwargs_problems(method: str, sampler_kwargs: dict[str, Any], problems: list[str]) -> None:
    assert sampler_kwargs_problems(method, sampler_kwargs) == problems


def test_checks_that_need_no_sampler_signature_do_not_import_optuna() -> None:
    """Config validation runs at every Snakefile parse: the spec checks load Optuna only for a sampler's keywords."""
    code = ("import sys; from rlpipe.spec import config, optimize, schema, search_space; "
            "assert optimize.sampler_kwargs_problems('optuna_default', {'seed': 1}) == []; "
            "assert optimize.sampler_kwargs_problems('grid', {'search_space': {'x': [1]}}) == []; "
            "assert optimize.sampler_problems('grid', {}, {'x': {'type': 'int', 'low': 1, 'high': 2}}) == []; "
            "assert 'optuna' not in sys.modules, 'optuna imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------- settings
def settings(**section: Any) -> dict[str, Any]:
    """An optimize section as the schema leaves it (the keys settings_problems reads)."""
    return {"sampler_method": "optuna_default", "sampler_kwargs": {}, **section}


def test_valid_settings_have_no_problem() -> None:
    assert settings_problems(settings(), PeakAgent, None, RESERVED_INIT_KWARGS) == []
    assert settings_problems(settings(search_space={"x": FLOAT}), PeakAgent, [{"level": "low"}], RESERVED_INIT_KWARGS) == []
    grid = settings(sampler_method="grid", sampler_kwargs={"search_space": {"x": [0.1], "level": ["high"]}})
    assert settings_problems(grid, PeakAgent, None, RESERVED_INIT_KWARGS) == []


def test_search_space_problems_name_the_dimension() -> None:
    space = {"seeder": FLOAT, "xx": FLOAT, "x": {**FLOAT, "low": 2.0}}
    assert settings_problems(settings(search_space=space), PeakAgent, None, ("seeder",)) == [
        "search_space.seeder: is set by rlpipe for each instance and cannot be tuned",
        "search_space.x: low (2.0) is above high (1.0)",
        "search_space: PeakAgent does not accept 'xx' (did you mean 'x'?)",
    ]


def test_reserved_names_are_the_callers() -> None:
    assert settings_problems(settings(search_space={"x": FLOAT}), PeakAgent, None, ("x",)) == [
        "search_space.x: is set by rlpipe for each instance and cannot be tuned"]


def test_no_search_space_and_no_sample_parameters() -> None:
    assert settings_problems(settings(sampler_method="grid"), EvalOnlyAgent, None, RESERVED_INIT_KWARGS) == [
        "search_space: missing, and EvalOnlyAgent does not define sample_parameters(trial); "
        "give the parameters to tune here",
        NEEDS_SEARCH_SPACE,
    ]


def test_an_explicit_grid_must_name_the_suggested_parameters() -> None:
    grid = settings(sampler_method="grid", sampler_kwargs={"search_space": {"a": [1]}}, search_space=STEPPED)
    assert settings_problems(grid, PeakAgent, None, RESERVED_INIT_KWARGS) == [
        "sampler_kwargs.search_space: the grid names ['a'] are not the parameters the trials suggest ['x']"]


@pytest.mark.parametrize(("search_space", "problem"), [
    ({"x": FLOAT}, "search_space.x: is set per instance in init_kwargs_per_instance, so it cannot be tuned"),
    (None, "search_space: PeakAgent.sample_parameters tunes x: is set per instance in init_kwargs_per_instance, "
           "so it cannot be tuned"),
], ids=["search-space", "sample-parameters"])
def test_a_tuned_key_set_per_instance(search_space: Any, problem: str) -> None:
    per_instance = [{"fit_seconds": 0.0}, {"x": 0.2}]
    assert settings_problems(settings(search_space=search_space), PeakAgent, per_instance, RESERVED_INIT_KWARGS) == [problem]
