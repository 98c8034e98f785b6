"""Aggregate one experiment: all instances' writer data and evaluations, a summary, and two plots."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rlpipe import plots, statistics
from rlpipe.arrow import read_table
from rlpipe.atomic import save_figure, write_json, write_parquet
from rlpipe.errors import RlpipeError
from rlpipe.paths import ExperimentPaths, InstancePaths
from rlpipe.provenance import library_versions
from rlpipe.tasks import AggregateTask

SCORE = "discounted_return"  # what agent.eval returns: with gamma = 1 it is the plain return


def read_instance_tables(instances: Sequence[int], paths: Sequence[InstancePaths], kind: str) -> pd.DataFrame:
    """Concatenate one Parquet file per instance (``kind`` = "writer" or "evaluation") with an ``instance`` column."""
    frames = []
    for index, instance_paths in zip(instances, paths):
        frame = read_table(getattr(instance_paths, kind)).to_pandas()
        frame["instance"] = np.int64(index)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def check_complete(task: AggregateTask, instance_paths: Sequence[InstancePaths]) -> None:
    """Refuse to aggregate over fewer instances than the experiment has: statistics over a silent subset mislead."""
    missing = [i for i, p in zip(task.instances, instance_paths)
               if not (p.writer.is_file() and p.evaluation.is_file() and p.fit_record.is_file())]
    if missing:
        raise RlpipeError(
            f"{len(missing)} of {len(task.instances)} instances of '{task.experiment}' have no fit or evaluation "
            f"(instances {', '.join(map(str, missing))}): not aggregating over fewer; see their fit.log and evaluate.log"
        )


def per_instance_scores(evaluation: pd.DataFrame) -> pd.Series:
    """Mean evaluation score of each instance: the unit the statistics are about (episodes are not independent runs)."""
    return evaluation.groupby("instance", sort=True)[SCORE].mean()


def aggregate_experiment(task: AggregateTask, instance_paths: Sequence[InstancePaths], paths: ExperimentPaths) -> dict[str, Any]:
    """Write writer_data.parquet, evaluation.parquet, summary.json and the two plots of the experiment."""
    instances = task.instances
    check_complete(task, instance_paths)
    writer_data = read_instance_tables(instances, instance_paths, "writer")
    evaluation = read_instance_tables(instances, instance_paths, "evaluation")
    evaluation.insert(0, "experiment", task.experiment)
    provenance = {"root_seed": task.root_seed, "task_hash": task.task_hash(), "versions": library_versions()}
    write_parquet(paths.writer_data, writer_data, metadata=provenance)
    write_parquet(paths.evaluation, evaluation, metadata=provenance)

    scores = per_instance_scores(evaluation)
    rng = np.random.default_rng(task.statistics_seed)
    report = task.report
    summary = {
        "experiment": task.experiment,
        "agent": task.agent,
        "env": task.env,
        "fit_budget": task.fit_budget,
        "n_fit": len(instances),
        "metric": SCORE,
        **statistics.summarize(scores.to_numpy(), rng, n_resamples=report["bootstrap_samples"], confidence=report["confidence"]),
        "per_instance": {str(i): float(v) for i, v in scores.items()},
        "fit_wall_time_s": _fit_wall_times(instance_paths),
        **provenance,
    }
    write_json(paths.summary, summary)
    _plot_learning_curve(task, writer_data, paths, rng)
    figure = plots.evaluation_figure(evaluation, title=f"{task.experiment}: evaluation ({task.env})", metric=SCORE)
    save_figure(figure, paths.evaluation_plot, dpi=120)
    return summary


def _plot_learning_curve(task: AggregateTask, writer_data: pd.DataFrame, paths: ExperimentPaths, rng: np.random.Generator) -> None:
    settings = task.learning_curve
    tag, xtag = settings["tag"], settings["xtag"]
    curves = statistics.learning_curves(writer_data, tag, xtag=xtag, smoothing_window=settings["smoothing_window"])
    band = statistics.curve_band(curves, rng, confidence=task.report["confidence"])
    xlabel = "environment steps" if xtag == "global_step" else "seconds"
    figure = plots.learning_curve_figure(band, curves, title=f"{task.experiment} on {task.env}", ylabel=tag,
                                         xlabel=xlabel, confidence=task.report["confidence"])
    save_figure(figure, paths.learning_curve_plot, dpi=120)


def _fit_wall_times(instance_paths: Sequence[InstancePaths]) -> list[float]:
    return [json.loads(p.fit_record.read_text())["wall_time_s"] for p in instance_paths]
