"""Evaluate one fitted instance: one row per episode, seeded from the instance's evaluation stream."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rlpipe.agents.base import Agent, AgentWithSimplePolicy
from rlpipe.arrow import float64_array, int64_array, null_array
from rlpipe.atomic import write_parquet
from rlpipe.fitting import agent_class, agent_kwargs
from rlpipe.provenance import library_versions
from rlpipe.rollouts import run_episodes
from rlpipe.tasks import AgentTask, EvalTask

EPISODE_COLUMNS = ("instance", "episode", "seed", "return", "discounted_return", "length")


def load_instance_agent(task: AgentTask, checkpoint: str | Path) -> Agent:
    """Rebuild the instance's agent (envs and init kwargs from the task) and load its checkpoint."""
    kwargs = agent_kwargs(task, Path(checkpoint).parent / "agent_output")
    return agent_class(task).load(checkpoint, allow_pickle=task.allow_pickle, **kwargs)


def evaluate_agent(agent: Agent, task: EvalTask) -> pa.Table:
    """Run ``n_simulations`` episodes of at most ``eval_horizon`` steps on the agent's eval env, one row each."""
    seeds = task.episode_seeds
    episodes = agent_episodes(agent, seeds, task.eval_kwargs["eval_horizon"], task.eval_kwargs["gamma"])
    n = len(seeds)
    columns = [
        int64_array(np.full(n, task.instance)),
        int64_array(np.arange(n)),
        int64_array(seeds),
        float64_array(episodes["return"]) if episodes["return"] is not None else null_array(n, pa.float64()),
        float64_array(episodes["discounted_return"]),
        int64_array(episodes["length"]) if episodes["length"] is not None else null_array(n, pa.int64()),
    ]
    return pa.Table.from_arrays(columns, names=list(EPISODE_COLUMNS))


def agent_episodes(agent: Agent, seeds: np.ndarray, horizon: int, gamma: float) -> dict[str, np.ndarray | None]:
    """Return, discounted return and length of one episode per reset seed.

    Agents with a ``policy`` are rolled out here. Other agents are scored by one
    ``agent.eval(n_simulations=1, ...)`` call per episode, which gives only the discounted return
    (the other entries are None).
    """
    if _has_policy(agent):
        return run_episodes(agent.policy, agent.eval_env, seeds, horizon, gamma)
    discounted = np.array([agent.eval(eval_horizon=horizon, n_simulations=1, gamma=gamma) for _ in seeds])
    return {"return": None, "discounted_return": discounted, "length": None}


def evaluate_instance(task: EvalTask, checkpoint: str | Path, output: str | Path) -> pa.Table:
    """Load the checkpoint, evaluate, and write the episodes table to ``output`` (Parquet)."""
    table = evaluate_agent(load_instance_agent(task, checkpoint), task)
    write_parquet(output, table, metadata={"task_hash": task.task_hash(), "eval_kwargs": task.eval_kwargs,
                                           "root_seed": task.root_seed, "versions": library_versions()})
    return table


def _has_policy(agent: Any) -> bool:
    return isinstance(agent, AgentWithSimplePolicy) and type(agent).policy is not AgentWithSimplePolicy.policy
