"""The tasks of a validated study as the Snakemake rules build them (``rlpipe.pipeline.workflow``), for tests."""
from __future__ import annotations

from rlpipe.core import tasks
from rlpipe.spec.experiment import Study


def fit_task(study: Study, name: str, instance: int) -> tasks.FitTask:
    return tasks.fit_task(study.experiment(name), study.root, instance)


def eval_task(study: Study, name: str, instance: int) -> tasks.EvalTask:
    return tasks.eval_task(study.experiment(name), study.root, instance)


def aggregate_task(study: Study, name: str) -> tasks.AggregateTask:
    return tasks.aggregate_task(study.experiment(name), study.root, study.report)


def optimize_task(study: Study, name: str) -> tasks.OptimizeTask:
    return tasks.optimize_task(study.experiment(name), study.root)


def run_settings(study: Study, name: str) -> tasks.RunSettings:
    return tasks.run_settings(study.experiment(name))


def task_batch(study: Study, name: str, stage: str, batch: int) -> tasks.TaskBatch:
    return tasks.task_batch(stage, study.experiment(name), study.root, batch)
