"""Figures of the metrics across environments (``rlpipe.core.cross_env``), after rliable's: interval estimates of
the aggregate metrics, performance profiles, probability of improvement and sample-efficiency curves.

As in ``rlpipe.core.plots``: ``matplotlib.figure.Figure`` directly, never ``pyplot``; every function returns the
figure for ``rlpipe.io.atomic.save_figure`` (PNG or vector PDF); empty input gives a figure saying "no data". Each
algorithm has one colour, the same in every figure (the order of the tables).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rlpipe.core.plots import percent, require_columns

METRIC_TITLES = {"iqm": "IQM", "median": "Median", "mean": "Mean", "optimality_gap": "Optimality gap"}
SCORE_LABEL = "normalised score (0: random, 1: optimum)"


def algorithm_colors(algorithms: Sequence[str]) -> dict[str, Any]:
    """One colour per algorithm: matplotlib's default cycle for up to 10, then evenly spaced colours of a colormap."""
    if len(algorithms) <= 10:
        return {algorithm: f"C{k}" for k, algorithm in enumerate(algorithms)}
    from matplotlib import colormaps

    cmap = colormaps["tab20" if len(algorithms) <= 20 else "turbo"]
    positions = np.arange(len(algorithms)) if len(algorithms) <= 20 else np.linspace(0.05, 0.95, len(algorithms))
    return {algorithm: cmap(position) for algorithm, position in zip(algorithms, positions)}


