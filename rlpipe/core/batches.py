"""Run one Snakemake job's batch of instances in this process, one after another, so that cheap instances do
not each pay a job's start-up.

A batch job's output is its record (``batches/<stage>-<b>.json``). Each instance's files are written to its
own folder as it finishes, as a job of one instance writes them, and are not Snakemake outputs, so Snakemake
never deletes a valid one (before a job reruns, or after it fails). What a job does with each instance:

- one that an earlier, unfinished run of this very job completed (its progress file lists it, under a key of
  what it computed) is skipped: after a kill (``--rerun-incomplete``) or a failure, the job resumes after the
  instances it completed, and an interrupted fit resumes after its last chunk;
- one whose files were made for exactly its task by another job is kept (and marked as this job's): the job
  runs because the batches changed (``instances_per_job``, or ``n_fit`` with "auto") or another instance of the
  batch changed, so only what changed is redone;
- any other is fitted (or evaluated): among them those this very job made before, since it runs again on the same
  batch only because you asked (``--forcerun``, a deleted record) or because its fits were redone.

An instance that fails does not stop the others; the job then fails naming it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rlpipe.core.evaluation import evaluate_instance
from rlpipe.core.fitting import fit_instance
from rlpipe.core.tasks import AgentTask, RunSettings, TaskBatch
from rlpipe.errors import RlpipeError
from rlpipe.io.arrow import read_metadata, read_table
from rlpipe.io.atomic import write_json, write_parquet
from rlpipe.io.logs import LOGGER_NAME
from rlpipe.io.paths import BatchPaths, ExperimentPaths, InstancePaths
from rlpipe.io.provenance import software, stable_hash, utc_now

_LOGGER = logging.getLogger(__name__)


def fit_batch(batch: TaskBatch, paths: ExperimentPaths, index: int, run: RunSettings, *, prefix: str = "") -> dict[str, Any]:
    """Fit the batch's instances (each into ``paths.instance(i)``) and write the job's record,
    ``batches/<prefix>fit-<index>.json`` (``prefix`` names the jobs of another flow, such as AdaStop's "adastop-",
    whose batches are numbered apart)."""
    job = _job_mark(batch, index, prefix)

    def fit(task: AgentTask) -> None:
        files = paths.instance(task.instance)
        record = fit_instance(task, files, run)
        write_json(files.fit_record, {**record, "batch": job})

    def keep(task: AgentTask) -> bool:
        files = paths.instance(task.instance)
        record = _read_json(files.fit_record)
        if not (record and _made_elsewhere(record, task, job) and files.checkpoint.is_file()
                and files.writer.is_file()):
            return False
        write_json(files.fit_record, {**record, "batch": job})
        return True

    return _run_batch(batch, paths, paths.batch(f"{prefix}fit", index), job, fit, keep, "fit_log")


def evaluate_batch(batch: TaskBatch, paths: ExperimentPaths, index: int, run: RunSettings, *,
                   prefix: str = "") -> dict[str, Any]:
    """Evaluate the batch's fitted instances and write the job's record. Its progress is keyed by the record of
    the fit job too, so that instances evaluated before their fits were redone are evaluated again."""
    job = _job_mark(batch, index, prefix)
    key = stable_hash([job, _file_digest(paths.batch(f"{prefix}fit", index).record)])

    def evaluate(task: AgentTask) -> None:
        files = paths.instance(task.instance)
        evaluate_instance(task, files.checkpoint, files.evaluation, run,
                          provenance={"fit": _fit_identity(files), "batch": job})

    def keep(task: AgentTask) -> bool:
        files = paths.instance(task.instance)
        if not files.evaluation.is_file():
            return False
        try:
            metadata = read_metadata(files.evaluation)
        except RlpipeError:
            return False
        if not (_made_elsewhere(metadata, task, job) and metadata.get("fit") == _fit_identity(files)):
            return False
        table = read_table(files.evaluation)
        write_parquet(files.evaluation, table.replace_schema_metadata(None), metadata={**metadata, "batch": job})
        return True

    return _run_batch(batch, paths, paths.batch(f"{prefix}evaluate", index), key, evaluate, keep, "evaluation_log")


def _job_mark(batch: TaskBatch, index: int, prefix: str = "") -> str:
    """What marks an instance's files as made by this job: its place (flow, stage, batch) and what it computes."""
    return f"{prefix}{batch.stage}-{index}:{batch.task_hash()}"


def _made_elsewhere(record: dict[str, Any], task: AgentTask, job: str) -> bool:
    """Whether an instance's files were made for exactly this task by another job: one of another batching (a
    changed ``instances_per_job``, or ``n_fit`` with "auto"), or of a batch where another instance changed. They
    are kept (and marked as this job's). Files made by this very job are redone: it runs again because you asked."""
    return record.get("task_hash") == task.task_hash() and record.get("batch") != job


