"""rlpipe.spec.metrics and the metrics section of a config: the algorithm of each experiment across environments, and
every problem of the section reported before any job runs, one line each naming the key."""
from __future__ import annotations

import copy

import pytest

from rlpipe.errors import ConfigError
from rlpipe.spec.experiment import validate_study

REFERENCES = {"FrozenLake-v1": {"random": 0.014, "optimum": 0.7442}, "CartPole-v1": {"random": 22.0, "optimum": 500.0}}
QL = {"agent": "rlpipe.agents.QLearningAgent", "train_env": "FrozenLake-v1", "fit_budget": 100}
RANDOM_LAKE = {"agent": "rlpipe.agents.RandomAgent", "train_env": "FrozenLake-v1", "fit_budget": 100}
RANDOM_POLE = {"agent": "rlpipe.agents.RandomAgent", "train_env": "CartPole-v1", "fit_budget": 100}


def study_config(experiments: dict | None = None, **metrics: object) -> dict:
    return {"experiments": copy.deepcopy(experiments or {"ql": QL, "lake": RANDOM_LAKE, "pole": RANDOM_POLE}),
            "metrics": {"reference_scores": copy.deepcopy(REFERENCES), **metrics}}


def problems(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        validate_study(config)
    return list(error.value.problems)


# ---------------------------------------------------------------------------------------------- the section
def test_a_config_without_metrics_has_none():
    assert validate_study({"experiments": {"ql": QL}}).metrics is None


def test_the_section_gets_its_defaults():
    study = validate_study(study_config())
    assert study.metrics == {"reference_scores": REFERENCES, "bootstrap_samples": 2000, "profile_thresholds": None,
                             "sample_efficiency": {"tag": "episode_rewards", "xtag": "global_step",
                                                   "smoothing_window": None, "n_points": 100}}


def test_every_env_of_the_study_needs_reference_scores():
    config = study_config()
    config["metrics"]["reference_scores"] = {"CartPole-v0": {"random": 22.0, "optimum": 500.0}}
    assert problems(config) == [
        "metrics.reference_scores: no reference scores for env 'FrozenLake-v1' (evaluated by 'ql' and 'lake'): add "
        "'FrozenLake-v1: {random: ..., optimum: ...}'",
        "metrics.reference_scores: no reference scores for env 'CartPole-v1' (evaluated by 'pole'): add "
        "'CartPole-v1: {random: ..., optimum: ...}' (did you mean 'CartPole-v0'?)",
    ]


def test_the_evaluation_env_is_the_one_that_needs_reference_scores():
    config = study_config({"ql": {**QL, "eval_env": "Taxi-v4"}})
    assert problems(config) == ["metrics.reference_scores: no reference scores for env 'Taxi-v4' (evaluated by 'ql'): "
                                "add 'Taxi-v4: {random: ..., optimum: ...}'"]


def test_random_and_optimum_must_differ():
    config = study_config()
    config["metrics"]["reference_scores"]["CartPole-v1"] = {"random": 22, "optimum": 22.0}
    assert problems(config) == [
        "metrics.reference_scores.CartPole-v1: random and optimum are both 22, but a score is normalised as "
        "(score - random) / (optimum - random): give the score of an optimal (or the best known) policy as optimum"]


@pytest.mark.parametrize(("change", "message"), [
    ({"reference_scores": {"CartPole-v1": {"random": 22.0}}},
     "metrics.reference_scores.CartPole-v1: missing required key 'optimum'"),
    ({"reference_scores": {"CartPole-v1": {"random": 22.0, "optimum": "5e2"}}},
     "metrics.reference_scores.CartPole-v1.optimum"),  # YAML 1.1 reads 5e2 as a string: the spelling to use is given
    ({"bootstrap_sample": 100}, "metrics: unknown key 'bootstrap_sample' (did you mean 'bootstrap_samples'?)"),
    ({"bootstrap_samples": 10}, "metrics.bootstrap_samples: 10 is less than the minimum of 100"),
    ({"sample_efficiency": {"xtag": "steps"}}, "metrics.sample_efficiency.xtag: 'steps' is not one of"),
    ({"profile_thresholds": []}, "metrics.profile_thresholds: [] should be non-empty"),
])
def test_the_schema_checks_the_section(change, message):
    config = study_config()
    if "reference_scores" in change:
        config["metrics"]["reference_scores"].update(change["reference_scores"])
    else:
        config["metrics"].update(change)
    lines = problems(config)
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_no_reference_scores_at_all():
    assert problems({"experiments": {"ql": QL}, "metrics": {}}) == ["metrics: missing required key 'reference_scores'"]


# ---------------------------------------------------------------------------------------------- algorithms
def test_an_experiment_is_its_agents_class_unless_it_names_its_algorithm():
    study = validate_study(study_config({"ql": QL, "lake": RANDOM_LAKE, "pole": {**RANDOM_POLE, "algorithm": "uniform"}}))
    assert [study.algorithm(name) for name in study.experiments] == ["QLearningAgent", "RandomAgent", "uniform"]
    assert study.experiment("pole").to_config()["algorithm"] == "uniform"
    assert "algorithm" not in study.experiment("lake").to_config()


def test_two_experiments_of_one_algorithm_on_one_env_are_refused():
    config = study_config({"ql": QL, "ql_fast": {**QL, "init_kwargs": {"learning_rate": 0.5}}, "lake": RANDOM_LAKE})
    assert problems(config) == [
        "metrics: experiments 'ql' and 'ql_fast' would be one algorithm, 'QLearningAgent', on env 'FrozenLake-v1', "
        "their runs pooled: give each its own 'algorithm' key (in the experiment, or in its sweep)"]
    config["experiments"]["ql_fast"]["algorithm"] = "QLearningAgent-fast"
    assert validate_study(config).algorithm("ql_fast") == "QLearningAgent-fast"


def test_the_algorithm_of_a_sweep_point_is_the_sweep_and_its_labels_but_the_envs():
    sweep = {"grid": {"agent": {"ql": "rlpipe.agents.QLearningAgent", "random": "rlpipe.agents.RandomAgent"},
                      "train_env": ["FrozenLake-v1", "CartPole-v1"], "fit_budget": {"short": 100, "long": 200}}}
    config = {"sweeps": {"grid": sweep}, "metrics": {"reference_scores": REFERENCES}}
    config["sweeps"]["grid"]["grid"]["agent"] = {"random": "rlpipe.agents.RandomAgent"}  # QLearning needs a Discrete env
    study = validate_study(config)
    assert {name: study.algorithm(name) for name in study.experiments} == {
        "grid-random-FrozenLake-v1-short": "grid-random-short", "grid-random-FrozenLake-v1-long": "grid-random-long",
        "grid-random-CartPole-v1-short": "grid-random-short", "grid-random-CartPole-v1-long": "grid-random-long"}


def test_a_sweep_sharing_an_algorithm_key_over_other_axes_is_refused():
    sweep = {"grid": {"train_env": ["FrozenLake-v1"], "fit_budget": [100, 200]}, "agent": "rlpipe.agents.RandomAgent",
             "algorithm": "random"}
    lines = problems({"sweeps": {"s": sweep}, "metrics": {"reference_scores": REFERENCES}})
    assert lines == ["metrics: experiments 's-FrozenLake-v1-100' and 's-FrozenLake-v1-200' would be one algorithm, "
                     "'random', on env 'FrozenLake-v1', their runs pooled: give each its own 'algorithm' key (in the "
                     "experiment, or in its sweep)"]


def test_many_experiments_of_one_algorithm_are_counted_not_all_named():
    experiments = {f"q{k}": {**QL, "fit_budget": 100 + k} for k in range(6)}
    (line,) = problems(study_config(experiments))
    assert line.startswith("metrics: experiments 'q0', 'q1', 'q2', 'q3' and 2 more would be one algorithm")
