"""Tools over several ExperimentManagers: evaluate and compare them, read and plot their writer data, fit them together.

These have the signatures of rlberry 0.7.3's ``evaluate_agents``, ``read_writer_data``,
``plot_writer_data``, ``plot_smoothed_curves``, ``plot_synchronized_curves`` and
``MultipleManagers`` (our extras are keyword-only, after rlberry's parameters), without rlberry's
known defects: rows are never duplicated, no argument is silently ignored, a single run gives a
collapsed band instead of NaN, "ci" divides by √n for n runs, and managers keep the order in which
they were given. The curve mathematics lives in :mod:`rlpipe.core.curves`; this module draws. Figures
are built with ``matplotlib.figure.Figure``; ``pyplot`` is imported only when the caller asks to
``show`` a figure (or names a pyplot figure with ``fignum``).
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlpipe.core import curves, plots, statistics
from rlpipe.core.aggregation import read_instance_tables
from rlpipe.io.atomic import save_figure
from rlpipe.io.paths import ExperimentPaths
from rlpipe.manager.experiment_manager import ExperimentManager, check_choice, run_jobs
from rlpipe.manager.storage import fitted_instances, is_manager_folder, read_manager_file

_LOGGER = logging.getLogger("rlpipe.manager.tools")

ERROR_REPRESENTATIONS = ("ci", "pi", "cb", "raw_curves")
WRITER_COLUMNS = ("name", "tag", "value", "dw_time_elapsed", "global_step", "instance", "n_simu")
DASH_PATTERNS = ((), (1, 1), (5, 5), (1, 5, 3, 5))  # rlberry's four styles; () is a solid line
FIGSIZE = (6.4, 4.0)

Source = ExperimentManager | str | os.PathLike | Iterable[Any]
PreprocessFunc = Callable[[np.ndarray], Any]


# ----------------------------------------------------------------------------------------- helpers
def _unique_names(names: Iterable[str]) -> list[str]:
    """Names made unique with " (2)", " (3)"... so two managers of one agent stay two columns/curves."""
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, k = name, 1
        while candidate in used:
            k += 1
            candidate = f"{name} ({k})"
        used.add(candidate)
        unique.append(candidate)
    return unique


def _new_axes(ax: Axes | None, show: bool, figsize: tuple[float, float], fignum: int | str | None = None) -> Axes:
    """The caller's axes, else new ones: from pyplot only when the figure is to be shown or named by ``fignum``."""
    if ax is not None:
        if fignum is not None:
            raise ValueError("give either ax or fignum, not both")
        return ax
    if show or fignum is not None:
        import matplotlib.pyplot as plt

        return plt.figure(fignum, figsize=figsize, layout="constrained").gca()
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _root_figure(ax: Axes) -> Figure:
    """The figure that can be saved, even when ``ax`` lives in a subfigure."""
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10 has no ``root``; SubFigure.figure is the root there
        return ax.figure.figure


def _finish(ax: Axes, savefig_fname: str | os.PathLike | None, show: bool) -> None:
    """Save (atomically) before showing: a shown pyplot figure may be closed, and saving it then writes a blank."""
    if savefig_fname is not None:
        save_figure(_root_figure(ax), savefig_fname)
    if show:
        import matplotlib.pyplot as plt

        plt.show()


# ------------------------------------------------------------------------------- evaluate_agents
def _evaluations(manager: ExperimentManager, n_simulations: int, choose_random_agents: bool) -> list[float]:
    """``n_simulations`` scores from random instances, or ``n_simulations`` from each instance in turn."""
    if choose_random_agents:
        return manager.eval_agents(n_simulations, verbose=False)
    return [score for i in range(manager.n_fit)
            for score in manager.eval_agents(n_simulations, agent_id=i, verbose=False)]


