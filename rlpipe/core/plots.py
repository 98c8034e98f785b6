"""Paper-ready figures of learning curves, evaluations and experiment comparisons.

Figures are built with ``matplotlib.figure.Figure`` directly, never ``pyplot``: no backend is
selected, no global figure registry is touched, so this is safe in headless jobs and threads.
Every function returns the figure; the caller saves it with ``rlpipe.io.atomic.save_figure``.
Empty input gives a figure that says "no data" instead of an exception, so one empty experiment
does not break a whole report.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

MEAN_COLOR = "C0"
INSTANCE_COLOR = "0.55"
IQM_COLOR = "C3"
JITTER_SEED = 0
MAX_COMPARISON_COLUMNS = 4


# --------------------------------------------------------------------------------------- helpers
def require_columns(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    """Fail with the available columns listed, so a mismatched input is diagnosed at once."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise KeyError(f"{name} lacks column(s) {missing}; available columns: {list(frame.columns)}")


def _no_data_figure(title: str) -> Figure:
    """A figure with a centred "no data" message: a visible, honest placeholder for empty input."""
    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=14, color="0.4",
              transform=axes.transAxes)
    return figure


def percent(confidence: float) -> str:
    """``0.95`` -> ``"95%"``, ``0.975`` -> ``"97.5%"`` (no rounding that would misstate the level)."""
    return f"{100.0 * float(confidence):.6g}%"


def _pretty(name: str) -> str:
    """Column names as axis labels: ``discounted_return`` -> ``discounted return``."""
    return str(name).replace("_", " ")


def _jitter(rng: np.random.Generator, size: int, width: float) -> np.ndarray:
    """Uniform offsets in ``[-width, width]`` that spread overlapping points for visibility."""
    return rng.uniform(-width, width, size=size)


# ------------------------------------------------------------------------------ learning curves
def _draw_instance_curves(axes: Axes, curves: pd.DataFrame) -> None:
    """Thin faint per-instance curves, one legend entry for all, so the spread behind the mean shows."""
    from matplotlib.collections import LineCollection

    require_columns(curves, ("instance", "x", "value"), "curves")
    lines = [np.column_stack([curve["x"].to_numpy(dtype=float), curve["value"].to_numpy(dtype=float)])
             for _, curve in curves.sort_values(["instance", "x"]).groupby("instance", sort=True)]
    axes.add_collection(LineCollection(lines, colors=INSTANCE_COLOR, linewidths=0.7, alpha=0.45, zorder=1,
                                       label="individual instances"))  # one artist: fast for thousands of instances
    axes.autoscale_view()


@dataclass(frozen=True)
class CurvePanel:
    """One learning-curve panel: the band of ``rlpipe.core.statistics.curve_band`` and (optionally) the instances'
    curves, or, when there is no curve to draw, ``note`` saying why."""

    title: str
    ylabel: str
    band: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    note: str | None = None


def learning_curves_figure(panels: Sequence[CurvePanel], xlabel: str, confidence: float = 0.95,
                           title: str | None = None) -> Figure:
    """One learning-curve panel per entry of ``panels`` (e.g. every tag an agent logged), in a grid."""
    n_columns = min(len(panels), MAX_COMPARISON_COLUMNS)
    n_rows = int(np.ceil(len(panels) / n_columns))
    figure = Figure(figsize=(6.4 * n_columns, 4.0 * n_rows + (0.4 if title else 0.0)), layout="constrained")
    grid = figure.subplots(n_rows, n_columns, squeeze=False)
    for axes, panel in zip(grid.ravel(), panels):
        _draw_learning_curve(axes, panel, xlabel, confidence)
    for axes in grid.ravel()[len(panels):]:
        axes.set_axis_off()
    if title:
        figure.suptitle(title)
    return figure


