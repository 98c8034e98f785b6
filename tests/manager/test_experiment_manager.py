"""ExperimentManager: rlberry's documented behaviour, without rlberry's known defects.

Every test uses FrozenLake with tiny budgets, ``output_dir=tmp_path`` and no progress output. Values are
asserted, not just types: seeding, additivity and round trips are checked on Q tables and writer rows.
"""
from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import os
import pstats
import re
import subprocess
import sys
import textwrap
import threading

import gymnasium
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

import rlpipe
from rlpipe.agents import QLearningAgent
from rlpipe.errors import ConfigError
from rlpipe.io.checkpoint import read_checkpoint
from rlpipe.manager.experiment_manager import ExperimentManager
from rlpipe.runtime.seeding import Seeder, seed_record
from rlpipe.runtime.writer import DefaultWriter
from rlpipe.spec.experiment import validate_study

from helpers_agents import EvalOnlyAgent, PickledCounterAgent
from manager_agents import PickledProbeAgent, ProbeAgent, ProbeEvalAgent

LAKE = ("FrozenLake-v1", {"is_slippery": False})
SLIPPERY = ("FrozenLake-v1", {"is_slippery": True})
QUIET = {"print_log": False}
WRITER_COLUMNS = ["name", "tag", "value", "dw_time_elapsed", "global_step", "instance"]
# Enough for every instance to solve the non-slippery lake (optimal path: 6 steps, reward 1 at the end).
SOLVED = {"train_env": LAKE, "fit_budget": 2000, "seed": 0, "eval_kwargs": {"eval_horizon": 20},
          "init_kwargs": {"learning_rate": 0.5, "epsilon_decay_steps": 1000, "gamma": 0.9}}


def make(tmp_path, **kwargs) -> ExperimentManager:
    parameters = {"agent_class": QLearningAgent, "train_env": SLIPPERY, "fit_budget": 300, "n_fit": 2, "seed": 7,
                  "output_dir": tmp_path, "default_writer_kwargs": QUIET}
    parameters.update(kwargs)
    return ExperimentManager(**parameters)


def fingerprint(manager: ExperimentManager) -> list[tuple]:
    """What identifies a fitted instance: its Q table, its RNG state (it encodes every exploration draw and
    episode seed so far, so equal states mean equal trajectories even when the Q table is still all zeros),
    its step count and the episode in progress."""
    return [(agent.q.tolist(), agent.rng.bit_generator.state, agent.total_env_steps, agent._episode_seed)
            for agent in manager.get_agent_instances()]


def assert_same_instances(first: ExperimentManager, second: ExperimentManager) -> None:
    a, b = fingerprint(first), fingerprint(second)
    assert len(a) == len(b) and a == b


def writer_frame(manager: ExperimentManager) -> pd.DataFrame:
    """All instances' writer rows in one frame with an ``instance`` column (get_writer_data gives one per instance)."""
    frames = manager.get_writer_data() or {}
    if not frames:
        return pd.DataFrame(columns=WRITER_COLUMNS)
    return pd.concat([frame.assign(instance=i) for i, frame in frames.items()], ignore_index=True)


def writer_values(manager: ExperimentManager) -> pd.DataFrame:
    """Writer rows without the wall-clock column (which legitimately differs between runs)."""
    return writer_frame(manager)[["instance", "tag", "value", "global_step"]].reset_index(drop=True)


def checkpoint_content(manager: ExperimentManager, instance: int) -> tuple[dict, dict]:
    return read_checkpoint(manager.paths.instance(instance).checkpoint)


def fit_record(manager: ExperimentManager, instance: int) -> dict:
    return json.loads(manager.paths.instance(instance).fit_record.read_text())


@pytest.fixture(autouse=True)
def _restore_rlpipe_logger():
    """fit() configures the shared 'rlpipe' logger (as rlberry does); leave it as we found it."""
    logger = logging.getLogger("rlpipe")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


# ============================================================================================ constructor
RLBERRY_SIGNATURE = [
    "agent_class", "train_env", "fit_budget", "eval_env", "init_kwargs", "fit_kwargs", "eval_kwargs", "agent_name",
    "n_fit", "output_dir", "parallelization", "max_workers", "mp_context", "worker_logging_level", "seed",
    "enable_tensorboard", "outdir_id_style", "default_writer_kwargs", "init_kwargs_per_instance", "thread_shared_data",
]


def test_the_signature_is_rlberrys() -> None:
    parameters = inspect.signature(ExperimentManager.__init__).parameters
    assert list(parameters)[1:len(RLBERRY_SIGNATURE) + 1] == RLBERRY_SIGNATURE
    extras = list(parameters.values())[len(RLBERRY_SIGNATURE) + 1:]  # ours, keyword-only after rlberry's
    assert [(p.name, p.kind, p.default) for p in extras] == [("n_checkpoints", p.KEYWORD_ONLY, None) for p in extras]
    defaults = {name: p.default for name, p in parameters.items() if name != "self"}
    assert defaults["train_env"] == (None, None) and defaults["n_fit"] == 4
    assert defaults["parallelization"] == "thread" and defaults["mp_context"] == "spawn"
    assert defaults["outdir_id_style"] == "timestamp" and defaults["enable_tensorboard"] is False
    assert all(defaults[name] is None for name in ("fit_budget", "eval_env", "init_kwargs", "fit_kwargs", "eval_kwargs",
                                                   "agent_name", "output_dir", "max_workers", "worker_logging_level",
                                                   "seed", "default_writer_kwargs", "init_kwargs_per_instance",
                                                   "thread_shared_data"))