def _draw_evaluations(ax: Axes, scores: pd.DataFrame) -> None:
    """One box per manager (quartiles, median, mean, whiskers), in column order."""
    values = scores.to_numpy(dtype=float).ravel()  # row by row, so column j is every k-th value
    columns = np.tile(np.arange(scores.shape[1]), scores.shape[0])
    kept = ~np.isnan(values)  # the NaN padding of shorter columns
    stats = plots.box_stats(pd.Series(values[kept]), pd.Series(columns[kept]))
    plots.draw_boxes(ax, stats.index.to_numpy(dtype=float) + 1.0, stats, legend=True)
    ax.set_xticks(np.arange(1, scores.shape[1] + 1), list(scores.columns))
    ax.set_xlabel("agent")
    ax.set_ylabel("evaluation output")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="best", frameon=False)


def evaluate_agents(
    experiment_manager_list: Sequence[ExperimentManager],
    n_simulations: int = 5,
    choose_random_agents: bool = True,
    fignum: int | str | None = None,
    show: bool = True,
    plot: bool = True,
    *,
    ax: Axes | None = None,
) -> pd.DataFrame:
    """Evaluation scores of each manager, one column per manager in the order given.

    With ``choose_random_agents`` a column holds ``n_simulations`` scores of randomly drawn instances;
    otherwise every instance is evaluated ``n_simulations`` times, so managers with different
    ``n_fit`` give columns of different lengths, padded with NaN. Columns are named by
    ``agent_name``, duplicates suffixed " (2)", " (3)"... With ``plot`` a box plot is drawn into
    ``ax``, or into the pyplot figure ``fignum`` (as ``plt.figure(fignum)``), or a new figure.
    """
    managers = list(experiment_manager_list)
    if not managers:
        warnings.warn("evaluate_agents: no managers given, nothing to evaluate", stacklevel=2)
        return pd.DataFrame()
    names = _unique_names(manager.agent_name for manager in managers)
    scores = pd.DataFrame({name: pd.Series(_evaluations(manager, n_simulations, choose_random_agents), dtype=float)
                           for name, manager in zip(names, managers, strict=True)})
    if plot and scores.notna().any().any():
        axes = _new_axes(ax, show, (1.5 + 1.2 * len(names), 4.0), fignum)
        _draw_evaluations(axes, scores)
        _finish(axes, None, show)
    return scores


# ------------------------------------------------------------------------------ read_writer_data
@dataclass(frozen=True)
class _Experiment:
    """What reading an experiment's writer data takes: its name, its number of instances and its folder."""

    name: str
    n_fit: int
    paths: ExperimentPaths


def _manager_folders(path: Path) -> list[Path]:
    """``path`` itself if it is a manager (file or folder), else every manager folder below it, sorted.

    The walk stops at a manager folder (its instances are not managers) and skips hidden folders
    such as ``.snakemake``.
    """
    if path.is_file() or is_manager_folder(path):
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    children = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    return [folder for child in children for folder in _manager_folders(child)]


def _stored_experiment(path: Path) -> _Experiment:
    """The experiment of a manager or pipeline folder, read from its records alone: neither the agent class nor a
    pickled parameter is needed to read writer data."""
    record, folder = read_manager_file(path)
    parameters = record["parameters"]
    return _Experiment(parameters["agent_name"], parameters["n_fit"], ExperimentPaths(folder))


def _collect_experiments(source: Source) -> list[_Experiment]:
    """Experiments of ``source``: a manager, a path (manager, experiment or a folder of them), or a list of these."""
    if isinstance(source, ExperimentManager):
        return [_Experiment(source.agent_name, source.n_fit, source.paths)]
    if isinstance(source, (str, os.PathLike)):
        folders = _manager_folders(Path(source))
        if not folders:
            raise FileNotFoundError(f"no manager.json or pipeline experiment folder found in {source}")
        return [_stored_experiment(folder) for folder in folders]
    if isinstance(source, Iterable):
        return [experiment for item in source for experiment in _collect_experiments(item)]
    raise TypeError(f"data_source must be an ExperimentManager, a path or a list of them, got {type(source).__name__}")