def _fit_identity(files: InstancePaths) -> str | None:
    """Which fit an evaluation evaluated: its task and its checkpoint's content (a refit that changes it, after the
    agent's code changed, say, changes it; the same numbers keep it, so the evaluation's bytes reproduce too)."""
    record = _read_json(files.fit_record)
    return f"{record.get('task_hash')}:{_file_digest(files.checkpoint)[:16]}" if record else None


def _run_batch(batch: TaskBatch, paths: ExperimentPaths, job: BatchPaths, key: str,
               work: Callable[[AgentTask], None], keep: Callable[[AgentTask], bool], log: str) -> dict[str, Any]:
    started, clock, cpu = utc_now(), time.perf_counter(), time.process_time()
    done = _completed(job.progress, key)
    tasks = batch.tasks()
    failed: dict[int, str] = {}
    kept: list[int] = []
    for task in tasks:
        if task.instance in done:
            _LOGGER.info("%s[%d]: %s by an earlier run of this job", task.experiment, task.instance, _PAST[batch.stage])
            continue
        if keep(task):
            _LOGGER.info("%s[%d]: kept: %s for this task by another job", task.experiment, task.instance,
                         _PAST[batch.stage])
            kept.append(task.instance)
        else:
            try:
                with _instance_log(getattr(paths.instance(task.instance), log)):
                    work(task)
            except Exception as error:  # the other instances still run; the job fails at the end
                if len(tasks) == 1:
                    raise  # reported by the command as a job of one instance reports it
                _LOGGER.error("%s[%d] failed: %s", task.experiment, task.instance, error,
                              exc_info=not isinstance(error, RlpipeError))
                failed[task.instance] = f"{type(error).__name__}: {error}"
                continue
        done.append(task.instance)
        write_json(job.progress, {"key": key, "done": done})
    if failed:
        listed = "; ".join(f"instance {i}: {why}" for i, why in failed.items())
        raise RlpipeError(f"{len(failed)} of {len(tasks)} instances failed ({listed}); the other "
                          f"{len(tasks) - len(failed)} are kept, and a rerun of this job resumes after them")
    record = {
        "stage": batch.stage,  # "fit" or "evaluate", whichever flow's job (its file name says which)
        "experiment": batch.experiment,
        "instances": batch.instances,
        "kept": kept,
        "task_hashes": {str(task.instance): task.task_hash() for task in tasks},
        "batch_hash": batch.task_hash(),
        **software(),
        "started": started,
        "finished": utc_now(),
        "wall_time_s": time.perf_counter() - clock,
        "cpu_time_s": time.process_time() - cpu,
    }
    write_json(job.record, record)
    job.progress.unlink(missing_ok=True)
    return record


_PAST = {"fit": "fitted", "evaluate": "evaluated"}


def check_batch_outputs(paths: ExperimentPaths, records: Sequence[Path]) -> None:
    """Check that the files of every instance the batch jobs of ``records`` made are still there and are the ones
    they made (Snakemake tracks a job by its record, not by its instances' files). Raises :class:`RlpipeError`
    naming each problem and the job to redo."""
    problems = []
    for path in records:
        record = json.loads(Path(path).read_text())
        for instance, task_hash in record["task_hashes"].items():
            files = paths.instance(instance)
            problem = (_fit_problem(files, task_hash) if record["stage"] == "fit"
                       else _evaluation_problem(files, task_hash))
            if problem:
                problems.append(f"instance {instance}: {problem} (made by {path}: delete it, or run "
                                f"`snakemake --forcerun {path}`, to redo its job)")
    if problems:
        raise RlpipeError("instance files changed after the job that made them ran:\n  - " + "\n  - ".join(problems))


def _fit_problem(files: InstancePaths, task_hash: str) -> str | None:
    missing = [p.name for p in (files.checkpoint, files.writer, files.fit_record) if not p.is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    try:
        recorded = json.loads(files.fit_record.read_text()).get("task_hash")
    except ValueError:
        return f"{files.fit_record.name} cannot be read"
    return None if recorded == task_hash else f"{files.fit_record.name} is the record of another fit"


def _evaluation_problem(files: InstancePaths, task_hash: str) -> str | None:
    if not files.evaluation.is_file():
        return f"{files.evaluation.name} missing"
    try:
        recorded = read_metadata(files.evaluation).get("task_hash")
    except RlpipeError as error:
        return str(error)
    return None if recorded == task_hash else f"{files.evaluation.name} is the evaluation of another task"


def _completed(progress: Path, key: str) -> list[int]:
    """The instances an earlier, unfinished run of this very job completed (none if it computed something else)."""
    state = _read_json(progress) or {}
    return [int(i) for i in state.get("done", [])] if state.get("key") == key else []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


@contextmanager
def _instance_log(path: Path) -> Iterator[None]:
    """Copy rlpipe's log records to the instance's own log file (``fit.log``, ``evaluate.log``) while it runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield
    except Exception as error:  # the instance's own log says why it failed
        handler.handle(logging.makeLogRecord({"msg": f"failed: {error}", "levelno": logging.ERROR,
                                              "exc_info": None if isinstance(error, RlpipeError) else sys.exc_info()}))
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