def _draw_learning_curve(axes: Axes, panel: CurvePanel, xlabel: str, confidence: float) -> None:
    axes.set_title(panel.title)
    if panel.band is None or panel.band.empty:
        axes.set_axis_off()
        axes.text(0.5, 0.5, panel.note or "no data", ha="center", va="center", fontsize=11, color="0.4", wrap=True,
                  transform=axes.transAxes)
        return
    require_columns(panel.band, ("x", "mean", "ci_low", "ci_high", "n_instances"), "band")
    band = panel.band.sort_values("x")
    if panel.curves is not None and not panel.curves.empty:
        _draw_instance_curves(axes, panel.curves)
    n_instances = int(band["n_instances"].max())
    label = f"mean over {n_instances} instance{'s' if n_instances != 1 else ''}, {percent(confidence)} bootstrap CI"
    x = band["x"].to_numpy(dtype=float)
    shade = axes.fill_between(x, band["ci_low"].to_numpy(dtype=float), band["ci_high"].to_numpy(dtype=float),
                              color=MEAN_COLOR, alpha=0.25, linewidth=0, zorder=2, label="_nolegend_")
    (line,) = axes.plot(x, band["mean"].to_numpy(dtype=float), color=MEAN_COLOR, linewidth=2.0, zorder=3,
                        label=label)
    handles, labels = axes.get_legend_handles_labels()
    handles = [(shade, line) if handle is line else handle for handle in handles]
    axes.legend(handles, labels, loc="best", frameon=False)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(panel.ylabel)
    axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
    axes.grid(True, alpha=0.3)


# ----------------------------------------------------------------------------------- evaluation
def box_stats(values: pd.Series, groups: pd.Series) -> pd.DataFrame:
    """Per-group quartiles, mean and Tukey whisker ends (furthest points within 1.5 IQR of the box).

    Computed with grouped pandas operations rather than ``Axes.boxplot``: that method reads every
    rcParam, which imports ``pyplot`` and resolves a GUI backend as a side effect.
    """
    grouped = values.groupby(groups, sort=True)
    stats = pd.DataFrame({"q1": grouped.quantile(0.25), "median": grouped.median(),
                          "q3": grouped.quantile(0.75), "mean": grouped.mean()})
    reach = 1.5 * (stats["q3"] - stats["q1"])
    low_fence = groups.map(stats["q1"] - reach).to_numpy(dtype=float)
    high_fence = groups.map(stats["q3"] + reach).to_numpy(dtype=float)
    stats["whisker_low"] = values.where(values.to_numpy() >= low_fence).groupby(groups, sort=True).min()
    stats["whisker_high"] = values.where(values.to_numpy() <= high_fence).groupby(groups, sort=True).max()
    return stats


def draw_boxes(axes: Axes, positions: np.ndarray, stats: pd.DataFrame, width: float = 0.6,
                legend: bool = False) -> None:
    """Hollow boxes (quartiles), black median bars, whiskers and a white triangle at the mean."""
    half = width / 2.0
    axes.bar(positions, stats["q3"] - stats["q1"], bottom=stats["q1"], width=width, fill=False,
             edgecolor="0.3", linewidth=1.0, zorder=2)
    axes.hlines(stats["median"], positions - half, positions + half, color="black", linewidth=1.4, zorder=4,
                label="median" if legend else "_nolegend_")
    axes.vlines(np.concatenate([positions, positions]),
                np.concatenate([stats["whisker_low"], stats["q3"]]),
                np.concatenate([stats["q1"], stats["whisker_high"]]), color="0.3", linewidth=1.0, zorder=2)
    axes.plot(positions, stats["mean"], linestyle="none", marker="^", markerfacecolor="white",
              markeredgecolor="black", zorder=5, label="mean" if legend else "_nolegend_")


MAX_INSTANCE_LABELS = 40  # x tick labels of the evaluation figure: beyond, every k-th instance is labelled


