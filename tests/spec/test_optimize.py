"""rlpipe.spec.optimize: the checks of an experiment's ``optimize`` section, each problem one line naming its
key, found before any trial runs (the sampler's keywords apart, since checking them imports Optuna)."""
from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest

from rlpipe.errors import ConfigError
from rlpipe.spec.experiment import check_tuning, validate_study
from rlpipe.spec.init_kwargs import RESERVED_INIT_KWARGS
from rlpipe.spec.optimize import (
    PRUNER_METHODS,
    SAMPLER_CLASSES,
    optimize_problems,
    sampler_kwargs_problems,
    sampler_problems,
    settings_problems,
)
from rlpipe.spec.schema import experiment_schema, schema_defaults

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
    with pytest.raises(ConfigError) as raised:
        validate_study(config, tuning=True)  # tuning: the sampler's keywords too (they import Optuna)
    problems = raised.value.problems
    assert len(problems) == 1 and expected in problems[0]  # one problem, one line
    if "sampler_kwargs: " in expected:  # left out of a plain validation, checked apart when optimize jobs are planned
        with pytest.raises(ConfigError) as raised:
            check_tuning(validate_study(config), source="config.yaml")
        assert raised.value.problems == problems
        assert str(raised.value).startswith("invalid config (config.yaml):\n  - ")
    # the Python driver's arguments get the same line (ExperimentManager.optimize_hyperparams checks its section so)
    entry = {key: value for key, value in spec.items() if key != "optimize"}
    peak = validate_study({"experiments": {"peak": entry}}).experiment("peak")
    lines = optimize_problems(copy.deepcopy(optimize), peak.agent, peak.init_kwargs_per_instance, check_sampler_kwargs=True)
    assert [line.replace("(top level):", "experiments.peak.optimize:") if line.startswith("(top level):")
            else f"experiments.peak.optimize.{line}" for line in lines] == list(problems)


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
    ({"sampler_kwargs": {"consider_endpoints": "1e3"}},  # a sampler keyword's value: not only init kwargs
     "optimize.sampler_kwargs.consider_endpoints: '1e3' was read as a string"),
    ({"n_trials": "1e2"}, "optimize.n_trials: '1e2' was read as a string (write 100 for an integer; "),
])
def test_review_found_sections_are_refused(optimize: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        peak_task(**optimize)
    assert f"experiments.peak.{message}" in str(raised.value)


def test_the_schema_alone_refuses_an_unknown_sampler_or_pruner() -> None:
    """Its enum is the only check of the method names: the later checks look a method up, never refuse one."""
    for key in ("sampler_method", "pruner_method"):
        assert optimize_problems({key: "bayes"}, PeakAgent, None, check_sampler_kwargs=True) == [
            f"{key}: 'bayes' is not one of {experiment_schema()['properties']['optimize']['properties'][key]['enum']}"]


def test_optimize_problems_fill_the_defaults_and_check_the_sampler_keywords_on_request() -> None:
    section: dict[str, Any] = {"sampler_kwargs": {"n_startup_trial": 5}}
    assert optimize_problems(section, PeakAgent, None, check_sampler_kwargs=False) == []
    assert section == {**schema_defaults("optimize"), "sampler_kwargs": {"n_startup_trial": 5},
                       "confirm": {"enabled": True, "top_k": 3, "n_fit": 8, "alpha": 0.05}}
    assert optimize_problems(section, PeakAgent, None, check_sampler_kwargs=True) == [
        "sampler_kwargs: TPESampler does not accept 'n_startup_trial' (did you mean 'n_startup_trials'?)"]
    # without an agent class (its entry is invalid) only the schema's checks run
    assert optimize_problems({"search_space": {"xx": FLOAT}}, None, None, check_sampler_kwargs=True) == []
    assert optimize_problems({"n_trials": 0, "search_space": {"xx": FLOAT}}, PeakAgent, None,
                             check_sampler_kwargs=True) == ["n_trials: 0 is less than the minimum of 1"]


def test_an_optimize_section_is_checked_even_when_the_rest_of_its_experiment_is_not() -> None:
    spec = {**peak_experiment({"n_trial": 3, "search_space": {"xx": FLOAT}}), "n_fit": 0}
    with pytest.raises(ConfigError) as raised:
        validate_study({"experiments": {"peak": spec}})
    assert raised.value.problems == ("experiments.peak.n_fit: 0 is less than the minimum of 1",
                                     "experiments.peak.optimize: unknown key 'n_trial' (did you mean 'n_trials'?)")


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
], ids=["tpe", "random", "grid", "explicit-grid", "explicit-grid-wins", "seed", "grid-seed-no-space",
        "grid-float-no-step", "explicit-grid-list", "explicit-grid-empty", "explicit-grid-values"])