def test_every_parameter_is_accepted_with_rlberrys_meaning(tmp_path) -> None:
    shared: dict = {}
    manager = ExperimentManager(
        agent_class=ProbeAgent, train_env=LAKE, fit_budget=60, eval_env=SLIPPERY,
        init_kwargs={"learning_rate": 0.3, "gamma": 0.9}, fit_kwargs={"extra": "x"},
        eval_kwargs={"eval_horizon": 15}, agent_name="everything", n_fit=3, output_dir=tmp_path,
        parallelization="thread", max_workers=1, mp_context="fork", worker_logging_level="WARNING", seed=11,
        enable_tensorboard=True, outdir_id_style="unique", default_writer_kwargs={"print_log": False, "maxlen": 5},
        init_kwargs_per_instance=[{"learning_rate": 0.9}, {}, {"gamma": 0.5}], thread_shared_data=shared,
    )
    assert manager.agent_name == "everything" and manager.n_fit == 3 and manager.fit_budget == 60
    assert manager.output_dir == tmp_path / "manager_data" / f"everything_{manager.unique_id}"
    assert manager.eval_kwargs == {"eval_horizon": 15}  # as written: eval receives nothing more
    manager.fit()

    agents = manager.get_agent_instances()
    assert [(a.learning_rate, a.gamma) for a in agents] == [(0.9, 0.9), (0.3, 0.9), (0.3, 0.5)]
    assert [a.fit_calls for a in agents] == [[[60, {"extra": "x"}]]] * 3
    assert all(a.total_env_steps == 60 for a in agents)
    # train_env / eval_env are honoured separately
    assert all(a.env.spec.kwargs["is_slippery"] is False for a in agents)
    assert all(a.eval_env.spec.kwargs["is_slippery"] is True for a in agents)
    # max_workers=1: one worker thread ran the three instances, and they shared the caller's dict
    assert sorted(shared["seen"]) == [0, 1, 2]
    assert len({ident for _, ident in shared["where"]}) == 1
    assert logging.getLogger("rlpipe").level == logging.WARNING  # worker_logging_level applied
    # enable_tensorboard: one event folder per instance; default_writer_kwargs: maxlen=5 rows per tag
    for i in range(3):
        assert list((manager.output_dir / "tensorboard" / str(i)).glob("events.out.tfevents.*"))
    counts = writer_frame(manager).groupby(["instance", "tag"]).size()
    assert counts.max() <= 5
    assert set(writer_frame(manager)["name"]) == {"everything"}


@pytest.mark.parametrize(
    "env",
    [
        pytest.param((gymnasium.make, {"id": "FrozenLake-v1", "is_slippery": True}), id="callable-constructor"),
        pytest.param(("FrozenLake-v1", {"is_slippery": True}), id="id-in-tuple"),
        pytest.param("FrozenLake-v1", id="bare-id"),  # gymnasium's default is slippery
        pytest.param({"id": "FrozenLake-v1", "kwargs": {"is_slippery": True}}, id="rlpipe-spec"),
    ],
)
def test_environment_forms_build_the_same_environment(tmp_path, env) -> None:
    reference = make(tmp_path / "ref")
    reference.fit()
    manager = make(tmp_path / "other", train_env=env)
    manager.fit()
    assert_same_instances(manager, reference)
    pd.testing.assert_frame_equal(writer_values(manager), writer_values(reference))


def test_eval_env_defaults_to_train_env(tmp_path) -> None:
    default = make(tmp_path, train_env=LAKE, fit_budget=20)
    assert default.build_eval_env().spec.kwargs["is_slippery"] is False
    other = make(tmp_path, train_env=LAKE, eval_env=SLIPPERY, fit_budget=20)
    assert other.build_eval_env().spec.kwargs["is_slippery"] is True
    default.fit()
    other.fit()
    assert [a.eval_env.spec.kwargs["is_slippery"] for a in default.get_agent_instances()] == [False, False]
    assert [a.eval_env.spec.kwargs["is_slippery"] for a in other.get_agent_instances()] == [True, True]


def test_fit_budget_can_come_from_fit_kwargs_and_is_then_removed(tmp_path) -> None:
    manager = make(tmp_path, agent_class=ProbeAgent, fit_budget=None, fit_kwargs={"fit_budget": 40, "extra": 1})
    assert manager.fit_budget == 40
    assert manager.fit_kwargs == {"extra": 1}
    manager.fit()
    assert [a.fit_calls for a in manager.get_agent_instances()] == [[[40, {"extra": 1}]]] * 2


def test_fit_budget_is_required(tmp_path) -> None:
    with pytest.raises(ValueError, match="fit_budget"):
        make(tmp_path, fit_budget=None)
    with pytest.raises(ValueError, match="fit_budget"):
        make(tmp_path, fit_budget=None, fit_kwargs={"other": 1})


def test_float_budgets_written_like_1e3_are_accepted(tmp_path) -> None:
    manager = make(tmp_path, fit_budget=1e3)
    assert manager.fit_budget == 1000 and type(manager.fit_budget) is int
    manager.fit(5e1)
    assert [a.total_env_steps for a in manager.get_agent_instances()] == [50, 50]
    for bad in (2.5, -3, True):
        with pytest.raises(ValueError, match="fit_budget"):
            make(tmp_path, fit_budget=bad)
    assert [make(tmp_path, fit_budget=b).fit_budget for b in (0, -1)] == [0, -1]  # agents that need no budget
    with pytest.raises(ValueError, match="budget"):
        manager.fit(1.5)


def test_agent_name_defaults_to_the_class_name_attribute(tmp_path) -> None:
    assert QLearningAgent.name == "QLearning"
    assert make(tmp_path).agent_name == "QLearning"
    assert EvalOnlyAgent.name == ""
    assert make(tmp_path, agent_class=EvalOnlyAgent).agent_name == "EvalOnlyAgent"  # rlberry would give ""
    assert make(tmp_path, agent_name="mine").agent_name == "mine"


def test_agent_class_may_be_an_import_path(tmp_path) -> None:
    assert make(tmp_path, agent_class="rlpipe.agents:QLearningAgent").agent_class is QLearningAgent
    with pytest.raises(ConfigError, match="agent: <class 'dict'> is not a subclass of rlpipe.agents.Agent"):
        make(tmp_path, agent_class=dict)


@pytest.mark.parametrize("name, value", [("parallelization", "joblib"), ("parallelization", "spawn"),
                                         ("mp_context", "threads"), ("outdir_id_style", "uuid")])
def test_bad_choices_are_rejected(tmp_path, name, value) -> None:
    with pytest.raises(ValueError, match=name):
        make(tmp_path, **{name: value})


def test_n_fit_and_init_kwargs_per_instance_are_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match="n_fit"):
        make(tmp_path, n_fit=0)
    with pytest.raises(ValueError, match="init_kwargs_per_instance"):
        make(tmp_path, n_fit=3, init_kwargs_per_instance=[{}, {}])
    with pytest.raises(ValueError, match="init_kwargs_per_instance"):
        make(tmp_path, n_fit=2, init_kwargs_per_instance=[{}, {}, {}])


def test_int_seedsequence_and_seeder_seeds_are_the_same_seed(tmp_path) -> None:
    managers = [make(tmp_path, seed=seed) for seed in (5, np.random.SeedSequence(5), Seeder(5))]
    for manager in managers:
        assert manager.seeder.seed_seq.entropy == 5
        manager.fit()
    assert_same_instances(managers[0], managers[1])
    assert_same_instances(managers[0], managers[2])
    other = make(tmp_path, seed=6)
    other.fit()
    assert fingerprint(other)[0] != fingerprint(managers[0])[0]


