"""rlpipe.spec.schema: the config schema, its defaults, strict integers, and one line per problem."""
from __future__ import annotations

import pytest

from rlpipe.errors import ConfigError
from rlpipe.spec.experiment import validate_study
from rlpipe.spec.schema import check_schema, config_schema, experiment_schema, schema_defaults, schema_problems

from helpers_configs import config, top


# ---------------------------------------------------------------------------------------------- schema
def test_experiment_schema_is_the_experiment_definition():
    schema = experiment_schema()
    assert set(schema["required"]) == {"agent", "fit_budget"}  # an agent may need no environment
    assert schema["properties"]["n_fit"]["default"] == 4


def test_config_schema_is_read_once_and_holds_the_top_level_keys():
    assert config_schema() is config_schema()
    assert set(config_schema()["properties"]) == {"seed", "report", "resources", "experiments", "sweeps", "adastop",
                                                  "metrics"}
    assert experiment_schema() is config_schema()["$defs"]["experiment"]


# ---------------------------------------------------------------------------------------------- defaults
@pytest.mark.parametrize(("key", "defaults"), [
    ("writer", {"print_log": True, "style_log": "multi_line", "log_interval": 3, "maxlen": None, "maxlen_by_tag": {}}),
    ("learning_curve", {"tag": "episode_rewards", "xtag": "global_step", "smoothing_window": 1}),
    ("optimize", {"n_trials": 32, "timeout": None, "n_fit": 2, "n_optuna_workers": 2, "sampler_method": "optuna_default",
                  "sampler_kwargs": {}, "pruner_method": "halving", "fit_fraction": 1.0, "storage": None, "confirm": {}}),
    ("eval_kwargs", {}),  # its keys have no defaults: the agent's eval has them
    ("report", {"confidence": 0.95, "bootstrap_samples": 10000}),  # a key of the config, not of an experiment
])
def test_schema_defaults(key, defaults):
    assert schema_defaults(key) == defaults


def test_schema_problems_fill_defaults_in_place():
    instance = {"experiments": {"e": {"agent": "pkg.Agent", "fit_budget": 10, "writer": {"print_log": False}}}}
    assert schema_problems(instance) == []
    assert instance["seed"] == 42 and instance["report"] == schema_defaults("report")
    entry = instance["experiments"]["e"]
    assert entry["writer"] == {**schema_defaults("writer"), "print_log": False}
    assert entry["n_fit"] == 4 and entry["init_kwargs"] == {} and entry["allow_pickle"] is False
    assert "optimize" not in entry and "train_env" not in entry  # no default: absent stays absent


def test_schema_problems_of_one_definition():
    entry: dict = {}
    assert schema_problems(entry, "experiment") == ["(top level): missing required key 'agent'",
                                                    "(top level): missing required key 'fit_budget'"]
    section: dict = {"n_trials": 3}
    assert schema_problems(section, "experiment/properties/optimize") == []
    assert section == {**schema_defaults("optimize"), "n_trials": 3,
                       "confirm": {"enabled": True, "top_k": 3, "n_fit": 8, "alpha": 0.05}}  # nested defaults filled too


def test_schema_problems_are_sorted_by_key_path():
    config = {"seed": -1, "experiments": {"b": {"agent": "", "fit_budget": 1}, "a": {"fit_budget": "x"}}}
    assert schema_problems(config) == [
        "experiments.a: missing required key 'agent'",
        "experiments.a.fit_budget: 'x' is not of type 'integer'",
        "experiments.b.agent: '' should be non-empty",
        "seed: -1 is less than the minimum of 0",
    ]


# ---------------------------------------------------------------------------------------------- messages
def test_unknown_key_without_a_close_match_lists_the_allowed_keys():
    assert schema_problems({"experiments": {"e": {"agent": "a.B", "fit_budget": 1}}, "zzz": 1}) == [
        "(top level): unknown key 'zzz' (allowed: seed, report, resources, experiments, sweeps, adastop, metrics)"]


