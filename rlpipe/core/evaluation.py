"""Evaluate one fitted instance: one row per episode, or per call of the agent's own ``eval``.

An agent that keeps the base ``eval`` of :class:`~rlpipe.agents.AgentWithSimplePolicy` is rolled out
here, one row per episode (``unit`` = "episode", with its return, discounted return and length). Any
other agent is scored by its own ``eval``: it defines the objective, so it is what the evaluate stage,
hyperparameter trials and comparisons use, one row per call (``unit`` = "eval", ``n_simulations=1``
passed when its signature takes it, as rlberry's ``eval_agents`` does). Either way there are
``n_simulations`` rows, row ``k`` seeded from the instance's evaluation stream, and ``score`` is the
number the statistics are about.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rlpipe.agents.base import Agent
from rlpipe.agents.capabilities import call_eval, eval_settings, rolls_out_policy
from rlpipe.core.fitting import load_agent
from rlpipe.core.tasks import AgentTask, EvalTask, RunSettings
from rlpipe.io.arrow import float64_array, int64_array, string_array
from rlpipe.io.atomic import write_parquet
from rlpipe.io.provenance import software
from rlpipe.runtime.envs import seed_env
from rlpipe.runtime.rollouts import run_episodes

EPISODE_COLUMNS = ("instance", "episode", "seed", "unit", "score", "return", "discounted_return", "length")
EPISODE, EVAL_CALL = "episode", "eval"


def load_instance_agent(task: AgentTask, checkpoint: str | Path, allow_pickle: bool = False) -> Agent:
    """Rebuild the instance's agent (envs and init kwargs from the task) and load its checkpoint."""
    return load_agent(task, checkpoint, Path(checkpoint).parent / "agent_output", allow_pickle)


def score_agent(agent: Agent, eval_kwargs: Mapping[str, Any], seeds: np.ndarray) -> dict[str, Any]:
    """One score per seed: an episode of the policy reset with that seed, or a call of ``agent.eval`` after
    its eval env was seeded with it. Returns ``unit``, ``score`` and, for episodes, ``return``,
    ``discounted_return`` and ``length`` (None for eval calls)."""
    settings = eval_settings(eval_kwargs)
    if rolls_out_policy(type(agent)):
        episodes = run_episodes(agent.policy, agent.eval_env, seeds, settings["eval_horizon"], settings["gamma"])
        return {"unit": EPISODE, "score": episodes["discounted_return"], **episodes}
    scores = np.empty(len(seeds))
    for k, seed in enumerate(seeds):
        if agent.eval_env is not None:
            seed_env(agent.eval_env, np.random.SeedSequence(int(seed)))
        scores[k] = call_eval(agent, eval_kwargs, n_simulations=1)
    return {"unit": EVAL_CALL, "score": scores, "return": None, "discounted_return": None, "length": None}


def evaluate_agent(agent: Agent, task: EvalTask) -> pa.Table:
    """The instance's evaluation table: ``n_simulations`` rows (see the module docstring)."""
    seeds = task.episode_seeds
    rows = score_agent(agent, task.eval_kwargs, seeds)
    n = len(seeds)
    columns = [
        int64_array(np.full(n, task.instance)),
        int64_array(np.arange(n)),
        int64_array(seeds),
        string_array([rows["unit"]] * n),
        float64_array(rows["score"]),
        _optional(rows["return"], float64_array, pa.float64(), n),
        _optional(rows["discounted_return"], float64_array, pa.float64(), n),
        _optional(rows["length"], int64_array, pa.int64(), n),
    ]
    return pa.Table.from_arrays(columns, names=list(EPISODE_COLUMNS))


def evaluate_instance(task: EvalTask, checkpoint: str | Path, output: str | Path, run: RunSettings | None = None,
                      provenance: Mapping[str, Any] | None = None) -> pa.Table:
    """Load the checkpoint, evaluate, and write the evaluation table to ``output`` (Parquet); its metadata holds the
    task's hash, eval kwargs, root seed and versions, and ``provenance`` (e.g. which fit it evaluated)."""
    allow_pickle = run is not None and run.allow_pickle
    table = evaluate_agent(load_instance_agent(task, checkpoint, allow_pickle), task)
    write_parquet(output, table, metadata={"task_hash": task.task_hash(), "eval_kwargs": task.eval_kwargs,
                                           "root_seed": task.root_seed, **software(),
                                           **(provenance or {})})
    return table


def _optional(values: np.ndarray | None, build: Any, kind: pa.DataType, n: int) -> pa.Array:
    return pa.nulls(n, kind) if values is None else build(values)