def test_seed_none_draws_entropy_that_is_recorded_and_reproduces_the_run(tmp_path) -> None:
    drawn = make(tmp_path, seed=None)
    entropy = drawn.seeder.seed_seq.entropy
    assert isinstance(entropy, int) and entropy > 2**32  # fresh OS entropy, not a small default
    drawn.fit()
    assert json.loads((drawn.output_dir / "manager.json").read_text())["seed"]["entropy"] == entropy
    again = make(tmp_path, seed=entropy)
    again.fit()
    assert_same_instances(drawn, again)
    pd.testing.assert_frame_equal(writer_values(drawn), writer_values(again))
    assert make(tmp_path, seed=None).seeder.seed_seq.entropy != entropy


# ============================================================================================ output folders
def test_timestamp_folders(tmp_path) -> None:
    manager = make(tmp_path, outdir_id_style="timestamp")
    assert manager.output_dir.parent == tmp_path / "manager_data"
    match = re.fullmatch(r"QLearning_(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})_([0-9a-f]{8})", manager.output_dir.name)
    assert match, manager.output_dir.name
    stamp = dt.datetime.strptime(match.group(1), "%Y-%m-%d_%H-%M-%S")
    assert abs((dt.datetime.now() - stamp).total_seconds()) < 300
    assert match.group(2) == manager.unique_id[:8]
    assert manager.output_dir_ == manager.output_dir  # rlberry's attribute name


def test_unique_folders(tmp_path) -> None:
    manager = make(tmp_path, outdir_id_style="unique", agent_name="named")
    assert manager.output_dir.parent == tmp_path / "manager_data"
    assert re.fullmatch(r"named_[0-9a-f]{32}", manager.output_dir.name)


def test_no_id_style_writes_to_manager_data(tmp_path) -> None:
    manager = make(tmp_path, outdir_id_style=None)
    assert manager.output_dir == tmp_path / "manager_data"
    manager.fit()
    assert (tmp_path / "manager_data" / "manager.json").is_file()
    assert (tmp_path / "manager_data" / "instances" / "1" / "agent.ckpt").is_file()


def test_default_output_dir_is_rlpipe_data_temp(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    manager = make(None)
    assert manager.output_dir.parent.resolve() == (tmp_path / "rlpipe_data" / "temp" / "manager_data").resolve()


def test_a_second_manager_in_a_fixed_folder_replaces_the_first_as_a_whole(tmp_path, caplog) -> None:
    """outdir_id_style=None is a fixed folder, which a new run overwrites (rlberry's behaviour, with its warning);
    none of the old run's instances is continued or read as the new run's."""
    first = make(tmp_path, outdir_id_style=None, seed=1, n_fit=3)
    first.fit()
    folder = tmp_path / "manager_data"
    with caplog.at_level(logging.WARNING, logger="rlpipe"):
        second = make(tmp_path, outdir_id_style=None, seed=2, n_fit=2)
    assert "This output directory already exists, the save may overwrite the previous Experiment." in caplog.text
    second.fit()
    fresh = make(tmp_path / "fresh", outdir_id_style=None, seed=2, n_fit=2)
    fresh.fit()
    assert_same_instances(second, fresh)  # fitted from scratch, not continued from the first manager's agents
    assert sorted(p.name for p in (folder / "instances").iterdir()) == ["0", "1"]  # instance 2 of the first is gone
    reloaded = ExperimentManager.load(folder)
    assert reloaded.unique_id == second.unique_id and fingerprint(reloaded) == fingerprint(second)


def test_two_timestamp_managers_never_share_a_folder(tmp_path) -> None:
    first, second = make(tmp_path, seed=1), make(tmp_path, seed=2)
    assert first.output_dir != second.output_dir
    assert first.timestamp_id.split("_")[:2] == second.timestamp_id.split("_")[:2]  # same second, in practice
    first.fit()
    second.fit()
    assert sorted(p.name for p in (tmp_path / "manager_data").iterdir()) == sorted(
        [first.output_dir.name, second.output_dir.name])
    assert fingerprint(first)[0] != fingerprint(second)[0]


# ============================================================================================ fit
def test_fit_writes_the_instance_files_and_the_manager_file(tmp_path) -> None:
    manager = make(tmp_path, n_fit=3)
    assert not manager.output_dir.exists()
    manager.fit()
    for i in range(3):
        folder = manager.output_dir / "instances" / str(i)
        assert sorted(p.name for p in folder.iterdir()) == ["agent.ckpt", "fit.json", "writer.parquet"]
        record = fit_record(manager, i)
        assert record["instance"] == i and record["fit_budget"] == 300 and record["total_env_steps"] == 300
        assert pq.read_table(folder / "writer.parquet").num_rows > 0
    saved = json.loads((manager.output_dir / "manager.json").read_text())
    assert saved["rlpipe_version"] == rlpipe.__version__
    assert saved["unique_id"] == manager.unique_id
    assert saved["seed"] == seed_record(np.random.SeedSequence(7))


def test_fit_without_budget_uses_fit_budget(tmp_path) -> None:
    manager = make(tmp_path, fit_budget=123)
    manager.fit()
    assert [a.total_env_steps for a in manager.get_agent_instances()] == [123, 123]


def test_fit_is_additive(tmp_path) -> None:
    split = make(tmp_path)
    split.fit(120)
    split.fit(180)
    whole = make(tmp_path)
    whole.fit(300)
    assert_same_instances(split, whole)
    pd.testing.assert_frame_equal(writer_values(split), writer_values(whole))
    assert [a.total_env_steps for a in split.get_agent_instances()] == [300, 300]
    assert fit_record(split, 0)["fit_calls"] == [120, 180] and fit_record(split, 0)["fit_budget"] == 300
    assert writer_values(split)["global_step"].max() <= 300


def test_fit_kwargs_and_call_kwargs_reach_agent_fit(tmp_path) -> None:
    manager = make(tmp_path, agent_class=ProbeAgent, fit_kwargs={"a": 1, "b": 2})
    manager.fit(10, b=3, c=4)
    manager.fit(5)
    assert manager.get_agent_instances()[1].fit_calls == [[10, {"a": 1, "b": 3, "c": 4}], [5, {"a": 1, "b": 2}]]


def test_init_kwargs_per_instance_win_over_init_kwargs(tmp_path) -> None:
    manager = make(tmp_path, init_kwargs={"learning_rate": 0.2, "gamma": 0.8},
                   init_kwargs_per_instance=[{"learning_rate": 0.5}, {}], fit_budget=10)
    manager.fit()
    first, second = manager.get_agent_instances()
    assert (first.learning_rate, first.gamma) == (0.5, 0.8)
    assert (second.learning_rate, second.gamma) == (0.2, 0.8)


def test_same_seed_same_results_and_instances_differ(tmp_path) -> None:
    a, b = make(tmp_path, n_fit=3), make(tmp_path, n_fit=3)
    a.fit()
    b.fit()
    assert_same_instances(a, b)
    pd.testing.assert_frame_equal(writer_values(a), writer_values(b))
    instances = fingerprint(a)
    assert instances[0] != instances[1] and instances[1] != instances[2] and instances[0] != instances[2]
    rewards = writer_values(a).query("tag == 'episode_length'").groupby("instance")["global_step"].apply(list)
    assert rewards[0] != rewards[1]


def test_instances_do_not_depend_on_n_fit(tmp_path) -> None:
    small, large = make(tmp_path, n_fit=1), make(tmp_path, n_fit=3)
    small.fit()
    large.fit()
    assert fingerprint(small)[0] == fingerprint(large)[0]


def test_threads_and_forked_processes_give_identical_instances(tmp_path) -> None:
    threads = make(tmp_path, n_fit=3)
    processes = make(tmp_path, n_fit=3, parallelization="process", mp_context="fork", max_workers=2)
    threads.fit()
    processes.fit()
    for i in range(3):
        (arrays_t, meta_t), (arrays_p, meta_p) = checkpoint_content(threads, i), checkpoint_content(processes, i)
        assert meta_t == meta_p
        assert arrays_t.keys() == arrays_p.keys()
        for key in arrays_t:
            np.testing.assert_array_equal(arrays_t[key], arrays_p[key])
    pd.testing.assert_frame_equal(writer_values(threads), writer_values(processes))


def test_a_single_instance_runs_inline(tmp_path) -> None:
    shared: dict = {}
    with pytest.warns(UserWarning, match="copied"):
        manager = make(tmp_path, agent_class=ProbeAgent, n_fit=1, parallelization="process", thread_shared_data=shared)
    manager.fit()
    # Even with parallelization="process", the one job ran in this process and thread: the dict was filled.
    assert shared == {"seen": [0], "where": [[os.getpid(), threading.get_ident()]]}


@pytest.mark.parametrize("parallelization", ["thread", "process"])
def test_a_failing_agent_reports_the_instance(tmp_path, parallelization) -> None:
    from helpers_agents import FailingAgent

    manager = make(tmp_path, agent_class=FailingAgent, parallelization=parallelization, mp_context="fork")
    with pytest.raises(ZeroDivisionError, match="agent bug inside fit") as raised:  # the agent's own error, kept
        manager.fit()
    assert re.fullmatch(r"\(while fitting instance \d of 'QLearning'\)", raised.value.__notes__[0])


# ============================================================================================ writers
def test_a_disabled_writer_does_not_crash_fit(tmp_path) -> None:
    manager = make(tmp_path, n_fit=3)
    manager.set_writer(1, None)
    manager.fit()  # rlberry 0.7.3 raises AttributeError: 'NoneType' object has no attribute '_style_log'
    counts = writer_frame(manager).groupby("instance").size()
    assert counts.index.tolist() == [0, 2] and (counts > 0).all()
    assert pq.read_table(manager.paths.instance(1).writer).num_rows == 0
    assert [a.total_env_steps for a in manager.get_agent_instances()] == [300, 300, 300]
    manager.fit(50)  # and again, continuing
    assert writer_frame(manager).query("instance == 1").empty
    assert manager.get_agent_instances()[1].total_env_steps == 350


def test_a_custom_writer_receives_the_agents_scalars(tmp_path) -> None:
    calls: list[tuple] = []

    class RecordingWriter(DefaultWriter):
        def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False):
            calls.append((tag, scalar_value, global_step))
            super().add_scalar(tag, scalar_value, global_step, walltime, new_style)

    manager = make(tmp_path)
    manager.set_writer(0, RecordingWriter, {"name": "custom", "print_log": False})
    manager.fit()
    data = writer_frame(manager)
    mine = data.query("instance == 0")
    assert calls and {tag for tag, _, _ in calls} == {"episode_rewards", "episode_length"}
    assert [(t, v, s) for t, v, s in zip(mine["tag"], mine["value"], mine["global_step"])] == calls
    assert set(mine["name"]) == {"custom"}  # writer_kwargs were passed to writer_fn
    assert set(data.query("instance == 1")["name"]) == {"QLearning"}


