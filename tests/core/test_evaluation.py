"""rlpipe.core.evaluation, in process: an instance's evaluation table, by policy rollouts or calls of the agent's eval.

The tests of the whole stage (evaluate_instance on a fitted checkpoint) come first, then those of
score_agent, evaluate_agent and load_instance_agent on their own, with agents built in memory.
"""
from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rlpipe
from rlpipe.agents import QLearningAgent
from rlpipe.agents.base import Agent, AgentWithSimplePolicy
from rlpipe.core.evaluation import EPISODE_COLUMNS, evaluate_agent, evaluate_instance, load_instance_agent, score_agent
from rlpipe.core.fitting import agent_kwargs, fit_instance
from rlpipe.core.tasks import agent_class
from rlpipe.errors import CheckpointError
from rlpipe.io.paths import InstancePaths
from rlpipe.io.provenance import code_version
from rlpipe.runtime.envs import seed_env
from rlpipe.runtime.rollouts import run_episodes

from stage_helpers import leftovers, make_study
from study_tasks import eval_task, fit_task

# An optimal policy of the slippery 4x4 FrozenLake (0 left, 1 down, 2 right, 3 up): it reaches the goal in
# about three episodes out of four, so the returns of a few episodes are neither all 0 nor all 1.
FROZEN_LAKE_POLICY = (0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0)
TABLE_SCHEMA = pa.schema([("instance", pa.int64()), ("episode", pa.int64()), ("seed", pa.int64()), ("unit", pa.string()),
                          ("score", pa.float64()), ("return", pa.float64()), ("discounted_return", pa.float64()),
                          ("length", pa.int64())])