def _writer_rows(experiment: _Experiment, name: str, id_agent: int | None) -> pd.DataFrame | None:
    """The writer rows of each fitted instance (or of instance ``id_agent`` only), named and numbered."""
    if id_agent is not None and id_agent not in range(experiment.n_fit):
        raise ValueError(f"id_agent={id_agent} is not an instance of '{name}', which has n_fit={experiment.n_fit}")
    instances = [i for i in fitted_instances(experiment.paths, experiment.n_fit) if id_agent in (None, i)]
    if not instances:
        return None
    data = read_instance_tables(instances, [experiment.paths.instance(i) for i in instances], "writer")
    return data.assign(name=name, n_simu=data["instance"])


def _tag_functions(tag: str | Sequence[str] | None,
                   preprocess_func: PreprocessFunc | Sequence[PreprocessFunc | None] | None,
                   ) -> dict[str | None, PreprocessFunc | None]:
    """rlberry's pairing of tags and functions: one tag (or None: every tag) and one function, or two matching lists.

    A single function given with a list of tags applies to each of them.
    """
    if tag is None or isinstance(tag, str):
        if preprocess_func is not None and not callable(preprocess_func):
            raise TypeError("preprocess_func must be a callable when tag is a single tag or None")
        return {tag: preprocess_func}
    tags = list(tag)
    if preprocess_func is None or callable(preprocess_func):
        return dict.fromkeys(tags, preprocess_func)
    funcs = list(preprocess_func)
    if len(funcs) != len(tags):
        raise ValueError(f"preprocess_func has {len(funcs)} entries for {len(tags)} tags; give one per tag")
    return dict(zip(tags, funcs, strict=True))


def _preprocess(data: pd.DataFrame, tag: str | None, func: PreprocessFunc) -> pd.DataFrame:
    """``func`` applied to the values (a numpy array, as in rlberry) of each run's ``tag`` (None: every tag).

    Values are passed in ``global_step`` order; rows without one keep their logging order after the
    others (the sort is stable). The rows keep their original order.
    """
    selected = data if tag is None else data[data["tag"] == tag]
    ordered = selected.sort_values("global_step", kind="stable", na_position="last")
    transformed = ordered.groupby(["name", "instance", "tag"], sort=False)["value"].transform(
        lambda run: func(run.to_numpy()))
    values = data["value"].astype(float)
    values.loc[transformed.index] = transformed
    return data.assign(value=values)


def read_writer_data(
    data_source: Source,
    tag: str | Sequence[str] | None = None,
    preprocess_func: PreprocessFunc | Sequence[PreprocessFunc | None] | None = None,
    id_agent: int | None = None,
) -> pd.DataFrame:
    """The writer data of every manager in ``data_source``, in one DataFrame.

    ``data_source`` is an ExperimentManager, a path to a ``manager.json``, its folder, a pipeline
    experiment folder, or a folder holding several of them (e.g. ``<output_dir>/manager_data`` or a
    pipeline's ``results``), or a list of any of these. ``tag`` (one or a list) keeps only those
    tags; ``preprocess_func`` transforms the values of each run's tag in ``global_step`` order (e.g.
    ``np.cumsum``): one callable, or with a list of tags a list of callables or None, one per tag.
    ``id_agent`` keeps only that instance. Columns: ``name`` (the manager's ``agent_name``, made
    unique if two managers share it), ``tag, value, dw_time_elapsed, global_step``, ``instance``
    (the instance index) and ``n_simu`` (a copy of it, rlberry's name).
    """
    functions = _tag_functions(tag, preprocess_func)
    experiments = _collect_experiments(data_source)
    names = _unique_names(experiment.name for experiment in experiments)
    frames = [frame for name, experiment in zip(names, experiments, strict=True)
              if (frame := _writer_rows(experiment, name, id_agent)) is not None]
    if not frames:
        return pd.DataFrame(columns=list(WRITER_COLUMNS))
    data = pd.concat(frames, ignore_index=True)[list(WRITER_COLUMNS)]
    if tag is not None:
        data = data[data["tag"].isin(list(functions))].reset_index(drop=True)
    for selected_tag, func in functions.items():
        if func is not None:
            data = _preprocess(data, selected_tag, func)
    return data


# ------------------------------------------------------------------------------- plotting curves
CurveBuilder = Callable[[pd.DataFrame], tuple[pd.DataFrame, np.ndarray, np.ndarray]]