def test_a_custom_writer_with_only_add_scalar_works(tmp_path) -> None:
    calls: list[tuple] = []

    class ScalarLogger:
        def __init__(self, prefix: str) -> None:
            self.prefix = prefix

        def add_scalar(self, tag, value, global_step=None, *args, **kwargs):
            calls.append((self.prefix + tag, value, global_step))

    manager = make(tmp_path)
    manager.set_writer(0, ScalarLogger, {"prefix": "x/"})
    manager.fit()
    assert calls and {tag for tag, _, _ in calls} == {"x/episode_rewards", "x/episode_length"}
    assert pq.read_table(manager.paths.instance(0).writer).num_rows == 0  # its data lives in the custom writer
    assert not writer_frame(manager).query("instance == 1").empty


def test_set_writer_checks_its_arguments(tmp_path) -> None:
    manager = make(tmp_path)
    for idx in (-1, 2):
        with pytest.raises(IndexError):
            manager.set_writer(idx, None)
    with pytest.raises(TypeError):
        manager.set_writer(0, 42)
    manager.set_writer(0, None)
    manager.set_writer(0, "default")  # back to the default writer
    manager.fit()
    assert sorted(writer_frame(manager)["instance"].unique()) == [0, 1]


# ============================================================================================ evaluation
def test_eval_agents_lengths(tmp_path) -> None:
    manager = make(tmp_path, n_fit=3, eval_kwargs={"eval_horizon": 30})
    manager.fit()
    values = manager.eval_agents(verbose=False)
    assert len(values) == 6 and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values)
    assert len(manager.eval_agents(n_simulations=7, verbose=False)) == 7
    assert manager.eval_agents(n_simulations=0, verbose=False) == []


def test_eval_agents_honours_agent_id(tmp_path) -> None:
    manager = make(tmp_path, agent_class=ProbeEvalAgent, n_fit=3, fit_budget=10)
    manager.fit()
    assert manager.eval_agents(5, agent_id=2, verbose=False) == [2.0] * 5
    assert manager.eval_agents(5, agent_id=0, verbose=False) == [0.0] * 5
    picked = manager.eval_agents(40, verbose=False)  # random instances, with replacement
    assert set(picked) == {0.0, 1.0, 2.0}
    for bad in (-1, 3):
        with pytest.raises(IndexError):
            manager.eval_agents(1, agent_id=bad, verbose=False)


def test_eval_agents_is_agent_eval_with_one_simulation(tmp_path) -> None:
    manager = make(tmp_path, fit_budget=2000, init_kwargs={"learning_rate": 0.2, "epsilon_decay_steps": 1000},
                   eval_kwargs={"eval_horizon": 100, "n_simulations": 50})
    manager.fit()
    reference = ExperimentManager.load(manager.output_dir).get_agent_instances()[1]
    direct = [reference.eval(eval_horizon=100, n_simulations=1, gamma=1.0) for _ in range(12)]
    through_manager = manager.eval_agents(12, agent_id=1, verbose=False)
    assert through_manager == direct
    assert set(direct) == {0.0, 1.0}  # a non-trivial sequence of single-episode returns


