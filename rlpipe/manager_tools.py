"""Tools over several ExperimentManagers: evaluate and compare them, read and plot their writer data, fit them together.

These mirror rlberry's ``evaluate_agents``, ``read_writer_data``, ``plot_writer_data`` and
``MultipleManagers`` without rlberry's known defects: rows are never duplicated, no argument is
silently ignored, a single instance gives a collapsed band instead of NaN, and managers keep the
order in which they were given. Figures are built with ``matplotlib.figure.Figure``; ``pyplot`` is
imported only when the caller asks to ``show`` a figure.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlpipe import plots, statistics
from rlpipe.atomic import save_figure
from rlpipe.manager import MANAGER_FILE, ExperimentManager

_LOGGER = logging.getLogger("rlpipe.manager_tools")

ERROR_REPRESENTATIONS = ("ci", "pi", "raw_curves")
WRITER_COLUMNS = ("name", "tag", "value", "dw_time_elapsed", "global_step", "instance", "n_simu")
BAND_SEED = 0  # bootstrap CIs of plots are reproducible: the same data always gives the same figure

Source = ExperimentManager | str | os.PathLike | Iterable[Any]


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


def _new_axes(ax: Axes | None, show: bool, figsize: tuple[float, float]) -> Axes:
    """The caller's axes, else new ones: from pyplot only when the figure is to be shown."""
    if ax is not None:
        return ax
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained").add_subplot()
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _root_figure(ax: Axes) -> Figure:
    """The figure that can be saved, even when ``ax`` lives in a subfigure."""
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10 has no ``root``; SubFigure.figure is the root there
        return ax.figure.figure


def _show() -> None:
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
    managers: Sequence[ExperimentManager],
    n_simulations: int = 5,
    choose_random_agents: bool = True,
    plot: bool = True,
    show: bool = True,
    ax: Axes | None = None,
) -> pd.DataFrame:
    """Evaluation scores of each manager, one column per manager in the order given.

    With ``choose_random_agents`` a column holds ``n_simulations`` scores of randomly drawn instances;
    otherwise every instance is evaluated ``n_simulations`` times, so managers with different
    ``n_fit`` give columns of different lengths, padded with NaN. Columns are named by
    ``agent_name``, duplicates suffixed " (2)", " (3)"... With ``plot`` a box plot is drawn into
    ``ax`` (or a new figure, shown with pyplot when ``show``).
    """
    managers = list(managers)
    if not managers:
        warnings.warn("evaluate_agents: no managers given, nothing to evaluate", stacklevel=2)
        return pd.DataFrame()
    names = _unique_names(manager.agent_name for manager in managers)
    scores = pd.DataFrame({name: pd.Series(_evaluations(manager, n_simulations, choose_random_agents), dtype=float)
                           for name, manager in zip(names, managers)})
    if plot and scores.notna().any().any():
        _draw_evaluations(_new_axes(ax, show, (1.5 + 1.2 * len(names), 4.0)), scores)
        if show:
            _show()
    return scores


# ------------------------------------------------------------------------------ read_writer_data
def _is_manager_folder(folder: Path) -> bool:
    """True for a folder that ``ExperimentManager.load`` reads: a manager's, or a pipeline experiment's."""
    return (folder / MANAGER_FILE).is_file() or next(folder.glob("instances/*/fit.json"), None) is not None


def _manager_folders(path: Path) -> list[Path]:
    """``path`` itself if it is a manager (file or folder), else every manager folder below it, sorted.

    The walk stops at a manager folder (its instances are not managers) and skips hidden folders
    such as ``.snakemake``.
    """
    if path.is_file() or _is_manager_folder(path):
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    children = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    return [folder for child in children for folder in _manager_folders(child)]


def _collect_managers(source: Source) -> list[ExperimentManager]:
    """Managers of ``source``: a manager, a path (manager, experiment or a folder of them), or a list of these."""
    if isinstance(source, ExperimentManager):
        return [source]
    if isinstance(source, (str, os.PathLike)):
        folders = _manager_folders(Path(source))
        if not folders:
            raise FileNotFoundError(f"no manager.json or pipeline experiment folder found in {source}")
        return [ExperimentManager.load(folder) for folder in folders]
    if isinstance(source, Iterable):
        return [manager for item in source for manager in _collect_managers(item)]
    raise TypeError(f"source must be an ExperimentManager, a path or a list of them, got {type(source).__name__}")


def _tag_rows(data: pd.DataFrame, tag: str | Sequence[str] | None) -> pd.DataFrame:
    if tag is None:
        return data
    tags = [tag] if isinstance(tag, str) else list(tag)
    return data[data["tag"].isin(tags)]


