"""Fit one instance in chunks, checkpointing after each, and resume an interrupted fit from its last chunk.

Progress lives in ``<instance>/progress/`` (not a declared output, so Snakemake never deletes it),
keyed by the task's hash (what the fit computes) and counted in budget done, so a fit resumes even
when how many checkpoints it writes has changed. The final checkpoint, writer Parquet and record are
renamed into place only when the fit is complete.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlpipe.agents.base import Agent
from rlpipe.agents.capabilities import call_load
from rlpipe.core.tasks import IDENTITY_WRITER_KEYS, AgentTask, FitTask, RunSettings, agent_class
from rlpipe.errors import RlpipeError
from rlpipe.io.arrow import read_table
from rlpipe.io.atomic import write_json, write_parquet
from rlpipe.io.imports import object_path
from rlpipe.io.paths import InstancePaths
from rlpipe.io.provenance import software, utc_now
from rlpipe.runtime.seeding import global_rng_state, seed_record, seed_torch, unseeded_draws
from rlpipe.runtime.writer import DefaultWriter

_PROGRESS_RECORD = "progress.json"
_LOGGER = logging.getLogger(__name__)


def agent_kwargs(task: AgentTask, output_dir: Path, writer_kwargs: dict[str, Any] | None = None,
                 shared_data: dict[str, Any] | None = None, seeder: Any = None) -> dict[str, Any]:
    """Constructor kwargs of the instance's agent: env, eval env, seed (default: the instance's fit
    stream), then the user's init_kwargs."""
    kwargs = {
        "env": task.train_env,
        "eval_env": task.eval_env,
        "seeder": task.instance_seed if seeder is None else seeder,
        "output_dir": output_dir,
        "_execution_metadata": task.instance,
        **({"_thread_shared_data": shared_data} if shared_data is not None else {}),
        **task.init_kwargs,
    }
    if writer_kwargs is not None:
        kwargs["_default_writer_kwargs"] = {"name": task.experiment, **writer_kwargs}
    return kwargs


def build_agent(task: AgentTask, output_dir: Path, writer_kwargs: dict[str, Any] | None = None,
                shared_data: dict[str, Any] | None = None, seeder: Any = None) -> Agent:
    """The instance's agent, new: its class imported, torch seeded from its seed (when torch is loaded), then built
    with :func:`agent_kwargs` (the same arguments)."""
    cls, kwargs = _prepared(task, output_dir, writer_kwargs, shared_data, seeder)
    return cls(**kwargs)


def load_agent(task: AgentTask, checkpoint: str | os.PathLike, output_dir: Path, allow_pickle: bool = False,
               writer_kwargs: dict[str, Any] | None = None, shared_data: dict[str, Any] | None = None) -> Agent:
    """The instance's agent loaded from ``checkpoint``, prepared as :func:`build_agent` prepares it, with the class's
    own ``load`` (``allow_pickle`` passed only if it names it: see :func:`~rlpipe.agents.capabilities.call_load`)."""
    cls, kwargs = _prepared(task, output_dir, writer_kwargs, shared_data, None)
    return call_load(cls, checkpoint, allow_pickle, **kwargs)


def _prepared(task: AgentTask, output_dir: Path, writer_kwargs: dict[str, Any] | None,
              shared_data: dict[str, Any] | None, seeder: Any) -> tuple[type[Agent], dict[str, Any]]:
    cls = agent_class(task)  # imports the agent's module first: the torch it imports is then seeded
    kwargs = agent_kwargs(task, output_dir, writer_kwargs, shared_data, seeder)
    seed_torch(kwargs["seeder"])
    return cls, kwargs


def writer_kwargs(task: FitTask, run: RunSettings) -> dict[str, Any]:
    """The instance's DefaultWriter settings: which rows it keeps (the task's) and how it shows progress (the run's)."""
    return {**run.writer, **{key: getattr(task, key) for key in IDENTITY_WRITER_KEYS}}


def split_budget(budget: int, n_chunks: int) -> list[int]:
    """``n_chunks`` integer budgets summing to ``budget``, as equal as possible (never a zero chunk).

    A budget of 0 or -1 (agents that need none) is passed through as one chunk.
    """
    n = max(1, min(n_chunks, budget))
    base, extra = divmod(budget, n)
    return [base + (1 if k < extra else 0) for k in range(n)]