def test_eval_kwargs_n_simulations_is_forced_to_one(tmp_path) -> None:
    manager = make(tmp_path, agent_class=ProbeEvalAgent, fit_budget=10,
                   eval_kwargs={"eval_horizon": 9, "n_simulations": 50, "gamma": 0.7})
    manager.fit()
    manager.eval_agents(4, agent_id=0, verbose=False)
    manager.eval_agents(2, agent_id=0, eval_kwargs={"eval_horizon": 3, "n_simulations": 99}, verbose=False)
    assert manager.get_agent_instances()[0].eval_calls == (
        [{"eval_horizon": 9, "n_simulations": 1, "gamma": 0.7}] * 4 + [{"eval_horizon": 3, "n_simulations": 1}] * 2)


def test_eval_kwargs_override_is_used(tmp_path) -> None:
    manager = make(tmp_path, **SOLVED)
    manager.fit()
    assert manager.eval_agents(verbose=False) == [1.0] * 4  # solved
    assert manager.eval_agents(eval_kwargs={"eval_horizon": 1}, verbose=False) == [0.0] * 4  # goal is 6 steps away
    assert manager.eval_agents(eval_kwargs={"eval_horizon": 20, "gamma": 0.5}, verbose=False) == [0.5**5] * 4
    assert manager.eval_agents(verbose=False) == [1.0] * 4  # the manager's eval_kwargs are unchanged


def test_eval_agents_before_fit_is_a_clear_error(tmp_path) -> None:
    manager = make(tmp_path)
    with pytest.raises(RuntimeError, match=r"not fitted yet: call fit\(\) first"):
        manager.eval_agents(verbose=False)
    with pytest.raises(RuntimeError, match="fit"):
        manager.get_agent_instances()


def test_eval_agents_verbose_shows_progress(tmp_path, capsys) -> None:
    manager = make(tmp_path, fit_budget=10, eval_kwargs={"eval_horizon": 5})
    manager.fit()
    capsys.readouterr()
    assert len(manager.eval_agents(3, verbose=False)) == 3
    assert capsys.readouterr().err == ""
    assert len(manager.eval_agents(3, verbose=True)) == 3
    assert "[QLearning] evaluating" in capsys.readouterr().err


# ============================================================================================ data and instances
def test_get_writer_data_is_rlberrys_frame_per_instance(tmp_path) -> None:
    manager = make(tmp_path, n_fit=3, agent_name="lake")
    assert manager.get_writer_data() is None  # rlberry's value before any fit
    manager.fit()
    frames = manager.get_writer_data()
    assert sorted(frames) == [0, 1, 2]
    assert all(list(frame.columns) == WRITER_COLUMNS[:-1] for frame in frames.values())  # rlberry's columns
    data = writer_frame(manager)
    assert list(data.columns) == WRITER_COLUMNS
    assert sorted(data["instance"].unique()) == [0, 1, 2]
    assert set(data["name"]) == {"lake"}
    assert set(data["tag"]) == {"episode_rewards", "episode_length"}
    for _, rows in data.groupby(["instance", "tag"]):
        steps = rows["global_step"].to_numpy()
        assert (np.diff(steps) > 0).all() and steps.max() <= 300
    lengths = data.query("tag == 'episode_length'")
    for _, rows in lengths.groupby("instance"):  # episode lengths add up to the step at which each ended
        np.testing.assert_array_equal(np.cumsum(rows["value"].to_numpy()), rows["global_step"].to_numpy())
    assert set(data.query("tag == 'episode_rewards'")["value"]) <= {0.0, 1.0}


def test_get_agent_instances(tmp_path) -> None:
    manager = make(tmp_path, n_fit=3, fit_budget=77)
    manager.fit()
    agents = manager.get_agent_instances()
    assert len(agents) == 3 and all(isinstance(a, QLearningAgent) for a in agents)
    assert [a.total_env_steps for a in agents] == [77, 77, 77]
    assert manager.get_agent_instances()[0] is agents[0]  # kept in memory once loaded


def test_build_eval_env_is_reset_and_seeded_by_the_manager(tmp_path) -> None:
    def rollout(manager: ExperimentManager) -> list:
        env = manager.build_eval_env()
        assert isinstance(env, gymnasium.Env)
        trajectory = [env.action_space.sample() for _ in range(5)]
        for _ in range(30):  # no reset needed: the env was reset by build_eval_env
            observation, _, terminated, truncated, _ = env.step(1)
            trajectory.append(int(observation))
            if terminated or truncated:
                trajectory.append(int(env.reset()[0]))
        return trajectory

    same = [rollout(make(tmp_path, seed=3)) for _ in range(2)]
    assert same[0] == same[1]
    assert rollout(make(tmp_path, seed=4)) != same[0]


# ============================================================================================ profile
def test_generate_profile(tmp_path, capsys) -> None:
    manager = make(tmp_path, agent_name="prof")
    path = manager.generate_profile(budget=5000)  # enough that the fit, not a first import, leads the list
    assert path == manager.output_dir / "prof_profile.prof" and path.is_file()
    stats = pstats.Stats(str(path))
    assert stats.total_calls > 200
    assert any(func[2] == "fit" and func[0].endswith("q_learning.py") for func in stats.stats)
    out = capsys.readouterr().out
    assert "function calls" in out and "to 20 due to restriction" in out and "q_learning.py" in out
    assert not (manager.output_dir / "instances").exists()  # the profile fit is not one of the instances

    custom = manager.generate_profile(fname=tmp_path / "elsewhere" / "mine.prof")
    assert custom == tmp_path / "elsewhere" / "mine.prof"
    assert pstats.Stats(str(custom)).total_calls > 300  # default budget = fit_budget = 300 steps


# ============================================================================================ save / load
def _parameters(manager: ExperimentManager) -> dict:
    names = ["agent_class", "train_env", "fit_budget", "init_kwargs", "fit_kwargs", "eval_kwargs", "agent_name",
             "n_fit", "parallelization", "max_workers", "mp_context", "worker_logging_level", "enable_tensorboard",
             "default_writer_kwargs", "init_kwargs_per_instance", "unique_id", "timestamp_id", "output_dir",
             "rlpipe_version"]
    return {**{name: getattr(manager, name) for name in names}, "eval_env": manager._eval_env,
            "seed": seed_record(manager.seeder.seed_seq)}