def test_each_unknown_key_gets_its_own_line():
    problems = schema_problems({"experiments": {"e": {"agent": "a.B", "fit_budget": 1, "n_fitt": 2, "wrter": {}}}})
    assert problems == [
        "experiments.e: unknown key 'n_fitt' (did you mean 'n_fit'?)",
        "experiments.e: unknown key 'wrter' (did you mean 'writer'?)",
    ]


@pytest.mark.parametrize(("train_env", "problem"), [
    ({"idd": "CartPole-v1"}, "experiments.e.train_env: unknown key 'idd' (did you mean 'id'?)"),
    ("", "experiments.e.train_env: '' should be non-empty"),
    ({"id": "CartPole-v1", "wrappers": [{"kwargs": {}}]},
     "experiments.e.train_env.wrappers.0: missing required key 'wrapper'"),
    ({"id": "CartPole-v1", "wrappers": [{"wrapper": "a:B", "kwrgs": {}}]},
     "experiments.e.train_env.wrappers.0: unknown key 'kwrgs' (did you mean 'kwargs'?)"),
], ids=["mapping-unknown-key", "empty-id", "wrapper-missing", "wrapper-unknown-key"])
def test_env_problems_come_from_the_branch_of_their_kind(train_env, problem):
    """An env is a string or a mapping (anyOf): a mapping's problem is reported, not 'is not of type string'."""
    assert schema_problems({"experiments": {"e": {"agent": "a.B", "fit_budget": 1, "train_env": train_env}}}) == [problem]


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("train_env", 5, "experiments.e.train_env: expected null, a string or a mapping, got 5"),
    ("eval_env", [1], "experiments.e.eval_env: expected null, a string or a mapping, got [1]"),
], ids=["train_env-int", "eval_env-list"])
def test_an_env_of_no_accepted_kind_names_the_kinds(key, value, problem):
    assert schema_problems({"experiments": {"e": {"agent": "a.B", "fit_budget": 1, key: value}}}) == [problem]


@pytest.mark.parametrize(("dimension", "problem"), [
    ({"type": "bool"}, "search_space.x.type: 'bool' is not one of ['float', 'int', 'categorical']"),
    ({"type": "int", "low": 0.5, "high": 1}, "search_space.x.low: 0.5 is not of type 'integer'"),
    ({"type": "int", "low": 0, "high": 4, "step": 0}, "search_space.x.step: 0 is less than the minimum of 1"),
    ({"type": "float", "low": 0.0}, "search_space.x: missing required key 'high'"),
    ({"type": "float", "low": 0.0, "high": 1.0, "choices": [1]},
     "search_space.x: unknown key 'choices' (allowed: type, low, high, log, step)"),
    ({"type": "categorical"}, "search_space.x: missing required key 'choices'"),
    ({"type": "categorical", "choices": [[1]]},
     "search_space.x.choices.0: expected a string, a number, a boolean or null, got [1]"),
], ids=["unknown-type", "int-float-bound", "int-step-0", "float-no-high", "float-choices", "categorical-no-choices",
        "categorical-list-choice"])
def test_search_dimension_problems(dimension, problem):
    assert schema_problems({"search_space": {"x": dimension}}, "experiment/properties/optimize") == [problem]


# ---------------------------------------------------------------------------------------------- strict integers
@pytest.mark.parametrize("cfg", [config(n_fit=2.0), config(n_checkpoints=2.0), top(seed=3.0)],
                         ids=["n_fit", "n_checkpoints", "seed"])
def test_float_for_an_integer_key_is_rejected(cfg):
    with pytest.raises(ConfigError):
        validate_study(cfg)


@pytest.mark.parametrize("value", [True, 2.0])
def test_a_bool_or_a_float_is_not_an_integer(value):
    assert schema_problems({"experiments": {"e": {"agent": "a.B", "fit_budget": value}}}) == [
        f"experiments.e.fit_budget: {value!r} is not of type 'integer'"]


