"""rlpipe.core.tasks: tasks built from a spec, JSON round trips, what a change reruns, and per-instance seeds.

What a task holds is what a change reruns (its JSON is the rule's params, its hash the resume key); run
settings are kept apart. The tests named ``test_rerun_*`` check each row of the config README's "What a
change reruns" table as a property of task JSON; tests/pipeline proves with Snakemake that the JSON is the trigger.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from rlpipe.core import tasks
from rlpipe.core.tasks import AggregateTask, EvalTask, FitTask, RunSettings
from rlpipe.runtime.seeding import Stream, experiment_stream, seed_record
from rlpipe.spec.experiment import experiment_spec, validate_study
from rlpipe.spec.schema import experiment_schema

BASE = {
    "seed": 5,
    "experiments": {
        "ql": {
            "agent": "rlpipe.agents.QLearningAgent",
            "train_env": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}},
            "fit_budget": 300,
            "n_fit": 3,
            "init_kwargs": {"learning_rate": 0.5, "gamma": 0.9},
            "eval_kwargs": {"n_simulations": 4, "eval_horizon": 50},
        },
        "vi": {
            "agent": "rlpipe.agents.ValueIterationAgent",
            "train_env": "FrozenLake-v1",
            "eval_env": "FrozenLake8x8-v1",
            "fit_budget": 20,
            "learning_curve": {"tag": "bellman_residual"},
        },
    },
}


def study(seed: int | None = None, **overrides: Any):
    """The BASE study with keys of experiment ``ql`` replaced."""
    cfg = copy.deepcopy(BASE)
    if seed is not None:
        cfg["seed"] = seed
    cfg["experiments"]["ql"].update(overrides)
    return validate_study(cfg)


def fit_task(s, name: str, instance: int) -> FitTask:
    return tasks.fit_task(s.experiment(name), s.root, instance)


def eval_task(s, name: str, instance: int) -> EvalTask:
    return tasks.eval_task(s.experiment(name), s.root, instance)


def aggregate_task(s, name: str) -> AggregateTask:
    return tasks.aggregate_task(s.experiment(name), s.root, s.report)


def draws(seq: np.random.SeedSequence) -> list[int]:
    return np.random.default_rng(seq).integers(0, 2**62, size=4).tolist()


# ---------------------------------------------------------------------------------------------- building
def test_fit_task_fields():
    task = fit_task(study(), "ql", 1)
    assert isinstance(task, FitTask)
    assert task.experiment == "ql"
    assert task.instance == 1
    assert task.record()["agent"] == "rlpipe.agents.q_learning:QLearningAgent"  # one name, whichever driver
    assert task.train_env == {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}, "wrappers": []}
    assert task.eval_env == task.train_env  # defaults to train_env
    assert task.init_kwargs == {"learning_rate": 0.5, "gamma": 0.9}
    assert task.fit_budget == 300
    assert task.fit_kwargs == {}
    assert task.maxlen is None and task.maxlen_by_tag == {}
    assert task.chunks is None  # Q-learning's fit is additive: its chunks are a run setting
    assert tasks.run_settings(study().experiment("ql")) == RunSettings(
        n_checkpoints=10, writer={"print_log": True, "style_log": "multi_line", "log_interval": 3}, allow_pickle=False)
    assert task.root_seed == seed_record(np.random.SeedSequence(5)) == {"entropy": 5, "spawn_key": []}


def test_eval_task_fields():
    task = eval_task(study(), "vi", 0)
    assert isinstance(task, EvalTask)
    assert task.train_env == "FrozenLake-v1"
    assert task.eval_env == "FrozenLake8x8-v1"
    assert task.eval_kwargs == {}  # what the user wrote: agent.eval receives nothing it was not given
    assert len(task.episode_seeds) == 10  # the rollout defaults are those of AgentWithSimplePolicy.eval
    assert not hasattr(task, "fit_budget")


def test_aggregate_task_fields():
    task = aggregate_task(study(), "vi")
    assert isinstance(task, AggregateTask)
    assert task.agent == "rlpipe.agents.value_iteration:ValueIterationAgent"
    assert task.env == "FrozenLake8x8-v1"  # the evaluation env names the experiment
    assert task.fit_budget == 20
    assert task.instances == [0, 1, 2, 3]
    assert task.learning_curve == {"tag": "bellman_residual", "xtag": "global_step", "smoothing_window": 1}
    assert task.report == {"confidence": 0.95, "bootstrap_samples": 10000}
    assert aggregate_task(study(), "ql").env == "FrozenLake-v1"
    assert draws(task.statistics_seed) == draws(experiment_stream(np.random.SeedSequence(5), "vi", Stream.STATISTICS, 0))


def test_unknown_experiment():
    from rlpipe.errors import ConfigError

    with pytest.raises(ConfigError, match="no experiment named 'nope'"):
        fit_task(study(), "nope", 0)


@pytest.mark.parametrize("make", [fit_task, eval_task])
@pytest.mark.parametrize("instance", [-1, 3, 100])
def test_instance_out_of_range(make, instance):  # noqa: F811
    with pytest.raises(IndexError, match=rf"experiment 'ql' has instances 0\.\.2, not {instance}"):
        make(study(), "ql", instance)


# ---------------------------------------------------------------------------------------------- JSON
@pytest.mark.parametrize(
    "make, cls",
    [
        (lambda s: fit_task(s, "ql", 2), FitTask),
        (lambda s: eval_task(s, "ql", 1), EvalTask),
        (lambda s: aggregate_task(s, "vi"), AggregateTask),
        (lambda s: fit_task(s, "vi", 0), FitTask),
    ],
)
def test_json_round_trip(make, cls):
    task = make(study())
    text = task.to_json()
    assert json.loads(text)["experiment"] == task.experiment
    back = cls.from_json(text)
    assert back.record() == task.record()  # the JSON names the agent class by its import path
    assert back.task_hash() == task.task_hash()
    assert back.to_json() == text


def test_json_is_canonical():
    text = fit_task(study(), "ql", 0).to_json()
    assert " " not in text.replace("FrozenLake-v1", "")  # compact separators
    keys = list(json.loads(text))
    assert keys == sorted(keys)


HASHES_IN_A_SUBPROCESS = """
import json, sys
from rlpipe.core import tasks
from rlpipe.spec.experiment import validate_study
s = validate_study(json.loads(sys.argv[1]))
ql = s.experiment("ql")
print(json.dumps([tasks.fit_task(ql, s.root, 0).task_hash(), tasks.eval_task(ql, s.root, 2).task_hash(),
                  tasks.aggregate_task(ql, s.root, s.report).task_hash()]))