def test_save_and_load_round_trip(tmp_path) -> None:
    manager = make(tmp_path, fit_budget=1500, eval_env=("FrozenLake-v1", {"is_slippery": True, "map_name": "4x4"}),
                   init_kwargs={"learning_rate": 0.3}, init_kwargs_per_instance=[{}, {"gamma": 0.95}],
                   fit_kwargs={"unused": 1}, eval_kwargs={"eval_horizon": 40}, max_workers=2, seed=Seeder(21))
    manager.fit()
    path = manager.save()
    assert path == manager.output_dir / "manager.json" and path.is_file()

    from_file, from_folder = ExperimentManager.load(path), ExperimentManager.load(manager.output_dir)
    for loaded in (from_file, from_folder):
        assert _parameters(loaded) == _parameters(manager)
        pd.testing.assert_frame_equal(writer_frame(loaded), writer_frame(manager))
    expected = manager.eval_agents(10, verbose=False)
    assert from_file.eval_agents(10, verbose=False) == expected
    assert len(set(expected)) > 1  # slippery returns vary: the equality is not trivial
    assert from_folder.eval_agents(6, agent_id=1, verbose=False) == ExperimentManager.load(path).eval_agents(
        6, agent_id=1, verbose=False)
    assert_same_instances(from_file, manager)


def test_a_loaded_manager_continues_fitting(tmp_path) -> None:
    manager = make(tmp_path, fit_budget=200)
    manager.fit()
    loaded = ExperimentManager.load(manager.save())
    loaded.fit(100)
    whole = make(tmp_path, fit_budget=300)
    whole.fit()
    assert_same_instances(loaded, whole)
    pd.testing.assert_frame_equal(writer_values(loaded), writer_values(whole))
    assert fit_record(loaded, 0)["fit_calls"] == [200, 100]