def _preprocess(data: pd.DataFrame, func: Callable[[pd.Series], Any]) -> pd.DataFrame:
    """``func`` applied to the values of each (name, instance, tag), in ``global_step`` order.

    Rows without a ``global_step`` keep their logging order (the sort is stable; they come last).
    The result keeps the rows in their original order.
    """
    ordered = data.sort_values("global_step", kind="stable", na_position="last")
    grouped = ordered.groupby(["name", "instance", "tag"], sort=False, dropna=False)["value"]
    values = grouped.transform(lambda group: func(group))  # a lambda: pandas must not swap np.cumsum for its own
    return data.assign(value=values)


def read_writer_data(
    source: Source,
    tag: str | Sequence[str] | None = None,
    preprocess_func: Callable[[pd.Series], Any] | None = None,
) -> pd.DataFrame:
    """The writer data of every manager in ``source``, in one DataFrame.

    ``source`` is an ExperimentManager, a path to a ``manager.json``, its folder, a pipeline
    experiment folder, or a folder holding several of them (e.g. ``<output_dir>/manager_data`` or a
    pipeline's ``results``), or a list of any of these. ``name`` is the manager's ``agent_name``
    (made unique if two managers share it), ``instance`` the instance index and ``n_simu`` a copy
    of it for rlberry code. ``tag`` (one or several) keeps only those tags; ``preprocess_func``
    (e.g. ``np.cumsum``) transforms the values of each instance's tag, in ``global_step`` order.
    """
    managers = _collect_managers(source)
    names = _unique_names(manager.agent_name for manager in managers)
    frames = []
    for name, manager in zip(names, managers):
        frame = _tag_rows(manager.get_writer_data(), tag)
        if not frame.empty:
            frames.append(frame.assign(name=name, n_simu=frame["instance"]))
    if not frames:
        return pd.DataFrame(columns=list(WRITER_COLUMNS))
    data = pd.concat(frames, ignore_index=True)[list(WRITER_COLUMNS)]
    return data if preprocess_func is None else _preprocess(data, preprocess_func)


# ------------------------------------------------------------------------------ plot_writer_data
def _check_plot_args(error_representation: str, level: float) -> None:
    if error_representation not in ERROR_REPRESENTATIONS:
        raise ValueError(f"error_representation must be one of {ERROR_REPRESENTATIONS}, got {error_representation!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")


def _default_window(data: pd.DataFrame) -> int:
    """10% of the typical number of points of one instance's curve, at least 1."""
    points = data.groupby(["name", "instance"], sort=False).size()
    return max(1, int(0.1 * float(points.median())))


def _prediction_band(curves: pd.DataFrame, level: float) -> pd.DataFrame:
    """Mean ± z·sd over instances at every x; one instance has no spread, so its band collapses."""
    grouped = curves.groupby("x", sort=True)["value"]
    mean, sd = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    z = NormalDist().inv_cdf(0.5 + float(level) / 2.0)
    return pd.DataFrame({"x": mean.index.to_numpy(), "mean": mean.to_numpy(),
                         "ci_low": (mean - z * sd).to_numpy(), "ci_high": (mean + z * sd).to_numpy()})


def _draw_manager(ax: Axes, curves: pd.DataFrame, name: str, color: str, error_representation: str,
                  level: float) -> None:
    """The mean curve of one manager (its legend entry) with its band or its instances' curves."""
    if error_representation == "raw_curves":
        for _, curve in curves.groupby("instance", sort=True):
            ax.plot(curve["x"].to_numpy(), curve["value"].to_numpy(), color=color, linewidth=0.7, alpha=0.4,
                    label="_nolegend_")
        band = curves.groupby("x", sort=True, as_index=False)["value"].mean().rename(columns={"value": "mean"})
    else:
        band = (statistics.curve_band(curves, np.random.default_rng(BAND_SEED), confidence=level)
                if error_representation == "ci" else _prediction_band(curves, level))
        ax.fill_between(band["x"].to_numpy(), band["ci_low"].to_numpy(), band["ci_high"].to_numpy(), color=color,
                        alpha=0.25, linewidth=0, label="_nolegend_")
    ax.plot(band["x"].to_numpy(), band["mean"].to_numpy(), color=color, linewidth=2.0, label=name)


def _legend_title(error_representation: str, level: float) -> str:
    percent = f"{100.0 * float(level):.6g}%"
    return {"ci": f"mean, {percent} bootstrap CI", "pi": f"mean, {percent} prediction interval",
            "raw_curves": "mean and instances"}[error_representation]