def test_sampler_problems(method: str, sampler_kwargs: dict[str, Any], search_space: Any, problems: list[str]) -> None:
    assert sampler_problems(method, sampler_kwargs, search_space) == problems


@pytest.mark.parametrize(("method", "sampler_kwargs", "problems"), [
    ("optuna_default", {"n_startup_trials": 5, "multivariate": True}, []),
    ("cmaes", {"sigma0": 0.5}, []),
    ("grid", {"search_space": {"x": [1]}, "seed": 1}, []),  # the seed is sampler_problems' to refuse
    ("cmaes", {"sigma0": 0.5, "sigmaa": 1},
     ["sampler_kwargs: CmaEsSampler does not accept 'sigmaa' (did you mean 'sigma0'?)"]),
    ("random", {"search_space": {"x": [1]}},
     ["sampler_kwargs: RandomSampler does not accept 'search_space' (allowed: seed)"]),
    ("grid", {"search_space": {"x": [1]}, "shuffle": True},
     ["sampler_kwargs: GridSampler does not accept 'shuffle' (allowed: search_space, seed)"]),
], ids=["tpe", "cmaes", "grid", "cmaes-typo", "random-search-space", "grid-unknown"])
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
    assert settings_problems(settings(), PeakAgent, None) == []
    assert settings_problems(settings(search_space={"x": FLOAT}), PeakAgent, [{"level": "low"}]) == []
    grid = settings(sampler_method="grid", sampler_kwargs={"search_space": {"x": [0.1], "level": ["high"]}})
    assert settings_problems(grid, PeakAgent, None) == []


def test_search_space_problems_name_the_dimension() -> None:
    space = {"seeder": FLOAT, "xx": FLOAT, "x": {**FLOAT, "low": 2.0}}
    assert settings_problems(settings(search_space=space), PeakAgent, None) == [
        "search_space.seeder: is set by rlpipe for each instance and cannot be tuned",
        "search_space.x: low (2.0) is above high (1.0)",
        "search_space: PeakAgent does not accept 'xx' (did you mean 'x'?)",
    ]


def test_every_reserved_name_is_refused_and_none_is_suggested() -> None:
    space = {name: FLOAT for name in RESERVED_INIT_KWARGS}
    assert settings_problems(settings(search_space=space), PeakAgent, None) == [
        f"search_space.{name}: is set by rlpipe for each instance and cannot be tuned" for name in RESERVED_INIT_KWARGS]
    [problem] = settings_problems(settings(search_space={"seede": FLOAT}), PeakAgent, None)
    assert problem.startswith("search_space: PeakAgent does not accept 'seede' (allowed: ")
    assert not any(name in problem for name in ("seeder", "_execution_metadata", "output_dir"))


def test_no_search_space_and_no_sample_parameters() -> None:
    assert settings_problems(settings(sampler_method="grid"), EvalOnlyAgent, None) == [
        "search_space: missing, and EvalOnlyAgent does not define sample_parameters(trial); "
        "give the parameters to tune here",
        NEEDS_SEARCH_SPACE,
    ]


def test_an_explicit_grid_must_name_the_suggested_parameters() -> None:
    grid = settings(sampler_method="grid", sampler_kwargs={"search_space": {"a": [1]}}, search_space=STEPPED)
    assert settings_problems(grid, PeakAgent, None) == [
        "sampler_kwargs.search_space: the grid names ['a'] are not the parameters the trials suggest ['x']"]


@pytest.mark.parametrize(("search_space", "problem"), [
    ({"x": FLOAT}, "search_space.x: is set per instance in init_kwargs_per_instance, so it cannot be tuned"),
    (None, "search_space: PeakAgent.sample_parameters tunes x: is set per instance in init_kwargs_per_instance, "
           "so it cannot be tuned"),
], ids=["search-space", "sample-parameters"])
def test_a_tuned_key_set_per_instance(search_space: Any, problem: str) -> None:
    per_instance = [{"fit_seconds": 0.0}, {"x": 0.2}]
    assert settings_problems(settings(search_space=search_space), PeakAgent, per_instance) == [problem]