def test_load_warns_about_another_version(tmp_path) -> None:
    manager = make(tmp_path, fit_budget=20)
    manager.fit()
    record = json.loads(manager.save().read_text())
    record["rlpipe_version"] = "0.0.1"
    (manager.output_dir / "manager.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning) as caught:
        loaded = ExperimentManager.load(manager.output_dir)
    messages = [str(w.message) for w in caught]
    assert any("0.0.1" in m and rlpipe.__version__ in m for m in messages), messages
    assert loaded.rlpipe_version == "0.0.1"


def _make_lake():
    return gymnasium.make("FrozenLake-v1", is_slippery=True)


def test_a_lambda_env_is_pickled_and_needs_allow_pickle(tmp_path) -> None:
    manager = make(tmp_path, train_env=(lambda **kw: gymnasium.make("FrozenLake-v1", **kw), {"is_slippery": True}))
    manager.fit()
    reference = make(tmp_path)
    reference.fit()
    assert_same_instances(manager, reference)  # the lambda builds the same env as the id
    assert (manager.output_dir / "manager_objects.pkl").is_file()
    saved = json.loads((manager.output_dir / "manager.json").read_text())
    assert "__pickled__" in json.dumps(saved["parameters"]["train_env"])

    with pytest.raises(Exception, match="allow_pickle"):
        ExperimentManager.load(manager.output_dir)
    loaded = ExperimentManager.load(manager.output_dir, allow_pickle=True)
    assert loaded.train_env[1] == {"is_slippery": True} and callable(loaded.train_env[0])
    assert_same_instances(loaded, manager)
    assert loaded.eval_agents(4, verbose=False) == manager.eval_agents(4, verbose=False)


def test_an_importable_env_constructor_is_saved_by_name(tmp_path) -> None:
    manager = make(tmp_path, train_env=(_make_lake, {}), fit_budget=30)
    manager.fit()
    assert not (manager.output_dir / "manager_objects.pkl").exists()
    loaded = ExperimentManager.load(manager.output_dir)  # no pickle involved
    assert loaded.train_env == (_make_lake, {})


def test_an_agent_without_get_state_saves_and_loads(tmp_path) -> None:
    manager = make(tmp_path, agent_class=PickledCounterAgent, fit_budget=50)
    manager.fit()
    counts = [a.counts.copy() for a in manager.get_agent_instances()]
    assert [c.sum() for c in counts] == [50, 50] and not np.array_equal(counts[0], counts[1])

    with pytest.warns(UserWarning, match="their agents only with allow_pickle=True"):  # said at load...
        untrusted = ExperimentManager.load(manager.save())
    assert sorted(untrusted.get_writer_data()) == [0, 1]  # ...their writer data needs no unpickling...
    with pytest.raises(Exception, match="allow_pickle"):  # ...their agents do
        untrusted.get_agent_instances()
    trusted = ExperimentManager.load(manager.save(), allow_pickle=True)
    for a, c in zip(trusted.get_agent_instances(), counts):
        np.testing.assert_array_equal(a.counts, c)
    trusted.fit(10)  # and it continues
    assert [a.counts.sum() for a in trusted.get_agent_instances()] == [60, 60]


def test_load_of_a_folder_without_manager_is_an_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        ExperimentManager.load(tmp_path)


# ============================================================================================ clearing
def test_clear_handlers_makes_the_next_fit_start_from_scratch(tmp_path) -> None:
    manager = make(tmp_path)
    manager.fit()
    manager.fit()
    assert [a.total_env_steps for a in manager.get_agent_instances()] == [600, 600]
    manager.clear_handlers()
    assert not any(manager.paths.instance(i).checkpoint.exists() for i in range(2))
    with pytest.raises(RuntimeError, match="fit"):
        manager.get_agent_instances()
    manager.fit()
    assert [a.total_env_steps for a in manager.get_agent_instances()] == [300, 300]
    fresh = make(tmp_path)
    fresh.fit()
    assert_same_instances(manager, fresh)
    pd.testing.assert_frame_equal(writer_values(manager), writer_values(fresh))


def test_clear_output_dir(tmp_path) -> None:
    manager = make(tmp_path, fit_budget=20)
    manager.fit()
    assert manager.output_dir.is_dir()
    manager.clear_output_dir()
    assert not manager.output_dir.exists()
    with pytest.warns(UserWarning, match="does not exist"):
        manager.clear_output_dir()
    assert writer_frame(manager).empty


# ============================================================================================ pipeline bridge
def test_to_config_is_a_valid_pipeline_config(tmp_path) -> None:
    manager = make(tmp_path, agent_name="lake", train_env=LAKE, eval_env=SLIPPERY, n_fit=3, seed=13,
                   init_kwargs={"learning_rate": 0.4}, init_kwargs_per_instance=[{}, {"gamma": 0.5}, {}],
                   eval_kwargs={"eval_horizon": 25, "n_simulations": 3})
    config = manager.to_config()
    study = validate_study(config)
    assert config["seed"] == study.seed == 13
    assert list(config["experiments"]) == ["lake"]
    entry = study.experiment("lake")
    assert entry.agent is QLearningAgent
    assert config["experiments"]["lake"]["agent"] == "rlpipe.agents.q_learning:QLearningAgent"
    assert entry.train_env["id"] == "FrozenLake-v1" and entry.train_env["kwargs"] == {"is_slippery": False}
    assert entry.eval_env["kwargs"] == {"is_slippery": True}
    assert entry.n_fit == 3 and entry.fit_budget == 300
    assert entry.eval_kwargs == {"eval_horizon": 25, "n_simulations": 3}
    assert entry.init_kwargs == {"learning_rate": 0.4}
    assert entry.init_kwargs_per_instance == ({}, {"gamma": 0.5}, {})


def test_from_config_rebuilds_a_manager_with_the_same_instances(tmp_path) -> None:
    manager = make(tmp_path / "a", agent_name="lake", init_kwargs={"learning_rate": 0.4}, seed=13)
    manager.fit()
    config = manager.to_config()
    rebuilt = ExperimentManager.from_config(config, "lake", output_dir=tmp_path / "b")
    assert rebuilt.agent_name == "lake" and rebuilt.seeder.seed_seq.entropy == 13
    assert rebuilt.output_dir.parent == tmp_path / "b" / "manager_data"
    rebuilt.fit()
    assert_same_instances(rebuilt, manager)
    pd.testing.assert_frame_equal(writer_values(rebuilt), writer_values(manager))

    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    from_file = ExperimentManager.from_config(config_file, "lake", output_dir=tmp_path / "c")
    from_file.fit()
    assert_same_instances(from_file, manager)


def test_to_config_with_a_drawn_seed_reproduces_it(tmp_path) -> None:
    manager = make(tmp_path, seed=None, fit_budget=50)
    config = manager.to_config()
    assert config["seed"] == manager.seeder.seed_seq.entropy
    manager.fit()
    rebuilt = ExperimentManager.from_config(config, "QLearning", output_dir=tmp_path / "b")
    rebuilt.fit()
    assert_same_instances(rebuilt, manager)


def test_to_config_refuses_what_a_config_cannot_name(tmp_path) -> None:
    manager = make(tmp_path, train_env=(lambda: gymnasium.make("FrozenLake-v1"), {}))
    with pytest.raises(ValueError, match="cannot be named in a config"):
        manager.to_config()
    spawned = make(tmp_path, seed=np.random.SeedSequence(3).spawn(1)[0])
    with pytest.raises(ValueError, match="seed"):
        spawned.to_config()


# ============================================================================================ misc
def test_thread_shared_data_is_shared_between_threads(tmp_path) -> None:
    shared: dict = {"seen": []}
    manager = make(tmp_path, agent_class=ProbeAgent, n_fit=3, fit_budget=20, thread_shared_data=shared)
    manager.fit()
    assert sorted(shared["seen"]) == [0, 1, 2]
    assert all(pid == os.getpid() for pid, _ in shared["where"])
    manager.fit()  # continued instances get the dict too
    assert sorted(shared["seen"]) == [0, 0, 1, 1, 2, 2]


def test_thread_shared_data_reaches_continued_pickled_agents(tmp_path) -> None:
    shared: dict = {"seen": []}
    manager = make(tmp_path, agent_class=PickledProbeAgent, fit_budget=10, thread_shared_data=shared)
    manager.fit()
    assert sorted(shared["seen"]) == [0, 1]
    manager.fit()
    assert sorted(shared["seen"]) == [0, 0, 1, 1]


def test_thread_shared_data_is_copied_into_processes(tmp_path) -> None:
    shared: dict = {"seen": []}
    with pytest.warns(UserWarning, match="copied into each process"):
        manager = make(tmp_path, agent_class=ProbeAgent, n_fit=2, fit_budget=20, thread_shared_data=shared,
                       parallelization="process", mp_context="fork")
    manager.fit()
    assert shared == {"seen": []}
    assert [a.total_env_steps for a in manager.get_agent_instances()] == [20, 20]


def test_without_shared_data_each_agent_has_its_own_dict(tmp_path) -> None:
    manager = make(tmp_path, agent_class=ProbeAgent, fit_budget=20)
    manager.fit()  # would fail (or mix ids) if agents shared one default dict
    first, second = manager.get_agent_instances()
    assert first.thread_shared_data == {} and first.thread_shared_data is not second.thread_shared_data


SPAWN_SCRIPT = """
import json
from rlpipe.agents import QLearningAgent
from rlpipe.errors import ConfigError
from rlpipe.manager.experiment_manager import ExperimentManager


def run():
    manager = ExperimentManager(QLearningAgent, ("FrozenLake-v1", {{"is_slippery": True}}), fit_budget=300, n_fit=2,
                                seed=7, output_dir={output!r}, parallelization="process", mp_context="spawn",
                                default_writer_kwargs={{"print_log": False}})
    manager.fit()
    print(json.dumps([[agent.q.tolist(), agent.rng.bit_generator.state] for agent in manager.get_agent_instances()]))

{call}
"""


def _run_script(tmp_path, name: str, call: str) -> subprocess.CompletedProcess:
    script = tmp_path / name
    script.write_text(SPAWN_SCRIPT.format(output=str(tmp_path / "out"), call=textwrap.dedent(call)))
    try:
        return subprocess.run([sys.executable, str(script)], check=False, timeout=120, capture_output=True, text=True,
                              cwd=tmp_path)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"{name} hung: spawned workers re-ran the unguarded script forever")


def test_spawn_without_a_main_guard_fails_clearly_instead_of_hanging(tmp_path) -> None:
    result = _run_script(tmp_path, "unguarded.py", "run()")
    assert result.returncode != 0
    assert "__main__" in result.stderr
    assert "RuntimeError" in result.stderr and "mp_context" in result.stderr


def test_spawn_with_a_main_guard_works_and_matches_threads(tmp_path) -> None:
    result = _run_script(tmp_path, "guarded.py", "if __name__ == '__main__':\n    run()")
    assert result.returncode == 0, result.stderr
    tables = json.loads(result.stdout.strip().splitlines()[-1])
    reference = make(tmp_path / "ref")
    reference.fit()
    assert tables == [[q, state] for q, state, _, _ in fingerprint(reference)]


# ---------------------------------------------------------------------------------------------- review fixes
def test_disabling_the_writer_before_a_second_fit_keeps_the_earlier_rows(tmp_path) -> None:
    manager = make(tmp_path)
    manager.fit(300)
    before = writer_frame(manager)
    manager.set_writer(0, None)
    manager.fit(300)
    after = writer_frame(manager)
    pd.testing.assert_frame_equal(after[after.instance == 0].reset_index(drop=True),
                                  before[before.instance == 0].reset_index(drop=True))
    assert (after.instance == 1).sum() > (before.instance == 1).sum()  # the other instance keeps writing