def plot_writer_data(
    source: Source,
    tag: str,
    xtag: str | None = None,
    smooth: bool = False,
    error_representation: str = "ci",
    level: float = 0.95,
    preprocess_func: Callable[[pd.Series], Any] | None = None,
    savefig_fname: str | os.PathLike | None = None,
    show: bool = True,
    n_points: int = 200,
    smoothing_window: int | None = None,
    ax: Axes | None = None,
) -> pd.DataFrame | None:
    """Plot ``tag`` against ``xtag`` (default ``global_step``): one mean curve per manager with its spread.

    Instances log at different x, so each manager's instances are interpolated onto a common grid of
    ``n_points`` (see :func:`rlpipe.statistics.learning_curves`); with ``smooth`` each instance is
    first smoothed by a trailing mean of ``smoothing_window`` points (default 10% of its points).
    ``error_representation`` is "ci" (bootstrap CI of the mean, seeded so figures are reproducible),
    "pi" (mean ± z·sd over instances, a prediction interval at ``level``) or "raw_curves" (every
    instance). Returns the plotted per-instance curves (``name, tag, instance, n_simu, <xtag>,
    value``), or None with a warning when there is no data for ``tag``.
    """
    _check_plot_args(error_representation, level)
    if smoothing_window is not None and not smooth:
        warnings.warn("smoothing_window is only used with smooth=True; the curves are not smoothed", stacklevel=2)
    xtag = xtag or "global_step"
    data = read_writer_data(source, tag, preprocess_func)
    if data.empty:
        message = f"No data to be plotted for tag {tag!r}"
        _LOGGER.warning(message)
        warnings.warn(message, stacklevel=2)
        return None
    window = (smoothing_window or _default_window(data)) if smooth else 1

    ax = _new_axes(ax, show, (6.4, 4.0))
    plotted = []
    for k, (name, rows) in enumerate(data.groupby("name", sort=False)):
        curves = statistics.learning_curves(rows, tag, xtag=xtag, n_points=n_points, smoothing_window=window)
        _draw_manager(ax, curves, str(name), f"C{k % 10}", error_representation, level)
        plotted.append(curves.assign(name=name, tag=tag, n_simu=curves["instance"]))
    ax.set_title(tag)
    ax.set_xlabel(xtag)
    ax.set_ylabel("value" if preprocess_func is not None else tag)
    ax.grid(True, alpha=0.3)
    ax.legend(title=_legend_title(error_representation, level), loc="best", frameon=False)

    if savefig_fname is not None:
        save_figure(_root_figure(ax), savefig_fname)
    if show:
        _show()
    result = pd.concat(plotted, ignore_index=True).rename(columns={"x": xtag})
    return result[["name", "tag", "instance", "n_simu", xtag, "value"]]


# ------------------------------------------------------------------------------ MultipleManagers
def _fit(manager: ExperimentManager) -> None:
    manager.fit()


def _fit_pickled(payload: bytes) -> None:
    """Fit a manager shipped by value; everything it produces is written to its output folder."""
    import cloudpickle

    cloudpickle.loads(payload).fit()


class MultipleManagers:
    """Fit several ExperimentManagers in parallel (over managers), keeping them in the order appended.

    ``parallelization`` is "process" (the default, as in rlberry) or "thread"; ``mp_context`` is
    the multiprocessing start method of the processes. In process mode each manager is sent to its
    worker with cloudpickle by value (so classes from ``__main__`` work); the fitted instances are
    written to the manager's ``output_dir``, where the parent's manager object reads them.
    """

    def __init__(self, max_workers: int | None = None, parallelization: str = "process",
                 mp_context: str = "spawn") -> None:
        if parallelization not in ("thread", "process"):
            raise ValueError(f"parallelization must be 'thread' or 'process', got {parallelization!r}")
        if mp_context not in ("spawn", "fork", "forkserver"):
            raise ValueError(f"mp_context must be 'spawn', 'fork' or 'forkserver', got {mp_context!r}")
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
        if len(self._managers) <= 1 or self.parallelization == "thread":
            with ThreadPoolExecutor(self.max_workers) as pool:
                list(pool.map(_fit, self._managers))  # list() re-raises the first failure
            return
        self._run_in_processes()

    def save(self) -> list[Path]:
        """Write every manager's ``manager.json``; return their paths in the managers' order."""
        return [manager.save() for manager in self._managers]

    def _run_in_processes(self) -> None:
        import cloudpickle

        payloads = [cloudpickle.dumps(manager) for manager in self._managers]
        context = multiprocessing.get_context(self.mp_context)
        try:
            with ProcessPoolExecutor(self.max_workers, mp_context=context) as pool:
                list(pool.map(_fit_pickled, payloads))
        except BrokenProcessPool as error:
            raise RuntimeError(
                f"a worker process died before finishing. With mp_context='{self.mp_context}', a script must run "
                "its experiments under `if __name__ == '__main__':`; in a notebook use mp_context='fork' or "
                "parallelization='thread'"
            ) from error
        for manager in self._managers:
            manager._agents.clear()  # agents cached before the fit are stale: reload them from the new checkpoints