def evaluation_figure(evaluation: pd.DataFrame, title: str, metric: str = "score", rows: str = "episodes") -> Figure:
    """Per-instance distributions of an evaluation metric, plus the distribution of instance means.

    Boxes (quartiles, median, 1.5-IQR whiskers, mean as a triangle) and jittered points per
    instance show the within-instance variation (of ``rows``: episodes, or eval calls); the last column, "per-instance means",
    shows the between-instance variation that the experiment's CI is about. Jitter uses a fixed
    ``default_rng(0)`` so the figure is reproducible.
    """
    if evaluation.empty:
        return _no_data_figure(title)
    require_columns(evaluation, ("instance", metric), "evaluation")
    values = pd.to_numeric(evaluation[metric], errors="coerce").astype(float).reset_index(drop=True)
    instance = evaluation["instance"].reset_index(drop=True)
    episode_stats = box_stats(values, instance)
    means = episode_stats["mean"]
    n = len(episode_stats)
    position_of = pd.Series(np.arange(1, n + 1, dtype=float), index=episode_stats.index)
    means_position = n + 1.5

    figure = Figure(figsize=(min(3.0 + 0.45 * (n + 2), 16.0), 4.2), layout="constrained")
    axes = figure.add_subplot()
    draw_boxes(axes, position_of.to_numpy(), episode_stats, legend=True)
    draw_boxes(axes, np.array([means_position]), box_stats(means.reset_index(drop=True), pd.Series(np.zeros(n))))

    rng = np.random.default_rng(JITTER_SEED)
    episode_x = instance.map(position_of).to_numpy(dtype=float) + _jitter(rng, len(values), 0.18)
    axes.scatter(episode_x, values, s=10, color=MEAN_COLOR, alpha=0.5, linewidths=0, zorder=3, label=rows)
    axes.scatter(means_position + _jitter(rng, n, 0.18), means.to_numpy(), s=24, color=IQM_COLOR, alpha=0.8,
                 linewidths=0, zorder=3, label="per-instance mean")
    axes.axvline(n + 0.75, color="0.6", linestyle="--", linewidth=0.8)

    labelled = np.arange(0, n, max(1, -(-n // MAX_INSTANCE_LABELS)))  # every instance, or every k-th of many
    axes.set_xticks([*position_of.to_numpy()[labelled], means_position],
                    [*map(str, episode_stats.index[labelled]), "per-instance\nmeans"], rotation=90 if n > 12 else 0)
    axes.set_xlim(0.4, means_position + 0.6)
    axes.set_xlabel("instance")
    axes.set_ylabel(_pretty(metric))
    axes.set_title(title)
    axes.grid(True, axis="y", alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    order = [labels.index(label) for label in (rows, "per-instance mean", "median", "mean")]
    # beside the axes: over none of the boxes, and no search for a free spot among thousands of points
    figure.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside right upper", frameon=False,
                  fontsize="small")
    return figure


# ----------------------------------------------------------------------------------- comparison
def _comparison_layout(n_envs: int) -> tuple[int, int]:
    """Rows and columns of env panels: side by side, wrapping so many envs stay legible."""
    n_columns = min(n_envs, MAX_COMPARISON_COLUMNS)
    return int(np.ceil(n_envs / n_columns)), n_columns


def _ci_label(summary: pd.DataFrame) -> str:
    """Legend text for the error bars, naming the CI level when the summary records it."""
    if "confidence" in summary.columns and summary["confidence"].notna().any():
        return f"mean, {percent(summary['confidence'].dropna().iloc[0])} bootstrap CI"
    return "mean, bootstrap CI"


def _draw_env_panel(axes: Axes, env: str, rows: pd.DataFrame, per_instance: pd.DataFrame,
                    rng: np.random.Generator, ci_label: str) -> None:
    """One env: a row per experiment with per-instance scores, mean +- CI and the IQM."""
    experiments = rows["experiment"].astype(str).to_numpy()
    y = np.arange(len(experiments), dtype=float)
    row_of = dict(zip(experiments, y))
    scores = per_instance[per_instance["experiment"].astype(str).isin(row_of)]
    score_y = scores["experiment"].astype(str).map(row_of).to_numpy(dtype=float)
    axes.scatter(scores["score"].to_numpy(dtype=float), score_y - 0.22 + _jitter(rng, len(scores), 0.06),
                 s=14, color=INSTANCE_COLOR, alpha=0.7, linewidths=0, zorder=2, label="per-instance scores")

    mean = rows["mean"].to_numpy(dtype=float)
    errors = np.clip(np.vstack([mean - rows["ci_low"].to_numpy(dtype=float),
                                rows["ci_high"].to_numpy(dtype=float) - mean]), 0.0, None)
    axes.errorbar(mean, y, xerr=errors, fmt="o", color=MEAN_COLOR, markersize=6, capsize=4, linewidth=1.6,
                  zorder=3, label=ci_label)
    axes.plot(rows["iqm"].to_numpy(dtype=float), y, linestyle="none", marker="D", markersize=7,
              markerfacecolor="none", markeredgecolor=IQM_COLOR, markeredgewidth=1.6, zorder=4, label="IQM")

    axes.set_yticks(y, experiments)
    axes.set_ylim(len(experiments) - 0.5, -0.6)  # first experiment on top
    axes.set_title(f"env: {env}")
    axes.set_xlabel("score")
    axes.grid(True, axis="x", alpha=0.3)


def comparison_figure(summary: pd.DataFrame, per_instance: pd.DataFrame) -> Figure:
    """Experiments compared within each env: mean with CI, IQM and per-instance scores.

    Scores of different envs are on incomparable scales, so each env gets its own panel with its
    own x axis (nothing shared). Per-instance rows whose experiment is not in ``summary`` are not
    drawn, since their env is unknown.
    """
    title = "Comparison of experiments"
    if summary.empty:
        return _no_data_figure(title)
    require_columns(summary, ("experiment", "env", "mean", "ci_low", "ci_high", "iqm"), "summary")
    require_columns(per_instance, ("experiment", "instance", "score"), "per_instance")
    summary = summary.assign(env=summary["env"].astype(str))
    envs = list(pd.unique(summary["env"]))
    n_rows, n_columns = _comparison_layout(len(envs))
    max_experiments = int(summary.groupby("env", sort=False).size().max())
    figure = Figure(figsize=(4.2 * n_columns + 1.0, n_rows * (1.2 + 0.45 * max_experiments)), layout="constrained")
    panels = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for unused in panels[len(envs):]:
        unused.remove()

    rng = np.random.default_rng(JITTER_SEED)
    ci_label = _ci_label(summary)
    for axes, env in zip(panels, envs):
        _draw_env_panel(axes, env, summary[summary["env"] == env], per_instance, rng, ci_label)
    handles, labels = panels[0].get_legend_handles_labels()
    order = [labels.index(label) for label in (ci_label, "IQM", "per-instance scores")]
    figure.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center",
                  ncols=len(order), frameon=False)
    figure.suptitle(title)
    return figure


# ------------------------------------------------------------------------- hyperparameter studies
def optimization_history_figure(trials: pd.DataFrame, title: str) -> Figure:
    """Each trial's score by trial number (completed and pruned apart) and the best score so far."""
    require_columns(trials, ("number", "value", "state"), "trials")
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number")
    if complete.empty:
        return _no_data_figure(title)
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(complete["number"], complete["value"], s=18, color=MEAN_COLOR, zorder=3, label="completed trial")
    pruned = trials[(trials["state"] == "PRUNED") & trials["value"].notna()]
    if not pruned.empty:
        axes.scatter(pruned["number"], pruned["value"], s=18, marker="x", color=INSTANCE_COLOR, zorder=2,
                     label="pruned trial (last reported score)")
    axes.step(complete["number"], complete["value"].cummax(), where="post", color=IQM_COLOR, label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("score")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", frameon=False)
    return figure


def importance_figure(importances: dict[str, float], title: str) -> Figure:
    """Horizontal bars of each parameter's importance (normalized to sum to 1)."""
    if not importances:
        return _no_data_figure(title)
    names = list(importances)[::-1]  # most important at the top
    figure = Figure(figsize=(6.4, 1.2 + 0.4 * len(names)), layout="constrained")
    axes = figure.add_subplot()
    axes.barh(names, [importances[name] for name in names], color=MEAN_COLOR)
    axes.set_xlabel("importance for reaching the best scores (PED-ANOVA, sums to 1)")
    axes.set_xlim(0.0, 1.0)
    axes.set_title(title)
    axes.grid(True, axis="x", alpha=0.3)
    return figure