def remaining_chunks(budget: int, n_chunks: int, done: int) -> list[int]:
    """The chunks still to fit once ``done`` of ``budget`` is fitted: the planned ones after ``done`` when it ends a
    planned chunk (always, for agents whose chunks are part of their task), else the rest split evenly."""
    plan = split_budget(budget, n_chunks)
    if done == 0:
        return plan
    ends = list(itertools.accumulate(plan))
    if done in ends:
        return plan[ends.index(done) + 1:]
    return split_budget(budget - done, sum(1 for end in ends if end > done))


def fit_instance(
    task: FitTask,
    paths: InstancePaths,
    run: RunSettings | None = None,
    continue_fit: bool = False,
    prepare_agent: Callable[[Agent], None] | None = None,
    shared_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit the instance described by ``task``, as ``run`` says, and write its checkpoint, writer data and record.

    ``continue_fit`` trains the instance's existing checkpoint for ``task.fit_budget`` more (fit is
    additive), as a second ``ExperimentManager.fit`` does. ``prepare_agent`` is called on the agent
    before training (e.g. to set its writer); ``shared_data`` is passed to it as ``_thread_shared_data``.
    """
    run = run or RunSettings()
    started, clock, cpu = utc_now(), time.perf_counter(), time.process_time()
    n_chunks = task.chunks if task.chunks is not None else run.n_checkpoints
    previous = json.loads(paths.fit_record.read_text()) if continue_fit and paths.fit_record.is_file() else None
    agent_class(task)  # import the agent's module (and torch, if it imports it) before the fingerprint
    before = global_rng_state()  # before the agent is built: draws in its __init__ count too
    agent, done = _resume_or_build(task, run, paths, previous is not None, shared_data)
    resumed_at, chunks = done, remaining_chunks(task.fit_budget, n_chunks, done)
    # Time spent by earlier runs: the killed runs this one resumes, and the fit calls it continues (additive fits).
    earlier = [_read_progress(paths.progress) or {} if done else {}, previous or {}]
    spent_wall, spent_cpu = (sum(r.get(key, 0.0) for r in earlier) for key in ("wall_time_s", "cpu_time_s"))
    if done:
        _LOGGER.info("resuming %s[%d] after %d of its budget %d", task.experiment, task.instance, done, task.fit_budget)
    recorded = agent.writer  # the rows so far, kept if prepare_agent disables or replaces the writer
    if prepare_agent is not None:
        prepare_agent(agent)
    if hasattr(agent.writer, "set_max_global_step") and task.fit_budget > 0:
        agent.writer.set_max_global_step(agent.total_env_steps + task.fit_budget - done)
    drawn: set[str] = set()  # the global generators drawn from since `before`: reported once each, as they appear
    for chunk in chunks:
        agent.fit(chunk, **task.fit_kwargs)
        drawn |= _warn_unseeded(task, agent, before, drawn)
        done += max(chunk, 0)
        spent = {"wall_time_s": spent_wall + time.perf_counter() - clock, "cpu_time_s": spent_cpu + time.process_time() - cpu}
        _save_progress(agent, task, paths, done, recorded, spent)
    if hasattr(agent.writer, "close"):
        agent.writer.close()
    fit_calls = (previous["fit_calls"] if previous else []) + [task.fit_budget]
    record = {
        "experiment": task.experiment,
        "instance": task.instance,
        "agent_class": object_path(type(agent)),
        "fit_budget": sum(budget for budget in fit_calls if budget > 0),
        "fit_calls": fit_calls,
        "chunks": chunks,
        "resumed_at": resumed_at,
        "total_env_steps": agent.total_env_steps,
        "unseeded_draws": bool(drawn),
        "root_seed": task.root_seed,
        "instance_seed": seed_record(task.instance_seed),
        "task": task.record(),
        "task_hash": task.task_hash(),
        "run": json.loads(run.to_json()),
        **software(),
        "started": started,
        "finished": utc_now(),
        "wall_time_s": spent_wall + time.perf_counter() - clock,  # every run of the fit: resumed and continued ones too
        "cpu_time_s": spent_cpu + time.process_time() - cpu,  # this process's CPU time (all its threads), same runs
        "run_wall_time_s": time.perf_counter() - clock,  # this run only
    }
    _promote_progress(paths, record)
    return record


def _warn_unseeded(task: FitTask, agent: Agent, before: dict[str, Any], warned: set[str]) -> set[str]:
    """The global generators the agent drew from since ``before`` that rlpipe did not seed; warns of those not in
    ``warned``."""
    drawn = set(unseeded_draws(before, global_rng_state()))
    if drawn & {"numpy", "random"} and not warned & {"numpy", "random"}:
        _LOGGER.warning("%s[%d]: %s drew from numpy's or Python's global random generator (np.random.*, random.*), "
                        "which rlpipe does not seed: its numbers may not reproduce. Draw from self.rng instead.",
                        task.experiment, task.instance, type(agent).__name__)
    if "torch" in drawn - warned:
        _LOGGER.warning("%s[%d]: %s drew from torch's global generator, but torch was imported only after the agent "
                        "was built, so rlpipe could not seed it: its numbers may not reproduce. Import torch at the top "
                        "of the agent's module.", task.experiment, task.instance, type(agent).__name__)
    return drawn


def _resume_or_build(task: FitTask, run: RunSettings, paths: InstancePaths, from_outputs: bool,
                     shared_data: dict[str, Any] | None) -> tuple[Agent, int]:
    """The agent after the last saved chunk of this exact task (and the budget it has fitted), else the agent
    of the instance's final outputs when ``from_outputs``, else a fresh one."""
    output_dir, writer = paths.folder / "agent_output", writer_kwargs(task, run)
    progress = _read_progress(paths.progress)
    if progress is not None and progress.get("task_hash") == task.task_hash():
        try:
            agent = _load(task, run, output_dir, writer, shared_data, paths.progress / progress["checkpoint"],
                          paths.progress / progress["writer"])
            return agent, int(progress["budget_done"])
        except (RlpipeError, OSError, ValueError, KeyError) as error:  # unreadable progress is discarded, never trusted
            _LOGGER.warning("%s[%d]: cannot resume (%s); starting over", task.experiment, task.instance, error)
    shutil.rmtree(paths.progress, ignore_errors=True)
    if from_outputs:
        return _load(task, run, output_dir, writer, shared_data, paths.checkpoint, paths.writer), 0
    return build_agent(task, output_dir, writer, shared_data), 0