def _no_data_figure(title: str, note: str = "no data") -> Figure:
    figure = Figure(figsize=(6.0, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(0.5, 0.5, note, ha="center", va="center", fontsize=12, color="0.4", wrap=True, transform=axes.transAxes)
    return figure


def _runs_and_envs(rows: pd.DataFrame) -> str:
    runs, envs = int(rows["n_runs"].iloc[0]), int(rows["n_tasks"].iloc[0])
    return f"{runs} run{'s' if runs != 1 else ''}, {envs} env{'s' if envs != 1 else ''}"


def _order(frame: pd.DataFrame, column: str, algorithms: Sequence[str] | None) -> list[str]:
    """The algorithms of the study in its order (so that each keeps its colour), else those of the table."""
    return list(algorithms) if algorithms is not None else list(pd.unique(frame[column]))


def _ci_note(frame: pd.DataFrame) -> str:
    """"95% stratified-bootstrap CIs (2000 resamples)", from the table's own columns."""
    return (f"{percent(frame['confidence'].iloc[0])} stratified-bootstrap percentile CIs "
            f"({int(frame['n_resamples'].iloc[0])} resamples)")


# ---------------------------------------------------------------------------------------------- aggregate metrics
def aggregate_metrics_figure(aggregates: pd.DataFrame, algorithms: Sequence[str] | None = None) -> Figure:
    """One panel per metric, one row per algorithm: its interval (bar) and point estimate (black tick), as rliable's
    ``plot_interval_estimates``. The optimality gap is lower-better; the other metrics higher-better."""
    title = "Aggregate metrics across environments"
    if aggregates.empty:
        return _no_data_figure(title)
    require_columns(aggregates, ("algorithm", "metric", "estimate", "ci_low", "ci_high", "confidence", "n_resamples"),
                    "aggregates")
    algorithms = _order(aggregates, "algorithm", algorithms)
    metrics = list(pd.unique(aggregates["metric"]))
    colors = algorithm_colors(algorithms)
    figure = Figure(figsize=(1.6 + 2.8 * len(metrics), 1.5 + 0.42 * len(algorithms)), layout="constrained")
    panels = figure.subplots(1, len(metrics), squeeze=False, sharey=True)[0]
    y = np.arange(len(algorithms), dtype=float)
    for axes, metric in zip(panels, metrics):
        rows = aggregates[aggregates["metric"] == metric].set_index("algorithm").reindex(algorithms)
        low, high = rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float)
        axes.barh(y, high - low, left=low, height=0.6, color=[colors[a] for a in algorithms], alpha=0.75)
        axes.vlines(rows["estimate"].to_numpy(dtype=float), y - 0.3, y + 0.3, color="black", linewidth=2.0)
        axes.set_title(METRIC_TITLES.get(metric, metric) + (" (lower is better)" if metric == "optimality_gap" else ""))
        axes.grid(True, axis="x", alpha=0.3)
        axes.margins(x=0.08)
    panels[0].set_yticks(y, algorithms)
    panels[0].set_ylim(len(algorithms) - 0.5, -0.5)  # first algorithm on top
    figure.supxlabel(f"{SCORE_LABEL}; bars: {_ci_note(aggregates)}; ticks: point estimates", fontsize="small")
    figure.suptitle(title)
    return figure


# ---------------------------------------------------------------------------------------------- performance profiles
def performance_profiles_figure(profiles: pd.DataFrame, algorithms: Sequence[str] | None = None) -> Figure:
    """Each algorithm's fraction of runs scoring above tau, against tau, with its band (rliable's score
    distributions, ``plot_performance_profiles``)."""
    title = "Performance profiles across environments"
    if profiles.empty:
        return _no_data_figure(title)
    require_columns(profiles, ("algorithm", "threshold", "fraction", "ci_low", "ci_high", "confidence", "n_resamples"),
                    "profiles")
    colors = algorithm_colors(_order(profiles, "algorithm", algorithms))
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.add_subplot()
    _bands(axes, profiles, "threshold", "fraction", colors)
    axes.set_xlabel(f"{SCORE_LABEL} τ")
    axes.set_ylabel("fraction of runs with score > τ")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", frameon=False, fontsize="small")
    axes.set_title(f"bands: {_ci_note(profiles)}", fontsize="small")
    figure.suptitle(title)
    return figure


# ---------------------------------------------------------------------------------------------- probability of improvement
def improvement_figure(improvement: pd.DataFrame, algorithms: Sequence[str] | None = None) -> Figure:
    """One row per pair of algorithms X, Y (X before Y in ``algorithms``, by default the order of the table): P(X > Y)
    and its interval, against the line P = 0.5 of no difference (rliable's ``plot_probability_of_improvement``)."""
    title = "Probability of improvement"
    if improvement.empty:
        return _no_data_figure(title, "no two algorithms share an environment")
    require_columns(improvement, ("algorithm_x", "algorithm_y", "probability", "ci_low", "ci_high", "n_tasks"),
                    "improvement")
    order = _order(improvement, "algorithm_x", algorithms)
    rank = {name: k for k, name in enumerate(order)}
    pairs = improvement[[rank.get(x, -1) < rank.get(y, -1) for x, y in zip(improvement["algorithm_x"],
                                                                          improvement["algorithm_y"])]]
    colors = algorithm_colors(order)
    y = np.arange(len(pairs), dtype=float)
    figure = Figure(figsize=(8.5, 1.6 + 0.42 * len(pairs)), layout="constrained")
    axes = figure.add_subplot()
    low, high = pairs["ci_low"].to_numpy(dtype=float), pairs["ci_high"].to_numpy(dtype=float)
    axes.barh(y, high - low, left=low, height=0.6, color=[colors[x] for x in pairs["algorithm_x"]], alpha=0.75)
    axes.vlines(pairs["probability"].to_numpy(dtype=float), y - 0.3, y + 0.3, color="black", linewidth=2.0)
    axes.axvline(0.5, color="0.4", linestyle="--", linewidth=1.0)
    labels = [f"P({x} > {y_}) on {n} env{'s' if n != 1 else ''}"
              for x, y_, n in zip(pairs["algorithm_x"], pairs["algorithm_y"], pairs["n_tasks"])]
    axes.set_yticks(y, labels)
    axes.set_ylim(len(pairs) - 0.5, -0.5)
    axes.set_xlim(-0.02, 1.02)
    axes.set_xlabel("probability of improvement")
    figure.supxlabel(f"bars: {_ci_note(improvement)}; ticks: point estimates", fontsize="small")
    axes.grid(True, axis="x", alpha=0.3)
    figure.suptitle(title)
    return figure


# ---------------------------------------------------------------------------------------------- sample efficiency
def sample_efficiency_figure(curves: pd.DataFrame, xlabel: str = "environment steps", note: str | None = None,
                             algorithms: Sequence[str] | None = None) -> Figure:
    """Each algorithm's metric (IQM by default) of the normalised score against x, with its band (rliable's
    ``plot_sample_efficiency_curve``)."""
    title = "Sample efficiency across environments"
    if curves.empty:
        return _no_data_figure(title, note or "no data")
    require_columns(curves, ("algorithm", "x", "metric", "estimate", "ci_low", "ci_high", "confidence", "n_resamples"),
                    "curves")
    colors = algorithm_colors(_order(curves, "algorithm", algorithms))
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.add_subplot()
    _bands(axes, curves, "x", "estimate", colors)
    metric = str(curves["metric"].iloc[0])
    axes.set_xlabel(xlabel)
    axes.set_ylabel(f"{METRIC_TITLES.get(metric, metric)} of the {SCORE_LABEL.split(' (')[0]}")
    axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", frameon=False, fontsize="small")
    axes.set_title(f"bands: {_ci_note(curves)}" + (f"\n{note}" if note else ""), fontsize="small")
    figure.suptitle(title)
    return figure


def _bands(axes: Any, table: pd.DataFrame, x: str, y: str, colors: dict[str, Any]) -> None:
    """Each algorithm's ``y`` against ``x`` with its interval band (a lone point gets a marker)."""
    for algorithm in pd.unique(table["algorithm"]):
        rows = table[table["algorithm"] == algorithm].sort_values(x)
        xs = rows[x].to_numpy(dtype=float)
        axes.fill_between(xs, rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float),
                          color=colors[algorithm], alpha=0.2, linewidth=0)
        axes.plot(xs, rows[y].to_numpy(dtype=float), color=colors[algorithm], linewidth=2.0,
                  marker="o" if len(xs) == 1 else None, label=f"{algorithm} ({_runs_and_envs(rows)})")
