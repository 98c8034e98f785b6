"""Aggregate metrics across environments (tasks), as Agarwal et al. (2021, "Deep RL at the Edge of the Statistical
Precipice") recommend and their rliable library computes them, written in numpy so that the bootstrap is seeded.

Scores come as ``{algorithm: {task: scores of its runs}}``: one normalised score per run (a fitted instance), see
:func:`normalize`. Run counts may differ between tasks and between algorithms. Every task weighs the same: each run
of task ``t`` weighs ``1 / (T · n_t)`` for ``T`` tasks. With equal run counts this is rliable's pooling of all runs;
with unequal ones a task with more runs does not count more.

Intervals come from the **stratified bootstrap** (rliable's ``StratifiedBootstrap`` without ``task_bootstrap``): a
resample draws, within each task independently, ``n_t`` runs with replacement from that task's ``n_t`` runs. The runs
are the random unit; the set of tasks is fixed. Intervals are percentile intervals, rliable's default method.
Every function draws from the ``np.random.Generator`` it is given, algorithms in the order given and tasks in sorted
order, one index matrix per task (no Python loop over resamples): the same generator state gives the same intervals.

Pure: numpy and pandas, no I/O.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Union

import numpy as np
import pandas as pd

from rlpipe.core.statistics import check_bootstrap_args, resample_counts

ArrayLike = Union[Sequence[float], np.ndarray]
Scores = Mapping[str, Mapping[str, ArrayLike]]  # algorithm -> task -> per-run scores
Kernel = Callable[[list[np.ndarray]], np.ndarray]

METRICS = ("iqm", "median", "mean", "optimality_gap")
OPTIMALITY_THRESHOLD = 1.0  # gamma of the optimality gap: the score of the reference optimum
PROFILE_POINTS = 101  # thresholds of a performance profile when none are given
CURVE_POINTS = 100  # x values of a sample-efficiency curve
_CHUNK_ELEMENTS = 4_000_000  # resampled values held at once by a sample-efficiency bootstrap (32 MB of floats)

AGGREGATE_COLUMNS = ["algorithm", "metric", "estimate", "ci_low", "ci_high", "n_tasks", "n_runs", "confidence",
                     "n_resamples"]
PROFILE_COLUMNS = ["algorithm", "threshold", "fraction", "ci_low", "ci_high", "n_tasks", "n_runs", "confidence",
                   "n_resamples"]
IMPROVEMENT_COLUMNS = ["algorithm_x", "algorithm_y", "probability", "ci_low", "ci_high", "n_tasks", "n_runs_x",
                       "n_runs_y", "confidence", "n_resamples"]
CURVE_COLUMNS = ["algorithm", "x", "metric", "estimate", "ci_low", "ci_high", "n_tasks", "n_runs", "confidence",
                 "n_resamples"]


# ---------------------------------------------------------------------------------------------- normalisation
def normalize(raw: ArrayLike | float, low: float, high: float) -> np.ndarray:
    """``(raw - low) / (high - low)``: 0 at ``low`` (the env's random-policy score), 1 at ``high`` (its optimum or
    best known score), so that scores of different environments share one scale and can be aggregated."""
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"reference scores must be finite numbers, got low={low} and high={high}")
    if high == low:
        raise ValueError(f"cannot normalise with low == high ({low:g}): every score would be divided by zero")
    return (np.asarray(raw, dtype=float) - low) / (high - low)


# ---------------------------------------------------------------------------------------------- checks
def _checked_runs(scores: Mapping[str, ArrayLike], algorithm: str) -> dict[str, np.ndarray]:
    """One algorithm's scores as ``{task: 1-D float array}``, tasks sorted (the order of the bootstrap's draws).

    A NaN or an infinity would silently spread to every metric and interval, hiding a diverged run or a broken
    evaluation, so it is an error, named by algorithm and task.
    """
    if not scores:
        raise ValueError(f"algorithm {algorithm!r} has no tasks")
    runs = {}
    for task in sorted(scores):
        values = np.asarray(scores[task], dtype=float)
        where = f"algorithm {algorithm!r} on task {task!r}"
        if values.ndim != 1:
            raise ValueError(f"{where}: expected a 1-D array of per-run scores, got shape {values.shape}")
        if values.size == 0:
            raise ValueError(f"{where}: no runs")
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ValueError(f"{where}: {bad} of {values.size} scores are NaN or infinite")
        runs[task] = values
    return runs


def _checked_scores(scores: Scores) -> dict[str, dict[str, np.ndarray]]:
    if not scores:
        raise ValueError("no algorithms: the scores are empty")
    return {algorithm: _checked_runs(tasks, algorithm) for algorithm, tasks in scores.items()}


def _checked_metric(metric: str) -> Kernel:
    if metric not in _KERNELS:
        raise ValueError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
    return _KERNELS[metric]


# ---------------------------------------------------------------------------------------------- metrics
# A kernel takes one algorithm's runs as a list of (R, n_t, ...) arrays, one per task (R resamples; trailing axes,
# such as the x grid of a curve, ride along), and returns the metric of each resample, shape (R, ...).
def _task_means(matrices: list[np.ndarray]) -> np.ndarray:
    """Mean over runs of each task, stacked on axis 1: ``(R, T, ...)``."""
    return np.stack([matrix.mean(axis=1) for matrix in matrices], axis=1)


def _mean_kernel(matrices: list[np.ndarray]) -> np.ndarray:
    return _task_means(matrices).mean(axis=1)


def _median_kernel(matrices: list[np.ndarray]) -> np.ndarray:
    return np.median(_task_means(matrices), axis=1)


def _optimality_gap_kernel(matrices: list[np.ndarray]) -> np.ndarray:
    return OPTIMALITY_THRESHOLD - _mean_kernel([np.minimum(matrix, OPTIMALITY_THRESHOLD) for matrix in matrices])


def _iqm_kernel(matrices: list[np.ndarray]) -> np.ndarray:
    """Weighted IQM of all runs: each sorted value covers an interval of [0, 1] as long as its weight, and the IQM
    averages the values over the middle half, [1/4, 3/4], a boundary value counting for the part it covers.

    With equal weights this is ``statistics.interquartile_mean`` (value ``i`` of ``n`` covers [(i-1)/n, i/n]), and
    rliable's ``trim_mean(scores, 0.25)`` when ``n`` is a multiple of 4.
    """
    values = np.concatenate(matrices, axis=1)
    weights = np.concatenate([np.full(matrix.shape[1], 1.0 / (len(matrices) * matrix.shape[1])) for matrix in matrices])
    weights = np.broadcast_to(weights.reshape((1, -1) + (1,) * (values.ndim - 2)), values.shape)
    order = np.argsort(values, axis=1, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=1)
    sorted_weights = np.take_along_axis(weights, order, axis=1)
    upper = np.cumsum(sorted_weights, axis=1)
    lower = upper - sorted_weights
    total = upper[:, -1:]  # 1, up to rounding
    covered = np.clip(np.minimum(upper, 0.75 * total) - np.maximum(lower, 0.25 * total), 0.0, None)
    return (covered * sorted_values).sum(axis=1) / (0.5 * total[:, 0])


_KERNELS: dict[str, Kernel] = {"iqm": _iqm_kernel, "median": _median_kernel, "mean": _mean_kernel,
                               "optimality_gap": _optimality_gap_kernel}


def _point(kernel: Kernel, runs: Mapping[str, np.ndarray]) -> np.ndarray:
    """A kernel on the runs as observed (one "resample": the data itself)."""
    return kernel([values[None, ...] for values in runs.values()])[0]


def iqm(scores: Mapping[str, ArrayLike]) -> float:
    """Interquartile mean of one algorithm's runs, ``{task: scores}``, tasks weighted equally: robust to a few
    outlying runs (unlike the mean) and using half of them (unlike the median)."""
    return float(_point(_iqm_kernel, _checked_runs(scores, "scores")))


def median(scores: Mapping[str, ArrayLike]) -> float:
    """Median over tasks of each task's mean score (rliable's ``aggregate_median``)."""
    return float(_point(_median_kernel, _checked_runs(scores, "scores")))


def mean(scores: Mapping[str, ArrayLike]) -> float:
    """Mean over tasks of each task's mean score (rliable's ``aggregate_mean``)."""
    return float(_point(_mean_kernel, _checked_runs(scores, "scores")))


def optimality_gap(scores: Mapping[str, ArrayLike]) -> float:
    """How far the runs fall short of the optimum: ``1 - weighted mean of min(score, 1)`` (rliable's, gamma = 1).
    Scores above the optimum earn nothing, so one run far above it cannot hide others below."""
    return float(_point(_optimality_gap_kernel, _checked_runs(scores, "scores")))


# ---------------------------------------------------------------------------------------------- the bootstrap
def _resample_indices(rng: np.random.Generator, n_resamples: int, runs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """One ``(n_resamples, n_t)`` matrix of run indices per task, each drawn within its own task."""
    return [rng.integers(0, values.shape[0], size=(n_resamples, values.shape[0])) for values in runs.values()]


def stratified_resamples(scores: Mapping[str, ArrayLike], rng: np.random.Generator,
                         n_resamples: int) -> dict[str, np.ndarray]:
    """One algorithm's runs resampled: per task (sorted), an ``(n_resamples, n_t)`` matrix whose row ``r`` holds the
    task's runs in resample ``r``, drawn with replacement from that task's runs only."""
    runs = _checked_runs(scores, "scores")
    indices = _resample_indices(rng, int(n_resamples), runs)
    return {task: values[index] for (task, values), index in zip(runs.items(), indices)}


def _interval(resampled: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0 (the resamples)."""
    alpha = 1.0 - float(confidence)
    low, high = np.quantile(resampled, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return low, high


def aggregate_metrics(scores: Scores, rng: np.random.Generator, metrics: Sequence[str] = METRICS,
                      n_resamples: int = 2000, confidence: float = 0.95) -> pd.DataFrame:
    """Point estimates of ``metrics`` (``iqm``, ``median``, ``mean``, ``optimality_gap``) of each algorithm, with
    stratified-bootstrap percentile intervals; the metrics of an algorithm share its resamples.

    Returns one row per (algorithm, metric), algorithms in the order given: :data:`AGGREGATE_COLUMNS`.
    """
    check_bootstrap_args(n_resamples, confidence)
    kernels = {metric: _checked_metric(metric) for metric in metrics}
    rows = []
    for algorithm, runs in _checked_scores(scores).items():
        resampled = [values[index] for values, index in zip(runs.values(), _resample_indices(rng, int(n_resamples), runs))]
        for metric, kernel in kernels.items():
            low, high = _interval(kernel(resampled), confidence)
            rows.append([algorithm, metric, float(_point(kernel, runs)), float(low), float(high), len(runs),
                         _n_runs(runs), float(confidence), int(n_resamples)])
    return pd.DataFrame(rows, columns=AGGREGATE_COLUMNS)


def _n_runs(runs: Mapping[str, np.ndarray]) -> int:
    return int(sum(values.shape[0] for values in runs.values()))


# ---------------------------------------------------------------------------------------------- performance profiles
def profile_thresholds(scores: Scores, n_points: int = PROFILE_POINTS) -> np.ndarray:
    """``n_points`` thresholds from ``min(0, lowest score)`` to ``max(1, highest score)``: every score, where the
    profiles fall to 0, and always the range from random (0) to optimum (1), so that studies share an axis."""
    values = np.concatenate([values for runs in _checked_scores(scores).values() for values in runs.values()])
    return np.linspace(min(0.0, float(values.min())), max(1.0, float(values.max())), int(n_points))


def performance_profiles(scores: Scores, rng: np.random.Generator, thresholds: ArrayLike | None = None,
                         n_resamples: int = 2000, confidence: float = 0.95) -> pd.DataFrame:
    """Score distributions (rliable's run-score performance profiles): for each threshold tau, the fraction of runs
    with a score strictly above tau (rliable's ``>``), tasks weighted equally, with a stratified-bootstrap percentile
    band.

    ``thresholds`` are sorted and deduplicated; by default :func:`profile_thresholds` of the scores. A resample is a
    count of draws of each run, so its profile is one matrix product with the runs' indicators (no (R, n, K) array).
    Returns one row per (algorithm, threshold): :data:`PROFILE_COLUMNS`.
    """
    check_bootstrap_args(n_resamples, confidence)
    checked = _checked_scores(scores)
    taus = profile_thresholds(checked) if thresholds is None else _checked_thresholds(thresholds)
    frames = []
    for algorithm, runs in checked.items():
        above = [(values[:, None] > taus).astype(float) for values in runs.values()]  # (n_t, K) per task
        fraction = np.mean([indicator.mean(axis=0) for indicator in above], axis=0)
        resampled = np.mean([resample_counts(rng, int(n_resamples), indicator.shape[0]) @ indicator / indicator.shape[0]
                             for indicator in above], axis=0)
        low, high = _interval(resampled, confidence)
        frames.append(pd.DataFrame({"algorithm": algorithm, "threshold": taus, "fraction": fraction, "ci_low": low,
                                    "ci_high": high, "n_tasks": len(runs), "n_runs": _n_runs(runs),
                                    "confidence": float(confidence), "n_resamples": int(n_resamples)}))
    return pd.concat(frames, ignore_index=True)[PROFILE_COLUMNS]


def _checked_thresholds(thresholds: ArrayLike) -> np.ndarray:
    taus = np.unique(np.asarray(thresholds, dtype=float).ravel())
    if taus.size == 0 or not np.isfinite(taus).all():
        raise ValueError(f"thresholds must be one or more finite numbers, got {thresholds!r}")
    return taus


# ---------------------------------------------------------------------------------------------- probability of improvement
def _win_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[i, j]``: 1 if run i of X beats run j of Y, 1/2 on a tie, 0 otherwise."""
    return (np.sign(x[:, None] - y[None, :]) + 1.0) / 2.0


def _task_improvement(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_resamples: int) -> tuple[float, np.ndarray]:
    """P(X > Y) + P(X = Y)/2 on one task (the Mann-Whitney U statistic over n_x · n_y), and its value in each
    resample of X's runs and, independently, Y's. A resample is a count of draws of each run, so its statistic is a
    quadratic form of the fixed win matrix: no (R, n_x, n_y) array is built."""
    wins = _win_matrix(x, y)
    counts_x = resample_counts(rng, n_resamples, x.size)
    counts_y = resample_counts(rng, n_resamples, y.size)
    resampled = ((counts_x @ wins) * counts_y).sum(axis=1) / (x.size * y.size)
    return float(wins.mean()), resampled


def probability_of_improvement(scores: Scores, rng: np.random.Generator, n_resamples: int = 2000,
                               confidence: float = 0.95) -> pd.DataFrame:
    """P(X > Y) for every ordered pair of algorithms (X, Y), X != Y, that share a task: on each task, the probability
    that a run of X scores above a run of Y, ties counting one half (the normalised Mann-Whitney U statistic), averaged
    over the tasks both have (rliable's, which requires the same tasks), with a stratified-bootstrap percentile
    interval (X's and Y's runs resampled independently within each task).

    Each unordered pair is computed once, in the order given; its reverse is ``1 - P`` with the interval reflected,
    from the same resamples (P(X > Y) + P(Y > X) = 1, ties included). Pairs without a common task have no row.
    Returns :data:`IMPROVEMENT_COLUMNS`, rows ordered by (X, Y) in the order of the algorithms.
    """
    check_bootstrap_args(n_resamples, confidence)
    checked = _checked_scores(scores)
    names = list(checked)
    rows = []
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            common = sorted(set(checked[x]) & set(checked[y]))
            if not common:
                continue
            per_task = [_task_improvement(checked[x][task], checked[y][task], rng, int(n_resamples)) for task in common]
            estimate = float(np.mean([point for point, _ in per_task]))
            low, high = _interval(np.mean([resampled for _, resampled in per_task], axis=0), confidence)
            runs_x, runs_y = (sum(checked[name][task].size for task in common) for name in (x, y))
            settings = [float(confidence), int(n_resamples)]
            rows.append([x, y, estimate, float(low), float(high), len(common), runs_x, runs_y, *settings])
            rows.append([y, x, 1.0 - estimate, 1.0 - float(high), 1.0 - float(low), len(common), runs_y, runs_x,
                         *settings])
    order = {name: k for k, name in enumerate(names)}
    rows.sort(key=lambda row: (order[row[0]], order[row[1]]))
    return pd.DataFrame(rows, columns=IMPROVEMENT_COLUMNS)


# ---------------------------------------------------------------------------------------------- sample efficiency
def _run_curves(algorithm: str, task: str, curves: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each run's (x, value), sorted by x, values sharing an x averaged (interpolation needs increasing x)."""
    missing = [column for column in ("instance", "x", "value") if column not in curves.columns]
    where = f"algorithm {algorithm!r} on task {task!r}"
    if missing:
        raise ValueError(f"{where}: the curves lack column(s) {missing}; available: {list(curves.columns)}")
    if curves.empty:
        raise ValueError(f"{where}: no curve points")
    points = curves[["instance", "x", "value"]].astype({"x": float, "value": float})
    bad = int((~np.isfinite(points[["x", "value"]].to_numpy())).any(axis=1).sum())
    if bad:
        raise ValueError(f"{where}: {bad} curve point(s) have a NaN or infinite x or value")
    means = points.groupby(["instance", "x"], sort=True)["value"].mean().reset_index()
    return [(run["x"].to_numpy(), run["value"].to_numpy()) for _, run in means.groupby("instance", sort=True)]


def curves_on_grid(algorithm: str, curves: Mapping[str, pd.DataFrame],
                   n_points: int = CURVE_POINTS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One algorithm's curves (``{task: long frame of instance, x, value}``) interpolated onto ``n_points`` x values
    spanning what every run of every task covers (from the latest first x to the earliest last x): nothing is
    extrapolated. Returns the grid and, per task (sorted), an ``(n_runs, n_points)`` matrix."""
    if not curves:
        raise ValueError(f"algorithm {algorithm!r} has no curves")
    runs = {task: _run_curves(algorithm, task, curves[task]) for task in sorted(curves)}
    low = max(float(x[0]) for task_runs in runs.values() for x, _ in task_runs)
    high = min(float(x[-1]) for task_runs in runs.values() for x, _ in task_runs)
    if low > high:
        raise ValueError(f"algorithm {algorithm!r}: its runs share no common x range (latest start {low:g} > earliest "
                         f"end {high:g}); cannot put them on one grid without extrapolating")
    grid = np.array([low]) if low == high else np.linspace(low, high, int(n_points))
    return grid, {task: np.stack([np.interp(grid, x, value) for x, value in task_runs]) for task, task_runs in runs.items()}


def sample_efficiency_curves(curves: Mapping[str, Mapping[str, pd.DataFrame]], rng: np.random.Generator,
                             metric: str = "iqm", n_points: int = CURVE_POINTS, n_resamples: int = 2000,
                             confidence: float = 0.95) -> pd.DataFrame:
    """``metric`` of each algorithm's normalised score against x (environment steps, say), with a stratified-bootstrap
    percentile band: ``curves`` is ``{algorithm: {task: long frame of instance, x, value}}`` (e.g. each experiment's
    ``statistics.learning_curves``, smoothed, then normalised), put on a grid per algorithm (:func:`curves_on_grid`).

    A resample draws whole runs, so each resampled curve is consistent across x; the metric is computed at every x at
    once (in chunks of x that bound the memory). Returns one row per (algorithm, x): :data:`CURVE_COLUMNS`.
    """
    check_bootstrap_args(n_resamples, confidence)
    kernel = _checked_metric(metric)
    if not curves:
        raise ValueError("no algorithms: the curves are empty")
    if int(n_points) < 1:
        raise ValueError(f"n_points must be at least 1, got {n_points}")
    frames = []
    for algorithm, by_task in curves.items():
        grid, matrices = curves_on_grid(algorithm, by_task, n_points)
        indices = _resample_indices(rng, int(n_resamples), matrices)
        resampled = _chunked_over_x(kernel, list(matrices.values()), indices, grid.size)
        low, high = _interval(resampled, confidence)
        frames.append(pd.DataFrame({"algorithm": algorithm, "x": grid, "metric": metric,
                                    "estimate": _point(kernel, matrices), "ci_low": low, "ci_high": high,
                                    "n_tasks": len(matrices), "n_runs": _n_runs(matrices),
                                    "confidence": float(confidence), "n_resamples": int(n_resamples)}))
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def _chunked_over_x(kernel: Kernel, matrices: list[np.ndarray], indices: list[np.ndarray], n_x: int) -> np.ndarray:
    """The kernel on every resample at every x, ``(R, n_x)``, a slice of x at a time."""
    n_resamples = indices[0].shape[0]
    per_x = n_resamples * sum(matrix.shape[0] for matrix in matrices)
    step = max(1, _CHUNK_ELEMENTS // per_x)
    return np.concatenate([kernel([matrix[:, start:start + step][index] for matrix, index in zip(matrices, indices)])
                           for start in range(0, n_x, step)], axis=1)