def _load(task: FitTask, run: RunSettings, output_dir: Path, writer_kwargs: dict[str, Any],
          shared_data: dict[str, Any] | None, checkpoint: Path, writer: Path) -> Agent:
    agent = load_agent(task, checkpoint, output_dir, run.allow_pickle, writer_kwargs, shared_data)
    agent.writer.load_arrow(read_table(writer))
    return agent


def _read_progress(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _PROGRESS_RECORD).read_text())
    except (OSError, ValueError):
        return None


def _save_progress(agent: Agent, task: FitTask, paths: InstancePaths, budget_done: int, recorded: DefaultWriter,
                   spent: dict[str, float]) -> None:
    """Save the agent after ``budget_done`` of its budget so that a kill at any moment leaves a consistent state.

    The checkpoint and writer data go to files named after the budget done; then the record that names
    them replaces the previous one; only then are the previous chunk's files deleted. Writer data
    comes from the agent's DefaultWriter; with a disabled or custom writer, the rows recorded before
    it was set are kept and no new ones are added.
    """
    folder = paths.progress
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint, writer_file = folder / f"agent.{budget_done}.ckpt", folder / f"writer.{budget_done}.parquet"
    if agent.save(checkpoint) != checkpoint:
        raise RlpipeError(f"{type(agent).__name__}.save must write the file it is given ({checkpoint})")
    writer = agent.writer if isinstance(agent.writer, DefaultWriter) else recorded
    write_parquet(writer_file, writer.to_arrow(), metadata={"task_hash": task.task_hash(), "root_seed": task.root_seed,
                                                           "instance": task.instance, **software()})
    write_json(folder / _PROGRESS_RECORD, {"task_hash": task.task_hash(), "budget_done": budget_done,
                                           "checkpoint": checkpoint.name, "writer": writer_file.name, **spent})
    for stale in folder.iterdir():  # earlier chunks, and temporary files of a killed save
        if stale.name not in (_PROGRESS_RECORD, checkpoint.name, writer_file.name):
            stale.unlink(missing_ok=True)


def _promote_progress(paths: InstancePaths, record: dict[str, Any]) -> None:
    progress = _read_progress(paths.progress)
    os.replace(paths.progress / progress["writer"], paths.writer)
    os.replace(paths.progress / progress["checkpoint"], paths.checkpoint)
    write_json(paths.fit_record, record)
    shutil.rmtree(paths.progress, ignore_errors=True)