def test_an_integer_is_a_number():
    report = {"confidence": 0.9, "bootstrap_samples": 200}
    assert schema_problems({"report": report, "experiments": {"e": {"agent": "a.B", "fit_budget": 1,
                                                                     "writer": {"log_interval": 3}}}}) == []


# ---------------------------------------------------------------------------------------------- invalid experiments
def test_the_experiments_the_schema_rejects_come_from_the_same_pass():
    config = {"seed": -1, "experiments": {"good": {"agent": "a.B", "fit_budget": 1}, "no_budget": {"agent": "a.B"},
                                          "bad_n_fit": {"agent": "a.B", "fit_budget": 1, "n_fit": 0},
                                          "misread": {"agent": "a.B", "fit_budget": 1, "init_kwargs": {"lr": "1e-3"}}}}
    check = check_schema(config)
    assert check.rejected_experiments == {"no_budget", "bad_n_fit"}  # the bad seed is no experiment's
    assert [line.split(":")[0] for line in check.problems] == [
        "experiments.bad_n_fit.n_fit", "experiments.misread.init_kwargs.lr", "experiments.no_budget", "seed"]
    # a string where the schema takes anything is a problem that rejects nothing: the semantic checks still run
    assert check_schema({"experiments": {"good": {"agent": "a.B", "fit_budget": 1}}}).rejected_experiments == set()


# ---------------------------------------------------------------------------------------------- yaml 1.1 floats
@pytest.mark.parametrize(("entry", "problem"), [
    ({"fit_budget": "1e4"}, "fit_budget: '1e4' was read as a string (write 10000 for an integer; YAML 1.1 floats need a "
                            "dot and a signed exponent: write 1.0e+4)"),
    ({"eval_kwargs": {"gamma": "1e-3"}}, "eval_kwargs.gamma: '1e-3' was read as a string"),
    ({"fit_kwargs": {"lr": "3e-4"}}, "fit_kwargs.lr: '3e-4' was read as a string"),
    ({"train_env": {"id": "CartPole-v1", "kwargs": {"max_episode_steps": "1e3"}}},
     "train_env.kwargs.max_episode_steps: '1e3' was read as a string"),
    ({"eval_env": {"id": "CartPole-v1", "wrappers": [{"wrapper": "a:W", "kwargs": {"scale": "2E-1"}}]}},
     "eval_env.wrappers[0].kwargs.scale: '2E-1' was read as a string"),
    ({"init_kwargs_per_instance": [{}, {"lr": "1e-3"}], "n_fit": 2}, "init_kwargs_per_instance[1].lr: '1e-3' was read"),
    ({"optimize": {"sampler_kwargs": {"sigma0": "5e-1"}}}, "optimize.sampler_kwargs.sigma0: '5e-1' was read as a string"),
    ({"optimize": {"timeout": "1e3"}}, "optimize.timeout: '1e3' was read as a string"),
], ids=["fit_budget", "eval_kwargs", "fit_kwargs", "env-kwargs", "wrapper-kwargs", "per-instance", "sampler_kwargs",
        "optimize-timeout"])
def test_every_string_read_from_a_float_gets_one_hint(entry, problem):
    """Wherever YAML 1.1 read '1e-3' as a string: one line, with the spelling to use (not "is not of type")."""
    problems = schema_problems({"experiments": {"e": {"agent": "a.B", "fit_budget": 1, **entry}}})
    assert len(problems) == 1 and problems[0].startswith(f"experiments.e.{problem}"), problems


def test_numbers_and_other_strings_are_not_misread_floats():
    entry = {"agent": "a.B", "fit_budget": 1, "init_kwargs": {"mode": "e5", "x": 1.0e-3, "tag": "1e-3x", "n": "10"}}
    assert schema_problems({"experiments": {"e": entry}}) == []
