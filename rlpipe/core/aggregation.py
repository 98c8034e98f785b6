"""Aggregate one experiment: all instances' writer data and evaluations, a summary, and two plots.

``summary.json``'s ``fit_budget`` is the budget the instances were fitted for, read from their ``fit.json``
(a second ``ExperimentManager.fit(300)`` after a fit of 100 makes it 400), and null when the instances were
fitted for different budgets; ``fit_budget_per_instance`` gives each instance's.

The learning curve shows the configured tag. An agent that logs other tags (rlberry agents log their
own) or a misspelt tag never fails the stage: the plot then shows the tags that were logged, and the
log says so.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rlpipe.core import plots, statistics
from rlpipe.core.evaluation import EVAL_CALL
from rlpipe.core.tasks import AggregateTask
from rlpipe.errors import RlpipeError
from rlpipe.io.arrow import int64_array, read_table
from rlpipe.io.atomic import save_figure, write_json, write_parquet
from rlpipe.io.paths import ExperimentPaths, InstancePaths
from rlpipe.io.provenance import software

SCORE = "score"  # per evaluation row: the discounted return of an episode, or the value of the agent's own eval
MAX_FALLBACK_TAGS = 8  # panels of the learning-curve plot when the configured tag was not logged
_LOGGER = logging.getLogger("rlpipe.core.aggregation")


def read_instance_tables(instances: Sequence[int], paths: Sequence[InstancePaths], kind: str) -> pd.DataFrame:
    """Concatenate one Parquet file per instance (``kind`` = "writer" or "evaluation") with an ``instance`` column."""
    tables = []
    for index, instance_paths in zip(instances, paths):  # joined as Arrow tables, converted to pandas once: fast for many
        table = read_table(getattr(instance_paths, kind))
        column = int64_array(np.full(table.num_rows, index))
        where = table.schema.get_field_index("instance")  # an evaluation table's own column keeps its place
        tables.append(table.set_column(where, "instance", column) if where >= 0 else table.append_column("instance", column))
    return pa.concat_tables(tables, promote_options="default").to_pandas()


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
    provenance = {"root_seed": task.root_seed, "task_hash": task.task_hash(), **software()}
    write_parquet(paths.writer_data, writer_data, metadata=provenance)
    write_parquet(paths.evaluation, evaluation, metadata=provenance)

    fit_records = [json.loads(p.fit_record.read_text()) for p in instance_paths]
    budgets = {str(i): record["fit_budget"] for i, record in zip(instances, fit_records)}
    scores = per_instance_scores(evaluation)
    rng = np.random.default_rng(task.statistics_seed)
    report = task.report
    summary = {
        "experiment": task.experiment,
        "agent": task.agent,
        "env": task.env,
        "fit_budget": _common(budgets.values()),  # what the instances were fitted for (several fit calls add up)
        "fit_budget_per_instance": budgets,
        "n_fit": len(instances),
        "metric": SCORE,
        **statistics.summarize(scores.to_numpy(), rng, n_resamples=report["bootstrap_samples"], confidence=report["confidence"]),
        "per_instance": {str(i): float(v) for i, v in scores.items()},
        "fit_wall_time_s": [record["wall_time_s"] for record in fit_records],  # per instance, every run of its fit
        "fit_cpu_time_s": [record.get("cpu_time_s") for record in fit_records],
        **provenance,
    }
    summary["learning_curve_tags"] = _plot_learning_curve(task, writer_data, paths, rng)
    write_json(paths.summary, summary)
    rows = "eval calls" if set(evaluation.get("unit", [])) == {EVAL_CALL} else "episodes"
    figure = plots.evaluation_figure(evaluation, title=f"{task.experiment}: evaluation ({task.env})", metric=SCORE,
                                     rows=rows)
    save_figure(figure, paths.evaluation_plot, dpi=120)
    return summary


def _plot_learning_curve(task: AggregateTask, writer_data: pd.DataFrame, paths: ExperimentPaths,
                         rng: np.random.Generator) -> list[str]:
    """Plot the configured tag, or every tag the instances logged when none logged it; return the tags plotted."""
    settings = task.learning_curve
    tag, xtag = settings["tag"], settings["xtag"]
    logged = list(dict.fromkeys(writer_data["tag"]))
    tags = [tag] if tag in logged else logged[:MAX_FALLBACK_TAGS]
    title = None
    if tag not in logged:
        shown = ", ".join(repr(t) for t in tags) or "none"
        _LOGGER.warning("experiment '%s': no instance logged the learning-curve tag %r; plotting the tags it logged "
                        "instead (%s). Set learning_curve.tag to one of them.", task.experiment, tag, shown)
        title = f"{task.experiment} on {task.env}: tag {tag!r} was not logged; logged tags"
    panels = [_curve_panel(task, writer_data, shown_tag, xtag, rng) for shown_tag in tags]
    xlabel = "global step" if xtag == "global_step" else "seconds"  # environment steps for the built-in agents only
    if not panels:
        panels = [plots.CurvePanel(f"{task.experiment} on {task.env}", tag, note="the agent logged no writer data")]
    figure = plots.learning_curves_figure(panels, xlabel, task.report["confidence"], title=title)
    save_figure(figure, paths.learning_curve_plot, dpi=120)
    return [panel.ylabel for panel in panels if panel.band is not None]


def _curve_panel(task: AggregateTask, writer_data: pd.DataFrame, tag: str, xtag: str,
                 rng: np.random.Generator) -> plots.CurvePanel:
    """The mean curve of ``tag`` with its band, or a panel saying why there is none (the stage goes on)."""
    title = f"{task.experiment} on {task.env}"
    try:
        curves = statistics.learning_curves(writer_data, tag, xtag=xtag, smoothing_window=task.learning_curve["smoothing_window"])
        band = statistics.curve_band(curves, rng, confidence=task.report["confidence"])
    except ValueError as error:
        _LOGGER.warning("experiment '%s': no learning curve of tag %r: %s", task.experiment, tag, error)
        return plots.CurvePanel(title, tag, note=f"{tag}: {error}")
    return plots.CurvePanel(title, tag, band, curves)


def _common(values: Any) -> Any:
    """The value all of ``values`` share, else None (they differ)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None