class FixedPolicyAgent(AgentWithSimplePolicy):
    """A policy that needs no training: the evaluate stage rolls it out."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        pass

    def policy(self, observation: Any) -> int:
        return FROZEN_LAKE_POLICY[int(observation)]


class PolicyWithOwnEval(FixedPolicyAgent):
    """Has a policy but writes its own eval: it is scored by that eval, not rolled out."""

    def eval(self, eval_horizon: int = 10, n_simulations: int = 1, gamma: float = 1.0) -> float:
        return 0.25


class EnvDrawingAgent(Agent):
    """An eval that draws from its eval env's generator (seeded per row) and records what it was passed."""

    def __init__(self, env: Any = None, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.calls: list[dict[str, Any]] = []

    def fit(self, budget: int, **kwargs: Any) -> None:
        pass

    def eval(self, eval_horizon: int = 10, n_simulations: int = 1, gamma: float = 1.0) -> float:
        self.calls.append({"eval_horizon": eval_horizon, "n_simulations": n_simulations, "gamma": gamma})
        return float(self.eval_env.unwrapped.np_random.random())


class HorizonOnlyAgent(Agent):
    """An eval whose signature takes no n_simulations."""

    def __init__(self, env: Any = None, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.calls: list[dict[str, Any]] = []

    def fit(self, budget: int, **kwargs: Any) -> None:
        pass

    def eval(self, eval_horizon: int = 10) -> float:
        self.calls.append({"eval_horizon": eval_horizon})
        return float(eval_horizon)


class CountingAgent(Agent):
    """No environment at all: its eval counts its calls."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        pass

    def eval(self, **kwargs: Any) -> float:
        self.n_calls = getattr(self, "n_calls", 0) + 1
        return float(self.n_calls)


# ---------------------------------------------------------------------------------------------- evaluation
@pytest.fixture
def fitted(tmp_path):
    s = make_study()
    paths = InstancePaths(tmp_path / "fitted")
    fit_instance(fit_task(s, "ql", 1), paths)
    return s, paths


def test_evaluate_instance_table(fitted, tmp_path):
    s, paths = fitted
    task = eval_task(s, "ql", 1)
    table = evaluate_instance(task, paths.checkpoint, paths.evaluation)
    on_disk = pq.read_table(paths.evaluation)
    assert on_disk.schema.names == list(EPISODE_COLUMNS) == [
        "instance", "episode", "seed", "unit", "score", "return", "discounted_return", "length"]
    assert on_disk.num_rows == task.eval_kwargs["n_simulations"] == 6
    assert on_disk.column("instance").to_pylist() == [1] * 6
    assert on_disk.column("episode").to_pylist() == list(range(6))
    assert on_disk.column("seed").to_pylist() == task.episode_seeds.tolist()
    assert on_disk.select(list(EPISODE_COLUMNS)).equals(table.select(list(EPISODE_COLUMNS)))
    frame = on_disk.to_pandas()
    assert (frame["length"] >= 1).all() and (frame["length"] <= 100).all()
    assert set(frame["return"]) <= {0.0, 1.0}
    # FrozenLake pays 1 on the last step only: discounted = gamma ** (length - 1) * return
    np.testing.assert_allclose(frame["discounted_return"], frame["return"] * 0.9 ** (frame["length"] - 1))
    assert (frame["unit"] == "episode").all()  # a policy rollout: one row per episode, scored by its discounted return
    assert frame["score"].tolist() == frame["discounted_return"].tolist()
    metadata = json.loads(on_disk.schema.metadata[b"rlpipe"])
    assert metadata["task_hash"] == task.task_hash()
    assert metadata["eval_kwargs"] == task.eval_kwargs
    # same episodes as rolling out the loaded agent's policy with the task's seeds
    agent = load_instance_agent(task, paths.checkpoint)
    direct = run_episodes(agent.policy, agent.eval_env, task.episode_seeds, 100, 0.9)
    np.testing.assert_array_equal(frame["length"].to_numpy(), direct["length"])
    np.testing.assert_array_equal(frame["discounted_return"].to_numpy(), direct["discounted_return"])
    assert leftovers(paths.folder) == []


def test_evaluate_instance_is_deterministic(fitted, tmp_path):
    s, paths = fitted
    task = eval_task(s, "ql", 1)
    a = evaluate_instance(task, paths.checkpoint, tmp_path / "a.parquet")
    b = evaluate_instance(task, paths.checkpoint, tmp_path / "b.parquet")
    assert a.equals(b)
    assert pq.read_table(tmp_path / "a.parquet").equals(pq.read_table(tmp_path / "b.parquet"))


def test_evaluation_more_simulations_extend_the_table(fitted, tmp_path):
    s, paths = fitted
    few = evaluate_instance(eval_task(s, "ql", 1), paths.checkpoint, tmp_path / "few.parquet")
    more_study = make_study(eval_kwargs={"n_simulations": 9, "eval_horizon": 100, "gamma": 0.9})
    more = evaluate_instance(eval_task(more_study, "ql", 1), paths.checkpoint, tmp_path / "more.parquet")
    assert more.num_rows == 9
    assert more.slice(0, 6).equals(few)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    task = eval_task(make_study(), "ql", 0)
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate_instance(task, tmp_path / "nope" / "agent.ckpt", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def eval_only_setup(tmp_path):
    s = make_study(agent="helpers_agents:EvalOnlyAgent", init_kwargs={}, fit_budget=50, n_checkpoints=2)
    paths = InstancePaths(tmp_path / "eval_only")
    fit_instance(fit_task(s, "ql", 0), paths)
    task = eval_task(s, "ql", 0)
    return task, paths


def test_agent_without_policy_is_scored_by_eval(tmp_path):
    task, paths = eval_only_setup(tmp_path)
    table = evaluate_instance(task, paths.checkpoint, paths.evaluation)
    assert table.num_rows == 6
    assert table.column("length").null_count == 6
    assert table.column("seed").to_pylist() == task.episode_seeds.tolist()
    frame = table.to_pandas()
    assert frame["return"].isna().all() and frame["discounted_return"].isna().all()
    assert (frame["unit"] == "eval").all()  # one row per call of the agent's own eval
    agent = load_instance_agent(task, paths.checkpoint)
    expected = [agent.eval(eval_horizon=100, n_simulations=1, gamma=0.9) for _ in range(6)]
    assert frame["score"].tolist() == expected


def test_agent_without_policy_has_null_returns(tmp_path):
    task, paths = eval_only_setup(tmp_path)
    table = evaluate_instance(task, paths.checkpoint, paths.evaluation)
    assert table.column("return").null_count == table.num_rows


def test_evaluate_instance_records_its_provenance(fitted):
    s, paths = fitted
    task = eval_task(s, "ql", 1)
    evaluate_instance(task, paths.checkpoint, paths.evaluation)
    metadata = json.loads(pq.read_schema(paths.evaluation).metadata[b"rlpipe"])
    assert set(metadata) == {"task_hash", "eval_kwargs", "root_seed", "versions", "git"}
    assert metadata["root_seed"] == task.root_seed and metadata["git"] == code_version()
    assert metadata["versions"]["rlpipe"] == rlpipe.__version__
    assert {"python", "numpy", "gymnasium"} <= set(metadata["versions"])


def test_evaluate_instance_without_run_settings_refuses_a_pickled_checkpoint(tmp_path):
    s = make_study(agent="helpers_agents:PickledCounterAgent", init_kwargs={}, fit_budget=60, n_checkpoints=3,
                   allow_pickle=True)
    paths = InstancePaths(tmp_path / "p")
    fit_instance(fit_task(s, "ql", 0), paths)
    assert paths.checkpoint.is_file()
    with pytest.raises(CheckpointError, match="is a pickle; unpickling can run arbitrary code.*allow_pickle=True"):
        evaluate_instance(eval_task(s, "ql", 0), paths.checkpoint, paths.evaluation)  # run=None: pickles not trusted
    assert not paths.evaluation.exists()


# ---------------------------------------------------------------------------------------------- load_instance_agent
def test_load_instance_agent_rebuilds_the_tasks_agent(fitted):
    s, paths = fitted
    task = eval_task(s, "ql", 1)
    agent = load_instance_agent(task, paths.checkpoint)
    assert type(agent) is QLearningAgent
    assert agent.epsilon_decay_steps == 300  # the task's init_kwargs
    assert agent.total_env_steps == 1000  # the checkpoint's state
    assert agent.output_dir == paths.checkpoint.parent / "agent_output"
    assert not agent.output_dir.exists()
    again = load_instance_agent(task, paths.checkpoint)
    np.testing.assert_array_equal(agent.q, again.q)
    assert np.abs(agent.q).sum() > 0  # a trained table, not a fresh one


def test_load_instance_agent_of_a_missing_checkpoint(tmp_path):
    task = eval_task(make_study(), "ql", 0)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_instance_agent(task, tmp_path / "agent.ckpt")


# ---------------------------------------------------------------------------------------------- score_agent
def test_score_agent_rolls_out_the_policy_once_per_seed():
    agent = FixedPolicyAgent("FrozenLake-v1", seeder=0)
    seeds = np.array([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 11])
    rows = score_agent(agent, {"eval_horizon": 100, "gamma": 0.9, "n_simulations": 3}, seeds)
    assert rows["unit"] == "episode"
    assert len(rows["score"]) == len(seeds) == 11  # one row per seed: n_simulations is the task's business
    np.testing.assert_array_equal(rows["score"], rows["discounted_return"])
    assert set(rows["return"]) == {0.0, 1.0}
    np.testing.assert_allclose(rows["discounted_return"], rows["return"] * 0.9 ** (rows["length"] - 1))
    assert (rows["length"] >= 1).all() and (rows["length"] <= 100).all()
    assert (rows["return"][0], rows["length"][0]) == (rows["return"][-1], rows["length"][-1])  # the same seed
    # the episodes depend on the seeds only: those of a fresh env with the same seeds
    fresh = run_episodes(agent.policy, gym.make("FrozenLake-v1"), seeds, 100, 0.9)
    for key in ("return", "discounted_return", "length"):
        np.testing.assert_array_equal(rows[key], fresh[key])


def test_score_agent_rollouts_default_to_the_base_evals_settings():
    agent = FixedPolicyAgent("FrozenLake-v1", seeder=0)
    seeds = np.arange(8)
    rows = score_agent(agent, {}, seeds)  # eval_horizon 10**5, gamma 1.0
    np.testing.assert_array_equal(rows["score"], rows["return"])
    short = score_agent(agent, {"eval_horizon": 3}, seeds)
    assert short["length"].max() == 3 and (short["length"] <= 3).all()
    assert (short["return"] == 0).all()  # the goal is at least 6 steps away


def test_score_agent_calls_the_agents_own_eval_once_per_seed_with_its_eval_env_seeded():
    agent = EnvDrawingAgent("FrozenLake-v1", seeder=0)
    seeds = np.array([3, 4, 3])
    rows = score_agent(agent, {"eval_horizon": 7, "n_simulations": 6, "gamma": 0.5}, seeds)
    assert rows["unit"] == "eval"
    assert rows["return"] is None and rows["discounted_return"] is None and rows["length"] is None
    assert agent.calls == [{"eval_horizon": 7, "n_simulations": 1, "gamma": 0.5}] * 3  # one simulation per call
    expected = []
    for seed in seeds:
        env = gym.make("FrozenLake-v1")
        seed_env(env, np.random.SeedSequence(int(seed)))
        expected.append(float(env.unwrapped.np_random.random()))
    assert rows["score"].tolist() == expected
    assert expected[0] == expected[2] != expected[1]


def test_score_agent_passes_n_simulations_only_to_an_eval_that_takes_it():
    agent = HorizonOnlyAgent("FrozenLake-v1", seeder=0)
    rows = score_agent(agent, {"eval_horizon": 4}, np.array([1, 2]))
    assert agent.calls == [{"eval_horizon": 4}] * 2
    assert rows["unit"] == "eval" and rows["score"].tolist() == [4.0, 4.0]


def test_score_agent_of_an_agent_without_an_eval_env():
    agent = CountingAgent(None, seeder=0)
    assert agent.eval_env is None
    rows = score_agent(agent, {}, np.array([5, 6, 7]))
    assert rows["score"].tolist() == [1.0, 2.0, 3.0]  # one call per seed, in order


def test_a_policy_agent_with_its_own_eval_is_scored_by_it():
    rows = score_agent(PolicyWithOwnEval("FrozenLake-v1", seeder=0), {"eval_horizon": 100}, np.arange(4))
    assert rows["unit"] == "eval"
    assert rows["score"].tolist() == [0.25] * 4
    assert rows["length"] is None


# ---------------------------------------------------------------------------------------------- evaluate_agent
def test_evaluate_agent_table_of_a_policy():
    task = eval_task(make_study(), "ql", 1)
    agent = FixedPolicyAgent("FrozenLake-v1", seeder=0)
    table = evaluate_agent(agent, task)
    assert table.schema == TABLE_SCHEMA
    assert table.num_rows == 6
    assert table.column("instance").to_pylist() == [1] * 6
    assert table.column("episode").to_pylist() == [0, 1, 2, 3, 4, 5]
    assert table.column("seed").to_pylist() == task.episode_seeds.tolist()
    assert table.column("unit").to_pylist() == ["episode"] * 6
    rows = score_agent(agent, task.eval_kwargs, task.episode_seeds)
    for column in ("score", "return", "discounted_return", "length"):
        assert table.column(column).null_count == 0
        assert table.column(column).to_pylist() == rows[column].tolist()


def test_evaluate_agent_table_of_an_eval_has_typed_null_columns(tmp_path):
    s = make_study(agent="helpers_agents:EvalOnlyAgent", init_kwargs={}, fit_budget=50, n_checkpoints=2)
    task = eval_task(s, "ql", 0)
    agent, twin = (agent_class(task)(**agent_kwargs(task, tmp_path)) for _ in range(2))
    table = evaluate_agent(agent, task)
    assert table.schema == TABLE_SCHEMA  # the same columns and types as a rollout's table
    assert table.column("unit").to_pylist() == ["eval"] * 6
    for column in ("return", "discounted_return", "length"):
        assert table.column(column).null_count == 6
    # each call draws one simulation (n_simulations=1) from the agent's eval generator, 6 calls in a row
    assert table.column("score").to_pylist() == [float(twin._eval_rng.random(1)[0]) for _ in range(6)]