def test_empty_eval_kwargs_fall_back_to_the_managers(tmp_path) -> None:
    manager = make(tmp_path, eval_kwargs={"eval_horizon": 1})
    manager.fit(300)
    assert manager.eval_agents(4, eval_kwargs={}, verbose=False) == [0.0] * 4  # one step never reaches the goal


def test_build_eval_env_does_not_change_which_instances_eval_agents_picks(tmp_path) -> None:
    a, b = make(tmp_path / "a"), make(tmp_path / "b")
    for manager in (a, b):
        manager.fit(300)
    b.build_eval_env()
    assert a.eval_agents(6, verbose=False) == b.eval_agents(6, verbose=False)


def test_to_config_allows_pickle_for_agents_without_array_state(tmp_path) -> None:
    manager = ExperimentManager(PickledCounterAgent, "FrozenLake-v1", fit_budget=10, n_fit=1, seed=1,
                                output_dir=tmp_path, default_writer_kwargs={"print_log": False})
    entry = next(iter(manager.to_config()["experiments"].values()))
    assert entry["allow_pickle"] is True
    assert next(iter(make(tmp_path).to_config()["experiments"].values()))["allow_pickle"] is False


def test_progressbar_style_from_default_writer_kwargs(tmp_path, capfd) -> None:
    manager = make(tmp_path, n_fit=1, default_writer_kwargs={"style_log": "progressbar", "log_interval": 0})
    manager.fit(300)
    err = capfd.readouterr().err
    assert "QLearning" in err and "/300" in err  # a tqdm bar whose total is the budget


# ---------------------------------------------------------------------------------------------- second review
def test_generate_profile_profiles_the_fit_that_fit_runs(tmp_path, capsys) -> None:
    """Instance 0's fit as fit() runs it: thread_shared_data, the instance's writer, a falsy budget meaning fit_budget."""
    shared: dict = {"seen": []}
    scalars: list[tuple] = []

    class Recorder:
        def add_scalar(self, tag, value, global_step=None) -> None:
            scalars.append((tag, value, global_step))

    manager = make(tmp_path, agent_class=ProbeAgent, n_fit=2, fit_budget=40, thread_shared_data=shared)
    manager.set_writer(0, Recorder)
    path = manager.generate_profile(budget=0)
    capsys.readouterr()
    assert path.is_file() and shared["seen"] == [0]  # the caller's dict reached the agent
    assert scalars and {tag for tag, _, _ in scalars} >= {"episode_rewards"}  # the instance's writer was set
    profiled = ProbeAgent.load(manager.output_dir / "profile" / "agent.ckpt", env=SLIPPERY)
    assert profiled.fit_calls == [[40, {}]] and profiled.total_env_steps == 40  # budget 0 is fit_budget, as in fit()
    assert not (manager.output_dir / "instances").exists()
    manager.generate_profile(budget=10)  # a profile starts from scratch, never from an earlier one
    assert ProbeAgent.load(manager.output_dir / "profile" / "agent.ckpt", env=SLIPPERY).fit_calls == [[10, {}]]


def test_aggregate_checks_its_arguments_as_a_config_before_writing(tmp_path) -> None:
    manager = make(tmp_path, n_fit=2, fit_budget=50)
    manager.fit()
    manager.evaluate()
    with pytest.raises(ConfigError) as error:
        manager.aggregate(learning_curve={"smoothing_windw": 5}, report={"bootstrap_sample": 500})
    assert "learning_curve: unknown key 'smoothing_windw' (did you mean 'smoothing_window'?)" in str(error.value)
    assert "report: unknown key 'bootstrap_sample' (did you mean 'bootstrap_samples'?)" in str(error.value)
    with pytest.raises(ConfigError) as error:
        manager.aggregate(learning_curve={"smoothing_window": 0, "xtag": "time"}, report={"confidence": 95})
    lines = str(error.value)
    assert "learning_curve.smoothing_window: 0 is less than the minimum of 1" in lines
    assert "learning_curve.xtag:" in lines and "report.confidence: 95" in lines
    with pytest.raises(ConfigError, match="learning_curve: 'episode_rewards' is not of type 'object'"):
        manager.aggregate(learning_curve="episode_rewards")
    assert not manager.paths.summary.exists() and not manager.paths.writer_data.exists()  # nothing was written
    summary = manager.aggregate(learning_curve={"smoothing_window": 3}, report={"bootstrap_samples": 200})
    assert summary["n_fit"] == 2 and manager.paths.summary.is_file()


def test_save_and_load_keep_the_spec(tmp_path) -> None:
    manager = make(tmp_path, train_env=LAKE)  # no eval_env: the spec says "evaluate on train_env"
    loaded = ExperimentManager.load(manager.save())
    assert loaded.spec.eval_env is None and loaded.spec == manager.spec
    assert loaded.to_config() == manager.to_config()
    assert loaded.train_env == manager.train_env == LAKE and loaded._eval_env == LAKE
    other = make(tmp_path, train_env=LAKE, eval_env=SLIPPERY)
    assert ExperimentManager.load(other.save()).to_config() == other.to_config()


def test_an_explicit_n_checkpoints_checkpoints_an_additive_fit(tmp_path) -> None:
    manager = make(tmp_path, n_fit=1, fit_budget=100, n_checkpoints=5)
    manager.fit()
    assert fit_record(manager, 0)["chunks"] == [20] * 5
    unset = make(tmp_path, n_fit=1, fit_budget=100)  # the manager's default: one call per fit()
    unset.fit()
    assert fit_record(unset, 0)["chunks"] == [100]
    assert_same_instances(manager, unset)  # Q-learning's fit is additive: the chunks change no number


def test_cleared_instances_are_not_fitted_for_any_reader(tmp_path) -> None:
    manager = make(tmp_path, n_fit=2, fit_budget=50)
    manager.fit()
    assert manager.get_writer_data() is not None and not any(h.is_empty() for h in manager.agent_handlers)
    manager.clear_handlers()
    assert all(h.is_empty() for h in manager.agent_handlers)
    assert manager.get_writer_data() is None  # as before any fit: no old rows read as this manager's
    with pytest.raises(RuntimeError, match="not fitted"):
        manager.instance_scores()


def test_an_instance_without_fit_record_is_fitted_from_scratch(tmp_path) -> None:
    """A checkpoint without its fit record (a fit killed between the two renames) is not an instance to continue."""
    manager = make(tmp_path, n_fit=1, fit_budget=50)
    manager.fit()
    manager.paths.instance(0).fit_record.unlink()
    assert manager.agent_handlers[0].is_empty() and manager.get_writer_data() is None
    manager.fit()
    assert fit_record(manager, 0)["fit_calls"] == [50]
    assert manager.get_agent_instances()[0].total_env_steps == 50