"""


def test_task_hash_is_stable_across_processes():
    """sha256 of canonical JSON: no salted hash(), so another interpreter (another PYTHONHASHSEED) gives the same
    hashes; the resume key of a fit and Snakemake's params depend on it."""
    hash_seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # never this process's salt
    s = study()
    ours = [fit_task(s, "ql", 0).task_hash(), eval_task(s, "ql", 2).task_hash(), aggregate_task(s, "ql").task_hash()]
    assert all(len(h) == 16 for h in ours) and len(set(ours)) == 3
    result = subprocess.run([sys.executable, "-c", HASHES_IN_A_SUBPROCESS, json.dumps(BASE)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ours


# ---------------------------------------------------------------------------------------------- hashes
def fit_hash(s, instance: int = 0) -> str:
    return fit_task(s, "ql", instance).task_hash()


def eval_hash(s, instance: int = 0) -> str:
    return eval_task(s, "ql", instance).task_hash()


@pytest.mark.parametrize(
    "changed",
    [
        {"fit_budget": 301},
        {"init_kwargs": {"learning_rate": 0.4, "gamma": 0.9}},
        {"init_kwargs": {"learning_rate": 0.5}},
        {"train_env": "FrozenLake-v1"},
        {"agent": "rlpipe.agents.RandomAgent", "init_kwargs": {}},
    ],
)
def test_fit_hash_changes_with_what_the_fit_depends_on(changed):
    assert fit_hash(study(**changed)) != fit_hash(study())


def test_fit_hash_changes_with_the_seed_and_the_instance():
    assert fit_hash(study(seed=6)) != fit_hash(study())
    assert fit_hash(study(), 1) != fit_hash(study(), 0)


@pytest.mark.parametrize(
    "changed",
    [
        {"eval_kwargs": {"n_simulations": 40, "eval_horizon": 7, "gamma": 0.5}},
        {"n_fit": 7},
        {"learning_curve": {"tag": "episode_length"}},
    ],
)
def test_fit_hash_ignores_what_the_fit_does_not_depend_on(changed):
    assert fit_hash(study(**changed)) == fit_hash(study())
    assert fit_task(study(**changed), "ql", 2).record() == fit_task(study(), "ql", 2).record()


def test_fit_hash_does_not_depend_on_other_experiments():
    cfg = copy.deepcopy(BASE)
    cfg["experiments"]["vi"]["fit_budget"] = 99
    cfg["experiments"]["new"] = copy.deepcopy(BASE["experiments"]["vi"])
    assert fit_hash(validate_study(cfg)) == fit_hash(study())


def test_eval_hash_changes_with_eval_kwargs():
    base = eval_hash(study())
    assert eval_hash(study(eval_kwargs={"n_simulations": 5, "eval_horizon": 50})) != base
    assert eval_hash(study(eval_kwargs={"n_simulations": 4, "eval_horizon": 51})) != base
    assert eval_hash(study(eval_kwargs={"n_simulations": 4, "eval_horizon": 50, "gamma": 0.9})) != base
    assert eval_hash(study(n_fit=8)) == base


# ---------------------------------------------------------------------------------------------- init kwargs
def test_init_kwargs_per_instance_merged_over_init_kwargs():
    s = study(init_kwargs_per_instance=[{}, {"learning_rate": 0.1}, {"epsilon_end": 0.2, "gamma": 0.5}])
    assert fit_task(s, "ql", 0).init_kwargs == {"learning_rate": 0.5, "gamma": 0.9}
    assert fit_task(s, "ql", 1).init_kwargs == {"learning_rate": 0.1, "gamma": 0.9}
    assert eval_task(s, "ql", 2).init_kwargs == {"learning_rate": 0.5, "gamma": 0.5, "epsilon_end": 0.2}
    # only the instance whose kwargs changed gets a new hash
    assert fit_hash(s, 0) == fit_hash(study(), 0)
    assert fit_hash(s, 1) != fit_hash(study(), 1)


# ---------------------------------------------------------------------------------------------- seeds
def test_instance_seeds_differ_across_instances_experiments_and_studies():
    s = study()
    seeds = [fit_task(s, "ql", i).instance_seed for i in range(3)]
    seeds += [fit_task(s, "vi", i).instance_seed for i in range(4)]
    seeds.append(fit_task(study(seed=6), "ql", 0).instance_seed)
    assert len({tuple(draws(seq)) for seq in seeds}) == len(seeds)


def test_instance_seed_is_the_fit_stream():
    task = fit_task(study(), "ql", 2)
    assert draws(task.instance_seed) == draws(experiment_stream(np.random.SeedSequence(5), "ql", Stream.FIT, 2))
    # fit and eval tasks of one instance build the same agent
    assert draws(eval_task(study(), "ql", 2).instance_seed) == draws(task.instance_seed)


def test_instance_seed_unchanged_when_n_fit_grows():
    small, large = study(n_fit=2), study(n_fit=10)
    for i in range(2):
        assert draws(fit_task(small, "ql", i).instance_seed) == draws(fit_task(large, "ql", i).instance_seed)
        assert fit_task(small, "ql", i).record() == fit_task(large, "ql", i).record()


def test_instance_seed_unchanged_when_experiments_are_added_or_renamed_elsewhere():
    cfg = copy.deepcopy(BASE)
    cfg["experiments"] = {"zzz": cfg["experiments"]["vi"], "ql": cfg["experiments"]["ql"]}
    assert draws(fit_task(validate_study(cfg), "ql", 1).instance_seed) == draws(fit_task(study(), "ql", 1).instance_seed)


def test_episode_seeds():
    task = eval_task(study(), "ql", 1)
    seeds = task.episode_seeds
    assert seeds.dtype == np.int64
    assert len(seeds) == 4
    assert len(set(seeds.tolist())) == 4
    assert ((0 <= seeds) & (seeds < 2**31)).all()
    expected = (experiment_stream(np.random.SeedSequence(5), "ql", Stream.EVAL, 1).generate_state(4) >> 1)
    np.testing.assert_array_equal(seeds, expected.astype(np.int64))
    np.testing.assert_array_equal(task.episode_seeds, seeds)  # a property, recomputed identically


def test_episode_seeds_prefix_stable_when_n_simulations_grows():
    few = eval_task(study(), "ql", 0).episode_seeds
    many = eval_task(study(eval_kwargs={"n_simulations": 50, "eval_horizon": 50}), "ql", 0).episode_seeds
    assert len(many) == 50
    np.testing.assert_array_equal(many[: len(few)], few)


def test_episode_seeds_differ_across_instances():
    s = study()
    first = [tuple(eval_task(s, "ql", i).episode_seeds.tolist()) for i in range(3)]
    assert len(set(first)) == 3


# ---------------------------------------------------------------------------------------------- the rerun table
def hashes(s) -> dict[str, str]:
    """The hash of every job of experiment ``ql`` (3 fits, 3 evaluations, the aggregate)."""
    found = {f"fit{i}": fit_task(s, "ql", i).task_hash() for i in range(s.experiment("ql").n_fit)}
    found |= {f"eval{i}": eval_task(s, "ql", i).task_hash() for i in range(s.experiment("ql").n_fit)}
    return found | {"aggregate": aggregate_task(s, "ql").task_hash()}


def rerun(before, after) -> set[str]:
    """The jobs a change reruns: those whose task changed (new jobs included), then, as Snakemake does, those whose
    inputs a rerun job rewrites (a fit's evaluation; any instance's aggregate)."""
    old, new = hashes(before), hashes(after)
    changed = {job for job in new if old.get(job) != new[job]}
    changed |= {job.replace("fit", "eval") for job in changed if job.startswith("fit")}
    return changed | ({"aggregate"} if changed else set())


ALL = {"fit0", "fit1", "fit2", "eval0", "eval1", "eval2", "aggregate"}
EVALS = {"eval0", "eval1", "eval2", "aggregate"}


@pytest.mark.parametrize("changed, reruns", [
    pytest.param({"eval_kwargs": {"n_simulations": 5, "eval_horizon": 50}}, EVALS, id="eval_kwargs"),
    pytest.param({"n_fit": 4}, {"fit3", "eval3", "aggregate"}, id="n_fit-up"),
    pytest.param({"init_kwargs": {"learning_rate": 0.4, "gamma": 0.9}}, ALL, id="init_kwargs"),
    pytest.param({"fit_budget": 301}, ALL, id="fit_budget"),
    pytest.param({"fit_kwargs": {"x": 1}}, ALL, id="fit_kwargs"),
    pytest.param({"train_env": "FrozenLake-v1"}, ALL, id="train_env"),
    pytest.param({"eval_env": "FrozenLake8x8-v1"}, ALL, id="eval_env"),
    pytest.param({"agent": "rlpipe.agents.RandomAgent", "init_kwargs": {}}, ALL, id="agent"),
    pytest.param({"writer": {"maxlen": 5}}, ALL, id="writer.maxlen"),
    pytest.param({"writer": {"print_log": False, "style_log": "one_line", "log_interval": 9}}, set(), id="writer-display"),
    pytest.param({"n_checkpoints": 4}, set(), id="n_checkpoints-additive-agent"),
    pytest.param({"allow_pickle": True}, set(), id="allow_pickle"),
    pytest.param({"learning_curve": {"tag": "episode_length"}}, {"aggregate"}, id="learning_curve"),
])
def test_rerun_table(changed, reruns):
    """Each row of config/README.md's "What a change reruns", as the change of task JSON."""
    assert rerun(study(), study(**changed)) == reruns


def other_experiment_hashes(s) -> dict[str, str]:
    """The hash of every job of the other experiment, ``vi``."""
    vi = s.experiment("vi")
    return {"fit0": tasks.fit_task(vi, s.root, 0).task_hash(), "eval0": tasks.eval_task(vi, s.root, 0).task_hash(),
            "aggregate": tasks.aggregate_task(vi, s.root, s.report).task_hash()}


def test_rerun_table_seed_and_report():
    """``seed`` reruns everything, ``report`` re-aggregates every experiment: ``vi`` too, though only ``ql`` is
    compared here by :func:`rerun`."""
    reseeded = study(seed=6)
    assert rerun(study(), reseeded) == ALL
    old, new = other_experiment_hashes(study()), other_experiment_hashes(reseeded)
    assert all(old[job] != new[job] for job in old), (old, new)
    cfg = copy.deepcopy(BASE)
    cfg["report"] = {"confidence": 0.9}
    reported = validate_study(cfg)
    assert rerun(study(), reported) == {"aggregate"}
    old, new = other_experiment_hashes(study()), other_experiment_hashes(reported)
    assert (old["fit0"], old["eval0"]) == (new["fit0"], new["eval0"]) and old["aggregate"] != new["aggregate"]


@pytest.mark.parametrize("before, after", [
    pytest.param(None, {}, id="section-added"),
    pytest.param({}, {"n_trials": 64, "timeout": 30, "n_optuna_workers": 4, "storage": "sqlite:///study.db"},
                 id="extent"),
    pytest.param({}, {"n_fit": 5, "sampler_method": "random", "pruner_method": "median", "fit_fraction": 0.5,
                      "search_space": {"learning_rate": {"type": "float", "low": 0.1, "high": 0.9}}}, id="settings"),
])
def test_rerun_table_optimize(before, after):
    """Only the optimize target reruns: no fit, evaluation or aggregate of the experiment (nor of the other) depends on
    its ``optimize`` section (``optimize.n_fit`` is not ``n_fit``). ``compare`` has no task of its own: its only
    inputs are the summaries (workflow/rules/compare.smk), so it reruns exactly when an aggregate does."""
    first = study() if before is None else study(optimize=before)
    second = study(optimize=after)
    assert rerun(first, second) == set()
    assert other_experiment_hashes(first) == other_experiment_hashes(second)
    assert tasks.run_settings(first.experiment("ql")) == tasks.run_settings(second.experiment("ql"))
    if before is not None:  # the change did reach the optimize target's task
        assert tasks.optimize_task(first.experiment("ql"), first.root).record() != \
            tasks.optimize_task(second.experiment("ql"), second.root).record()


def test_rerun_table_n_checkpoints_of_an_agent_whose_fit_is_not_additive():
    """Chunks change the training of such an agent: they are part of what its fit computes."""
    cfg = {"experiments": {"q": {"agent": "rlberry_style_agents:SelfSteppingQAgent", "train_env": "FrozenLake-v1",
                                 "fit_budget": 50, "allow_pickle": True}}}
    default = validate_study(cfg)
    cfg["experiments"]["q"]["n_checkpoints"] = 5
    chunked = validate_study(cfg)
    assert fit_task(default, "q", 0).chunks == 1 and fit_task(chunked, "q", 0).chunks == 5
    assert fit_task(default, "q", 0).task_hash() != fit_task(chunked, "q", 0).task_hash()


def test_run_settings_are_json_and_never_recorded_by_snakemake():
    run = tasks.run_settings(study(n_checkpoints=4, writer={"print_log": False}).experiment("ql"))
    assert RunSettings.from_json(str(run)) == run
    assert not isinstance(run, (int, float, bool, str, list, tuple, dict, set))  # Snakemake records only these


# ---------------------------------------------------------------------------------------------- keys of the schema
def test_writer_keys_are_identity_or_display_and_nothing_else():
    schema_keys = set(experiment_schema()["properties"]["writer"]["properties"])
    identity, display = set(tasks.IDENTITY_WRITER_KEYS), set(tasks.display_writer_keys())
    assert identity | display == schema_keys and not identity & display
    assert identity <= {f.name for f in dataclasses.fields(FitTask)}  # what a fit keeps is part of its task


def test_optimize_keys_define_the_study_or_its_extent_and_nothing_else():
    schema_keys = set(experiment_schema()["properties"]["optimize"]["properties"])
    extent, settings, selection = set(tasks.STUDY_EXTENT_KEYS), set(tasks.study_setting_keys()), set(tasks.SELECTION_KEYS)
    assert extent | settings | selection == schema_keys and not extent & settings and not selection & (extent | settings)
    assert settings == {"n_fit", "sampler_method", "sampler_kwargs", "pruner_method", "fit_fraction", "search_space"}


# ---------------------------------------------------------------------------------------------- both drivers
FIT_HASH = "ec1d8837f9c743a8"  # instance 1 of ENTRY, seed 5: a resume key of fits already on disk must not change


ENTRY = {"agent": "rlpipe.agents.QLearningAgent", "train_env": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}},
         "fit_budget": 300, "n_fit": 3, "writer": {"maxlen": 7, "maxlen_by_tag": {"a": 2}}}


def test_a_manager_spec_and_a_config_give_the_same_fit_task():
    """ExperimentManager builds its spec with experiment_spec, from the caller's own dicts (left unchanged)."""
    config = validate_study({"seed": 5, "experiments": {"ql": copy.deepcopy(ENTRY)}})
    entry = copy.deepcopy(ENTRY)
    manager = experiment_spec("ql", entry)
    assert entry == ENTRY  # no default filled into the caller's env or writer
    root = np.random.SeedSequence(5)
    assert tasks.fit_task(manager, root, 1).record() == tasks.fit_task(config.experiment("ql"), config.root, 1).record()
    assert tasks.fit_task(manager, root, 1).task_hash() == FIT_HASH
