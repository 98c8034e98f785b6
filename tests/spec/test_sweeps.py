"""rlpipe.spec.sweeps: a config's sweeps expanded into experiments (order, names, labels, merge), each problem with its
message, and an expanded experiment computing exactly what the same experiment written out does."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from rlpipe.core import tasks
from rlpipe.errors import ConfigError
from rlpipe.spec.experiment import validate_study
from rlpipe.spec.schema import experiment_schema
from rlpipe.spec.sweeps import SweepPoint, expand_sweeps, sweep_lines

QL = "rlpipe.agents.QLearningAgent"
VI = "rlpipe.agents.ValueIterationAgent"

# The shape of the feature's description
TABULAR = {
    "grid": {
        "agent": {"vi": VI},
        "train_env": ["FrozenLake-v1", "Taxi-v4"],
        "init_kwargs": {"fast": {"epsilon": 1.0e-4}, "slow": {"epsilon": 1.0e-8}},
        "init_kwargs.gamma": [0.9, 0.99],
    },
    "fit_budget": 100,
    "n_fit": 3,
    "eval_kwargs": {"eval_horizon": 100, "n_simulations": 5},
}
QL_ONLY = {"grid": {"train_env": ["FrozenLake-v1", "Taxi-v4"]}, "agent": QL, "fit_budget": 100}


def sweep(base: dict[str, Any] = QL_ONLY, grid: dict[str, Any] | None = None, **shared: Any) -> dict[str, Any]:
    """A copy of ``base`` with axes added to its grid and shared keys set (``None`` deletes a key)."""
    result = copy.deepcopy(base)
    result["grid"].update(copy.deepcopy(grid or {}))
    for key, value in shared.items():
        if value is None:
            del result[key]
        else:
            result[key] = value
    return result


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_study(config)
    return list(info.value.problems)


# ---------------------------------------------------------------------------------------------- expansion
def test_the_grid_expands_in_the_order_written_into_readable_names():
    tabular = sweep(TABULAR)
    tabular["grid"]["agent"] = {"ql": QL}
    tabular["grid"]["init_kwargs"] = {"fast": {"learning_rate": 0.5}, "slow": {"learning_rate": 0.05}}
    study = validate_study({"sweeps": {"tabular": tabular}})
    assert list(study.experiments) == [
        "tabular-ql-FrozenLake-v1-fast-gamma0.9", "tabular-ql-FrozenLake-v1-fast-gamma0.99",
        "tabular-ql-FrozenLake-v1-slow-gamma0.9", "tabular-ql-FrozenLake-v1-slow-gamma0.99",
        "tabular-ql-Taxi-v4-fast-gamma0.9", "tabular-ql-Taxi-v4-fast-gamma0.99",
        "tabular-ql-Taxi-v4-slow-gamma0.9", "tabular-ql-Taxi-v4-slow-gamma0.99",
    ]
    assert study.sweep_points["tabular-ql-Taxi-v4-slow-gamma0.9"] == SweepPoint(
        sweep="tabular",
        labels={"agent": "ql", "train_env": "Taxi-v4", "init_kwargs": "slow", "init_kwargs.gamma": "gamma0.9"},
        values={"agent": QL, "train_env": "Taxi-v4", "init_kwargs": {"learning_rate": 0.05}, "init_kwargs.gamma": 0.9},
    )
    spec = study.experiment("tabular-ql-Taxi-v4-slow-gamma0.9")
    assert (spec.train_env, spec.init_kwargs, spec.n_fit) == ("Taxi-v4", {"learning_rate": 0.05, "gamma": 0.9}, 3)
    assert spec.eval_kwargs == {"eval_horizon": 100, "n_simulations": 5}


def test_experiments_written_out_come_first_then_each_sweep():
    config = {"experiments": {"lake": {"agent": QL, "train_env": "FrozenLake-v1", "fit_budget": 10}},
              "sweeps": {"b": QL_ONLY, "a": sweep(grid={"n_fit": [1, 2]})}}
    study = validate_study(config)
    assert list(study.experiments) == ["lake", "b-FrozenLake-v1", "b-Taxi-v4", "a-FrozenLake-v1-1",
                                       "a-FrozenLake-v1-2", "a-Taxi-v4-1", "a-Taxi-v4-2"]
    assert list(study.sweep_points) == list(study.experiments)[1:]
    assert study.experiment("a-Taxi-v4-2").n_fit == 2


def test_a_study_without_sweeps_has_no_points():
    study = validate_study({"experiments": {"e": {"agent": QL, "train_env": "FrozenLake-v1", "fit_budget": 10}}})
    assert study.sweep_points == {}


@pytest.mark.parametrize("key, value, label", [
    ("agent", "rlpipe.agents.QLearningAgent", "QLearningAgent"),  # the last component of an import path
    ("agent", "my_package.agents:MyAgent", "MyAgent"),
    ("train_env", "FrozenLake-v1", "FrozenLake-v1"),  # a gymnasium id as it is
    ("train_env", "my_package.envs:Maze-v0", "Maze-v0"),  # without the module that registers it
    ("train_env", {"id": "Taxi-v4", "kwargs": {"is_rainy": True}}, "Taxi-v4"),
    ("eval_env", {"constructor": "my_package.envs:make_maze", "kwargs": {"size": 8}}, "make_maze"),
    ("fit_budget", 1000, "1000"),  # a number as written
    ("allow_pickle", True, "true"),
    ("n_checkpoints", None, "none"),
    ("init_kwargs.gamma", 0.9, "gamma0.9"),  # a number after the name of the key it sets
    ("init_kwargs.double", False, "doublefalse"),
    ("eval_kwargs.n_simulations", 5, "n_simulations5"),
    ("learning_curve.tag", "bellman_residual", "bellman_residual"),
])
def test_labels_derived_from_values(key, value, label):
    base = {"grid": {key: [value]}, "agent": QL, "fit_budget": 10}
    base.pop(key, None)
    expansion = expand_sweeps({"s": base}, rejected=[], experiments=[])
    assert expansion.problems == []
    assert list(expansion.points) == [f"s-{label}"]
    assert expansion.points[f"s-{label}"].labels == {key: label}


def test_mapping_values_merge_one_level_deep_over_the_shared_value_and_others_replace_it():
    shared = {"init_kwargs": {"learning_rate": 0.1, "epsilon_end": 0.2},
              "writer": {"log_interval": 10, "maxlen_by_tag": {"a": 5}}, "eval_kwargs": {"n_simulations": 7}}
    grid = {"init_kwargs": {"fast": {"learning_rate": 0.5}},
            "writer": {"quiet": {"print_log": False, "maxlen_by_tag": {"b": 6}}},
            "init_kwargs.gamma": [0.9],
            "eval_kwargs": {"long": {"eval_horizon": 500}},
            "n_fit": {"few": 2}}
    study = validate_study({"sweeps": {"m": sweep(grid=grid, **shared)}})
    spec = study.experiment("m-Taxi-v4-fast-quiet-gamma0.9-long-few")
    assert spec.init_kwargs == {"learning_rate": 0.5, "epsilon_end": 0.2, "gamma": 0.9}
    assert spec.writer == {"print_log": False, "style_log": "multi_line", "log_interval": 10, "maxlen": None,
                           "maxlen_by_tag": {"b": 6}}  # a nested mapping is replaced whole
    assert spec.eval_kwargs == {"n_simulations": 7, "eval_horizon": 500}
    assert spec.n_fit == 2


def test_a_later_axis_wins_over_an_earlier_one_that_sets_the_same_key():
    grid = {"init_kwargs": {"fast": {"gamma": 0.5, "learning_rate": 0.5}}, "init_kwargs.gamma": [0.9]}
    study = validate_study({"sweeps": {"m": sweep(grid=grid)}})
    assert study.experiment("m-FrozenLake-v1-fast-gamma0.9").init_kwargs == {"gamma": 0.9, "learning_rate": 0.5}


def test_an_expanded_experiment_computes_what_the_same_experiment_written_out_does():
    """Same spec, same seeds, same task hashes: nothing of the sweep is part of a task."""
    name = "tabular-vi-Taxi-v4-fast-gamma0.9"
    written = {"agent": VI, "train_env": "Taxi-v4", "init_kwargs": {"epsilon": 1.0e-4, "gamma": 0.9},
               "fit_budget": 100, "n_fit": 3, "eval_kwargs": {"eval_horizon": 100, "n_simulations": 5}}
    swept = validate_study({"seed": 5, "sweeps": {"tabular": TABULAR}})
    by_hand = validate_study({"seed": 5, "experiments": {name: written}})
    assert swept.experiment(name) == by_hand.experiment(name)
    for instance in range(3):
        fits = [tasks.fit_task(study.experiment(name), study.root, instance) for study in (swept, by_hand)]
        evals = [tasks.eval_task(study.experiment(name), study.root, instance) for study in (swept, by_hand)]
        assert fits[0].to_json() == fits[1].to_json() and fits[0].task_hash() == fits[1].task_hash()
        assert evals[0].task_hash() == evals[1].task_hash()
        assert (fits[0].instance_seed.generate_state(4) == fits[1].instance_seed.generate_state(4)).all()
        assert (evals[0].episode_seeds == evals[1].episode_seeds).all()
    aggregates = [tasks.aggregate_task(study.experiment(name), study.root, study.report) for study in (swept, by_hand)]
    assert aggregates[0].task_hash() == aggregates[1].task_hash()
    # the seeds are keyed by the name: another point's instance 0 has seeds of its own
    first = tasks.fit_task(swept.experiment(name), swept.root, 0)
    other = tasks.fit_task(swept.experiment("tabular-vi-Taxi-v4-fast-gamma0.99"), swept.root, 0)
    assert (other.instance_seed.generate_state(4) != first.instance_seed.generate_state(4)).any()


def test_experiments_are_optional_with_sweeps_but_one_of_them_is_required():
    assert len(validate_study({"sweeps": {"s": QL_ONLY}}).experiments) == 2
    assert problems({"seed": 3}) == ["(top level): missing required key 'experiments'"]


def test_expanded_experiments_share_no_value():
    body = {"grid": {"n_fit": [1, 2]}, "agent": QL, "fit_budget": 10, "train_env": {"id": "Taxi-v4"}}
    study = validate_study({"sweeps": {"s": body}})
    first, second = study.experiments.values()
    assert first.train_env == second.train_env == {"id": "Taxi-v4", "kwargs": {}, "wrappers": []}
    assert first.train_env is not second.train_env and first.writer is not second.writer


# ---------------------------------------------------------------------------------------------- problems
NOT_TUNED = ("a sweep cannot be tuned: the best init_kwargs are written back into the tuned experiment's entry, which "
             "the experiments of a sweep do not have; write the point to tune under experiments: (with a name of its "
             "own) and give it its optimize section there")
MAPPING_KEYS = "init_kwargs, fit_kwargs, eval_kwargs, writer, resources or learning_curve"

BAD_SWEEPS = [
    pytest.param({**QL_ONLY, "grid": {}}, [
        "sweeps.s.grid: is empty: give at least one axis, as key: [values] or key: {label: value}"], id="empty-grid"),
    pytest.param(sweep(grid={"n_fit": []}), ["sweeps.s.grid.n_fit: is empty: give at least one value"],
                 id="empty-axis"),
    pytest.param(sweep(grid={"n_fits": [1]}), [
        "sweeps.s.grid.n_fits: unknown axis key 'n_fits' (did you mean 'n_fit'?); an axis is an experiment key, or "
        f"<key>.<name> for one key of {MAPPING_KEYS}"], id="unknown-axis-key"),
    pytest.param(sweep(grid={"fit_budget.steps": [1]}), [
        "sweeps.s.grid.fit_budget.steps: fit_budget is not a mapping, so 'fit_budget.steps' names no key in it; "
        f"<key>.<name> is for {MAPPING_KEYS}"], id="dotted-key-into-a-scalar"),
    pytest.param(sweep(grid={"writer.print_logs": [True]}), [
        "sweeps.s.grid.writer.print_logs: unknown axis key: writer has no key 'print_logs' (did you mean 'print_log'?)"],
        id="dotted-key-unknown-in-a-closed-mapping"),
    pytest.param(sweep(grid={"fit_budget": [10, 20]}), [
        "sweeps.s.fit_budget: is also an axis of the grid, whose values replace it at every point: remove one"],
        id="shared-and-axis"),
    pytest.param(sweep(grid={"init_kwargs.gamma": [0.9]}, init_kwargs={"gamma": 0.5}), [
        "sweeps.s.init_kwargs.gamma: is also an axis of the grid, whose values replace it at every point: remove one"],
        id="shared-and-dotted-axis"),
    pytest.param(sweep(fit_budjet=5), ["sweeps.s: unknown key 'fit_budjet' (did you mean 'fit_budget'?)"],
                 id="unknown-shared-key"),
    pytest.param(sweep(agent=None), [
        "sweeps.s: missing required key 'agent' (set it here for every point, or make it an axis of the grid)"],
        id="missing-required-key"),
    pytest.param(sweep(optimize={"n_trials": 4}), [f"sweeps.s.optimize: {NOT_TUNED}"], id="optimize-shared"),
    pytest.param(sweep(grid={"optimize.n_trials": [4, 8]}), [f"sweeps.s.grid.optimize.n_trials: {NOT_TUNED}"],
                 id="optimize-axis"),
    pytest.param(sweep(grid={"init_kwargs": [{"gamma": 0.5}]}), [
        'sweeps.s.grid.init_kwargs[0]: cannot derive a label from {"gamma": 0.5}: write the axis as a mapping '
        "{label: value}"], id="unlabelled-value"),
    pytest.param(sweep(agent=None, grid={"agent": [QL, "helpers_agents:QLearningAgent"]}), [
        "sweeps.s.grid.agent: the values [0] and [1] are both labelled 'QLearningAgent': give each value its own "
        "label, as a mapping {label: value}"], id="duplicate-labels"),
    pytest.param(sweep(grid={"train_env": ["ALE/Pong-v5"]}), [
        "sweeps.s.grid.train_env[0]: the label 'ALE/Pong-v5' cannot be part of an experiment name (letters, digits, "
        "'_', '-', '.', starting with a letter or digit): label the values yourself: write the axis as a mapping "
        "{label: value}"], id="derived-label-not-a-name"),
    pytest.param(sweep(grid={"train_env": {"my lake": "FrozenLake-v1"}}), [
        "sweeps.s.grid.train_env.my lake: the label 'my lake' cannot be part of an experiment name (letters, digits, "
        "'_', '-', '.', starting with a letter or digit): give it another label"], id="given-label-not-a-name"),
    pytest.param(sweep(grid={"train_env": {"a-b": "FrozenLake-v1", "a": "Taxi-v4"},
                             "fit_budget": {"c": 10, "b-c": 20}}, fit_budget=None), [
        "sweeps.s: the point (train_env=a, fit_budget=b-c) is named 's-a-b-c', as is the point (train_env=a-b, "
        "fit_budget=c) of sweeps.s: change a label, or rename one"], id="two-points-one-name"),
    pytest.param(sweep(grid={"n_fit": {"one": 0, "two": 2}, "eval_kwargs.gamma": [2, 0.5]}), [
        "sweeps.s.grid.n_fit.one: 0 is less than the minimum of 1",
        "sweeps.s.grid.eval_kwargs.gamma[0]: 2 is greater than the maximum of 1"], id="axis-values-schema"),
    pytest.param(sweep(grid={"init_kwargs": {"fast": 3}}), ["sweeps.s.grid.init_kwargs.fast: 3 is not of type 'object'"],
                 id="mapping-axis-value-not-a-mapping"),
    pytest.param(sweep(n_fit=0, eval_kwargs={"gamma": 1.5}), [
        "sweeps.s.eval_kwargs.gamma: 1.5 is greater than the maximum of 1",
        "sweeps.s.n_fit: 0 is less than the minimum of 1"], id="shared-values-schema"),
    pytest.param(sweep(grid={"init_kwargs.learning_rate": ["1e-3"]}, eval_kwargs={"gamma": "1e-2"}), [
        "sweeps.s.eval_kwargs.gamma: '1e-2' was read as a string (YAML 1.1 floats need a dot and a signed exponent: "
        "write 1.0e-2)",
        "sweeps.s.grid.init_kwargs.learning_rate[0]: '1e-3' was read as a string (YAML 1.1 floats need a dot and a "
        "signed exponent: write 1.0e-3)"], id="yaml11-float-strings-once"),
    pytest.param(sweep(grid={"train_env": ["FrozenLake-v1", "Taxi-v9"]}), [
        "sweeps.s (s-Taxi-v9).train_env: gymnasium does not know the env id 'Taxi-v9'; did you mean 'Taxi-v4'?"],
        id="problem-of-one-point"),
]


@pytest.mark.parametrize("body, expected", BAD_SWEEPS)
def test_bad_sweep(body, expected):
    with pytest.raises(ConfigError) as info:
        validate_study({"sweeps": {"s": body}})
    assert list(info.value.problems) == expected
    assert str(info.value).startswith("invalid config:\n  - sweeps.s")


def test_a_point_named_as_an_experiment_written_out():
    config = {"experiments": {"s-Taxi-v4": {"agent": QL, "train_env": "Taxi-v4", "fit_budget": 5}},
              "sweeps": {"s": QL_ONLY}}
    assert problems(config) == ["sweeps.s: the point (train_env=Taxi-v4) is named 's-Taxi-v4', as is "
                                "experiments.s-Taxi-v4: change a label, or rename one"]


def test_a_point_named_as_a_point_of_another_sweep():
    config = {"sweeps": {"s": QL_ONLY, "s-Taxi": {"grid": {"train_env": {"v4": "Taxi-v4"}}, "agent": QL,
                                                   "fit_budget": 5}}}
    assert problems(config) == ["sweeps.s-Taxi: the point (train_env=v4) is named 's-Taxi-v4', as is the point "
                                "(train_env=Taxi-v4) of sweeps.s: change a label, or rename one"]


def test_a_problem_of_the_points_is_listed_once_per_point_with_its_name():
    tabular = sweep(TABULAR)  # the feature's example: value iteration has no learning rate
    tabular["grid"]["agent"] = {"ql": QL, "vi": VI}
    tabular["grid"]["init_kwargs"] = {"fast": {"learning_rate": 0.5}, "slow": {"learning_rate": 0.05}}
    lines = problems({"sweeps": {"tabular": tabular}})
    refused = "ValueIterationAgent does not accept 'learning_rate' (allowed: compress_pickle, epsilon, gamma)"
    assert lines == [f"sweeps.tabular (tabular-vi-{env}-{speed}-{gamma}).init_kwargs: {refused}"
                     for env in ("FrozenLake-v1", "Taxi-v4") for speed in ("fast", "slow")
                     for gamma in ("gamma0.9", "gamma0.99")]


def test_every_problem_is_listed_at_once():
    config = {"seed": -1,
              "experiments": {"e": {"agent": QL, "train_env": "FrozenLake-v1", "fit_budget": 5, "n_fit": 0}},
              "sweeps": {"a": sweep(grid={"n_fits": [1]}, fit_budget=-5),
                         "b": sweep(grid={"train_env": ["Taxi-v9"]}),
                         "c": {"grid": {"agent": 3}}}}
    assert problems(config) == [
        "experiments.e.n_fit: 0 is less than the minimum of 1",
        "seed: -1 is less than the minimum of 0",
        "sweeps.c.grid.agent: expected a mapping or a list, got 3",  # the schema rejects c: nothing more of it
        "sweeps.a.grid.n_fits: unknown axis key 'n_fits' (did you mean 'n_fit'?); an axis is an experiment key, or "
        f"<key>.<name> for one key of {MAPPING_KEYS}",
        "sweeps.a.fit_budget: -5 is less than the minimum of -1",
        "sweeps.b (b-Taxi-v9).train_env: gymnasium does not know the env id 'Taxi-v9'; did you mean 'Taxi-v4'?",
    ]


@pytest.mark.parametrize("key", [key for key in experiment_schema()["properties"] if key != "optimize"])
def test_every_experiment_key_of_the_schema_can_be_an_axis(key):
    """The keys come from the schema: a key added to it can be swept without touching the sweeps."""
    expansion = expand_sweeps({"s": {"grid": {key: {"x": None}}}}, rejected=[], experiments=[])
    assert not [line for line in expansion.problems if "axis key" in line]


def test_the_experiment_schema_constrains_each_key_on_its_own():
    """What lets a sweep check its shared keys and axis values once each, not every point: the experiment schema has
    no constraint across keys but which are required. A new one (dependentRequired, if/then...) needs a check here."""
    assert set(experiment_schema()) <= {"type", "additionalProperties", "required", "properties", "description"}


# ---------------------------------------------------------------------------------------------- rlpipe validate
def test_sweep_lines_list_the_first_points_and_count_the_others():
    study = validate_study({"sweeps": {"s": sweep(grid={"init_kwargs.gamma": [0.9, 0.99], "n_fit": [1, 2]})}})
    assert sweep_lines(study.sweep_points, {name: spec.n_fit for name, spec in study.experiments.items()}, shown=3) == [
        "  sweep s: 8 experiments (2 train_env × 2 init_kwargs.gamma × 2 n_fit), 12 instances",
        "    s-FrozenLake-v1-gamma0.9-1: train_env=FrozenLake-v1, init_kwargs.gamma=0.9, n_fit=1",
        "    s-FrozenLake-v1-gamma0.9-2: train_env=FrozenLake-v1, init_kwargs.gamma=0.9, n_fit=2",
        "    s-FrozenLake-v1-gamma0.99-1: train_env=FrozenLake-v1, init_kwargs.gamma=0.99, n_fit=1",
        "    ... and 5 more",
    ]