def _check_plot_args(error_representation: str, level: float) -> None:
    """Fail before any work; rlberry's tests match the text "error_representation not implemented"."""
    if error_representation not in ERROR_REPRESENTATIONS:
        raise ValueError(f"error_representation not implemented: {error_representation!r}; "
                         f"use one of {ERROR_REPRESENTATIONS}")
    statistics.check_level(level, "level")


def _finite_rows(data: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows that can be placed on the axes; the others are dropped with a warning, not plotted as NaN."""
    plots.require_columns(data, ("name", "n_simu", x, y), "data")
    finite = (np.isfinite(pd.to_numeric(data[x], errors="coerce").to_numpy(dtype=float))
              & np.isfinite(pd.to_numeric(data[y], errors="coerce").to_numpy(dtype=float)))
    if not finite.all():
        warnings.warn(f"{int((~finite).sum())} rows with a missing or non-finite {x!r} or {y!r} are not plotted",
                      stacklevel=3)
    if not finite.any():
        raise ValueError(f"no row has a finite {x!r} and {y!r}: nothing to plot")
    return data[finite]


def _styles(n_curves: int, linestyles: bool) -> list[tuple[Any, Any]]:
    """(colour, line style) per curve: tab10 up to ten curves, else a rainbow; dash patterns with ``linestyles``."""
    colors = (colormaps["tab10"].colors[:n_curves] if n_curves <= 10
              else [colormaps["gist_rainbow"](k / n_curves) for k in range(n_curves)])
    dashes = islice(cycle(DASH_PATTERNS), n_curves) if linestyles else [()] * n_curves
    return [(color, (0, pattern) if pattern else "-") for color, pattern in zip(colors, dashes, strict=True)]


_LEGEND_TITLES = {"ci": "mean, {level} CI", "pi": "mean, {level} prediction interval",
                  "cb": "mean, {level} simultaneous band", "raw_curves": "mean and runs"}


def _draw_curve(ax: Axes, rows: pd.DataFrame, x: str, y: str, grid: np.ndarray, matrix: np.ndarray,
                style: tuple[Any, Any], error_representation: str, level: float, n_boot: int) -> None:
    """One manager: its mean curve (its legend entry) with its band, or with each run's raw curve."""
    color, linestyle = style
    mean = matrix.mean(axis=0)
    ax.plot(grid, mean, color=color, linestyle=linestyle, linewidth=2.0, label=str(rows["name"].iloc[0]))
    if error_representation == "raw_curves":
        for run_x, run_y in curves.runs_of(rows, x, y):
            ax.plot(run_x, run_y, color=color, linewidth=0.8, alpha=0.3, label="_nolegend_")
        return
    half = curves.band_half_width(matrix, error_representation, level, n_boot)
    ax.fill_between(grid, mean - half, mean + half, color=color, alpha=0.25, linewidth=0, label="_nolegend_")


def _plot_curves(data: pd.DataFrame, x: str, y: str, ax: Axes | None, error_representation: str, level: float,
                 n_boot: int, show: bool, savefig_fname: str | os.PathLike | None, linestyles: bool,
                 build: CurveBuilder) -> pd.DataFrame:
    """What both plotters share: per name, ``build`` gives (plotted rows, x grid, run × grid matrix); draw it.

    Names keep their order of appearance. Returns the plotted rows of every name.
    """
    _check_plot_args(error_representation, level)
    rows = _finite_rows(data, x, y)
    ax = _new_axes(ax, show, FIGSIZE)
    names = pd.unique(rows["name"])
    plotted = []
    for name, style in zip(names, _styles(len(names), linestyles), strict=True):
        kept, grid, matrix = build(rows[rows["name"] == name])
        _draw_curve(ax, kept, x, y, grid, matrix, style, error_representation, level, n_boot)
        plotted.append(kept)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)
    ax.legend(title=_LEGEND_TITLES[error_representation].format(level=plots.percent(level)),
              loc="best", frameon=False)
    _finish(ax, savefig_fname, show)
    return pd.concat(plotted, ignore_index=True)


def plot_smoothed_curves(
    data: pd.DataFrame,
    x: str,
    y: str,
    smoothing_bandwidth: float | Sequence[float] | None = None,
    ax: Axes | None = None,
    error_representation: str = "ci",
    n_boot: int = 2500,
    level: float = 0.9,
    show: bool = True,
    savefig_fname: str | os.PathLike | None = None,
    linestyles: bool = False,
) -> pd.DataFrame:
    """Mean of kernel-smoothed runs per ``name``, with a band or the raw runs; runs need not share x values.

    ``data`` has columns ``name``, ``n_simu`` (the run), ``x`` and ``y``. Each run is smoothed
    (Nadaraya–Watson, Gaussian kernel) onto ``curves.GRID_POINTS`` points spanning its name's x
    range. ``smoothing_bandwidth``: a number is used as the bandwidth; an array is searched, and None
    searches heuristic values, by leave-one-out cross-validation over all runs of the name.
    ``error_representation``: "ci" mean ± z·sd/√n (n runs), "pi" mean ± z·sd, "cb" simultaneous
    bootstrap band of the mean curve from ``n_boot`` seeded resamples, "raw_curves" the unsmoothed
    runs. Returns the plotted rows.
    """
    def smoothed(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        runs = curves.runs_of(rows, x, y)
        bandwidth = curves.resolve_bandwidth(runs, smoothing_bandwidth)
        _LOGGER.debug("%s: smoothing bandwidth %g", rows["name"].iloc[0], bandwidth)
        grid = np.linspace(rows[x].min(), rows[x].max(), curves.GRID_POINTS)
        return rows, grid, curves.smooth_runs(runs, grid, bandwidth)

    return _plot_curves(data, x, y, ax, error_representation, level, n_boot, show, savefig_fname, linestyles,
                        smoothed)


def plot_synchronized_curves(
    data: pd.DataFrame,
    x: str,
    y: str,
    ax: Axes | None = None,
    error_representation: str = "pi",
    level: float = 0.9,
    show: bool = True,
    savefig_fname: str | os.PathLike | None = None,
    linestyles: bool = False,
    *,
    n_boot: int = 2500,
) -> pd.DataFrame:
    """Mean over runs per ``name`` at the x values all its runs logged, with a band or the raw runs.

    ``data`` has columns ``name``, ``n_simu`` (the run), ``x`` and ``y``. x values missing from
    some run are dropped with a warning; if no x is shared a ValueError suggests
    :func:`plot_smoothed_curves`. ``error_representation`` as there ("cb" uses ``n_boot``
    resamples). Returns the plotted rows (those at shared x values).
    """
    return _plot_curves(data, x, y, ax, error_representation, level, n_boot, show, savefig_fname, linestyles,
                        lambda rows: curves.synchronize(rows, x, y))


# ------------------------------------------------------------------------------ plot_writer_data
def _with_x(data: pd.DataFrame, xtag: str) -> pd.DataFrame:
    """``xtag`` as the x column. When no row has one, each run's logging order (0, 1, 2...) replaces it;
    when only some rows lack it, those rows are dropped with a warning.
    """
    if xtag not in data.columns:
        raise ValueError(f"xtag must be a writer-data column {list(WRITER_COLUMNS)}, got {xtag!r}")
    x = statistics.x_values(data, xtag, by=["name", "n_simu"])
    missing = x.isna()
    if missing.any():
        warnings.warn(f"{int(missing.sum())} rows have no {xtag!r} and are not plotted", stacklevel=3)
    return data.assign(**{xtag: x})[~missing]


def plot_writer_data(
    data_source: Source,
    tag: str,
    xtag: str | None = None,
    smooth: bool = False,
    smoothing_bandwidth: float | Sequence[float] | None = None,
    id_agent: int | None = None,
    ax: Axes | None = None,
    error_representation: str = "ci",
    n_boot: int = 500,
    level: float = 0.9,
    sub_sample: bool = True,
    show: bool = True,
    preprocess_func: PreprocessFunc | None = None,
    title: str | None = None,
    savefig_fname: str | os.PathLike | None = None,
    linestyles: bool = False,
) -> pd.DataFrame | None:
    """Plot ``tag`` against ``xtag`` (default ``global_step``): one mean curve per manager with its spread.

    Reads ``data_source`` with :func:`read_writer_data` (``preprocess_func``, e.g. ``np.cumsum``, and
    ``id_agent`` as there). ``sub_sample`` keeps at most ``curves.SUB_SAMPLE_POINTS`` rows per run.
    With ``smooth`` the runs are kernel-smoothed (:func:`plot_smoothed_curves`, which also handles
    runs logged at different x such as ``dw_time_elapsed``), else averaged where they share x values
    (:func:`plot_synchronized_curves`). ``error_representation``: "ci", "pi", "cb" (``n_boot``
    resamples) or "raw_curves". ``title`` defaults to ``tag``; ``linestyles`` gives each manager a
    dash pattern; ``savefig_fname`` is written atomically. Returns the plotted rows (writer columns
    of :func:`read_writer_data`), or None with a warning when there is no data for ``tag``.
    """
    _check_plot_args(error_representation, level)
    if not isinstance(tag, str):
        raise TypeError(f"tag must be a single tag (str), got {type(tag).__name__}")
    data = read_writer_data(data_source, tag, preprocess_func, id_agent)
    if data.empty:
        message = f"No data to be plotted for tag {tag!r}"
        _LOGGER.warning(message)
        warnings.warn(message, stacklevel=2)
        return None
    xtag = xtag or "global_step"
    data = _with_x(data, xtag)
    if sub_sample:
        data = curves.sub_sample(data, xtag)
    ax = _new_axes(ax, show, FIGSIZE)
    if smooth:
        plotted = plot_smoothed_curves(data, xtag, "value", smoothing_bandwidth, ax, error_representation, n_boot,
                                       level, False, None, linestyles)
    else:
        plotted = plot_synchronized_curves(data, xtag, "value", ax, error_representation, level, False, None,
                                           linestyles, n_boot=n_boot)
    ax.set_ylabel("value" if preprocess_func is not None else tag)
    ax.set_title(title or tag)
    _finish(ax, savefig_fname, show)
    return plotted


# ------------------------------------------------------------------------------ MultipleManagers
def _fit(manager: ExperimentManager) -> None:
    manager.fit()


class MultipleManagers:
    """Fit several ExperimentManagers in parallel (over managers), keeping them in the order appended.

    ``parallelization`` is "process" (the default, as in rlberry) or "thread"; ``mp_context`` is
    the multiprocessing start method of the processes. In process mode each manager is sent to its
    worker with cloudpickle by value (so classes from ``__main__`` work); the fitted instances are
    written to the manager's ``output_dir``, where the parent's manager object reads them.
    """

    def __init__(self, max_workers: int | None = None, parallelization: str = "process",
                 mp_context: str = "spawn") -> None:
        check_choice("parallelization", parallelization, ("thread", "process"))
        check_choice("mp_context", mp_context, ("spawn", "fork", "forkserver"))
        self.max_workers, self.parallelization, self.mp_context = max_workers, parallelization, mp_context
        self._managers: list[ExperimentManager] = []

    @property
    def managers(self) -> list[ExperimentManager]:
        """The managers, in the order they were appended (a copy of the list)."""
        return list(self._managers)

    def append(self, manager: ExperimentManager) -> None:
        if not isinstance(manager, ExperimentManager):
            raise TypeError(f"MultipleManagers holds ExperimentManagers, got {type(manager).__name__}")
        self._managers.append(manager)

    def run(self, save: bool = True) -> None:
        """Fit every manager; ``ExperimentManager.fit`` already writes each ``manager.json``.

        ``save`` exists for rlberry code: a fitted manager is always saved by its ``fit``, so no
        second save is done and ``save=False`` cannot skip it.
        """
        if not self._managers:
            return
        run_jobs(_fit, self._managers, self.parallelization, self.max_workers, self.mp_context)
        for manager in self._managers:
            manager._agents.clear()  # a manager fitted in another process has stale agents: reload its checkpoints

    def save(self) -> list[Path]:
        """Write every manager's ``manager.json``; return their paths in the managers' order."""
        return [manager.save() for manager in self._managers]
