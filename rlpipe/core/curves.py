"""The numbers behind the writer-data plots: thinning, kernel smoothing and bands around mean curves.

Pure numpy/pandas, so every number on a figure can be tested without drawing it. A "run" is one
fitted instance (``n_simu``); a curve matrix has one row per run and one column per x value.

The smoother is Nadaraya–Watson with a Gaussian kernel whose standard deviation is the bandwidth
(scikit-fda's default kernel, which rlberry uses), and the bandwidth is chosen by leave-one-out
cross-validation. The "cb" band is a simultaneous bootstrap band for the mean curve (Degras 2017).
"""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from rlpipe.core.statistics import check_bootstrap_args, check_level, resample_counts

SUB_SAMPLE_POINTS = 1000  # points kept per run: smoothing costs grow with the square of a run's length
GRID_POINTS = 500  # where smoothed curves are evaluated, as in rlberry
N_BANDWIDTHS = 10  # heuristic bandwidths tried by cross-validation when the caller gives none
BAND_KINDS = ("ci", "pi", "cb")
BAND_SEED = 0  # "cb" resamples runs from this seed: the same data always gives the same band
_KERNEL_ENTRIES = 2**22  # kernel-matrix entries computed at once, so long runs do not exhaust memory

Run = tuple[np.ndarray, np.ndarray]  # (x, y) of one run


# ---------------------------------------------------------------------------------- runs and grids
def sub_sample(data: pd.DataFrame, x: str, max_points: int = SUB_SAMPLE_POINTS) -> pd.DataFrame:
    """Every k-th row of each (name, n_simu) run in x order, k = ceil(length / max_points).

    At most ``max_points`` rows per run are kept, spread over its whole x range; row order is kept.
    """
    runs = data.groupby(["name", "n_simu"], sort=False)[x]
    position = runs.rank(method="first") - 1.0
    step = np.ceil(runs.transform("size") / max_points)
    return data[(position % step == 0).to_numpy()]


def runs_of(rows: pd.DataFrame, x: str, y: str) -> list[Run]:
    """The (x, y) arrays of each run of ``rows``, in ``n_simu`` order, each sorted by x."""
    ordered = rows.sort_values(["n_simu", x], kind="stable")
    return [(run[x].to_numpy(dtype=float), run[y].to_numpy(dtype=float))
            for _, run in ordered.groupby("n_simu", sort=True)]


def synchronize(rows: pd.DataFrame, x: str, y: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows at the x values that every run logged, those x values, and the runs' values there.

    Without smoothing, runs can only be averaged where they share x values; the others are dropped
    with a warning (rlberry's "truncating"). Duplicate x within a run are averaged. Returns
    ``(kept_rows, x_values, curve_matrix)``.
    """
    n_runs = rows["n_simu"].nunique()
    shared = rows.groupby(x)["n_simu"].nunique() == n_runs
    kept = rows[rows[x].isin(shared.index[shared.to_numpy()])]
    if kept.empty:
        raise ValueError(f"the runs share no {x!r} value, so they cannot be averaged point by point; "
                         "use smooth=True (plot_smoothed_curves)")
    if len(kept) < len(rows):
        warnings.warn("x axis is not the same for all the runs, truncating.", stacklevel=3)
    matrix = kept.pivot_table(index="n_simu", columns=x, values=y, aggfunc="mean", sort=True)
    return kept, matrix.columns.to_numpy(dtype=float), matrix.to_numpy(dtype=float)


# ------------------------------------------------------------------------------- kernel smoothing
def _weighted_means(centres: np.ndarray, x: np.ndarray, y: np.ndarray, bandwidths: np.ndarray,
                    offset: int | None) -> np.ndarray:
    """Gaussian-kernel weighted means of ``y`` around each centre, one row per bandwidth.

    ``offset`` leaves out x[offset + k] for centre k (leave-one-out when the centres are x). Squared
    distances are computed once for all bandwidths and shifted so that each centre's nearest point
    weighs 1: the ratio is unchanged and never 0/0, even far from every x with a small bandwidth.
    """
    distances = np.square(centres[:, None] - x[None, :])
    if offset is not None:
        rows = np.arange(centres.size)
        distances[rows, rows + offset] = np.inf
    distances -= distances.min(axis=1, keepdims=True)
    means = np.empty((bandwidths.size, centres.size))
    for k, bandwidth in enumerate(bandwidths):
        weights = np.exp(distances * (-0.5 / bandwidth**2))
        means[k] = weights @ y / weights.sum(axis=1)
    return means


def _in_blocks(centres: np.ndarray, x: np.ndarray, y: np.ndarray, bandwidths: np.ndarray,
               leave_one_out: bool) -> np.ndarray:
    """:func:`_weighted_means` over blocks of centres, so the distance matrix stays small."""
    size = max(1, _KERNEL_ENTRIES // max(x.size, 1))
    return np.concatenate([
        _weighted_means(centres[start:start + size], x, y, bandwidths, start if leave_one_out else None)
        for start in range(0, centres.size, size)
    ], axis=1)


def kernel_smooth(x: np.ndarray, y: np.ndarray, points: np.ndarray, bandwidth: float) -> np.ndarray:
    """Nadaraya–Watson estimate at ``points``: sum_i K((p - x_i)/h) y_i / sum_i K((p - x_i)/h), K Gaussian."""
    return _in_blocks(np.asarray(points, dtype=float), np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                      np.array([float(bandwidth)]), leave_one_out=False)[0]


def loo_errors(x: np.ndarray, y: np.ndarray, bandwidths: Sequence[float]) -> np.ndarray:
    """Per bandwidth, the sum of squared leave-one-out residuals: each y_i against the smoother without point i.

    A run of fewer than two points predicts nothing and contributes 0.
    """
    x, y, bandwidths = (np.asarray(values, dtype=float) for values in (x, y, bandwidths))
    if x.size < 2:
        return np.zeros(bandwidths.size)
    return np.sum(np.square(y - _in_blocks(x, x, y, bandwidths, leave_one_out=True)), axis=1)


def bandwidth_candidates(runs: Sequence[Run]) -> np.ndarray:
    """``N_BANDWIDTHS`` bandwidths, geometric from the median gap between a run's x values to 1/10 of the x range.

    Narrower than the data spacing only interpolates; wider than a tenth of the range flattens a
    learning curve. With a single x value every bandwidth gives the same constant curve.
    """
    x_all = np.concatenate([x for x, _ in runs])
    span = float(x_all.max() - x_all.min())
    if span == 0.0:
        return np.ones(1)
    gaps = np.concatenate([np.diff(np.unique(x)) for x, _ in runs])
    low = float(np.median(gaps)) if gaps.size else span
    return np.geomspace(low, max(span / 10.0, low), N_BANDWIDTHS)


def select_bandwidth(runs: Sequence[Run], candidates: Sequence[float]) -> float:
    """The candidate with the smallest leave-one-out error summed over all runs (first one on ties).

    All runs of a curve share one bandwidth, so their smoothed curves can be averaged; using every
    run (not only the first, as rlberry does) makes the choice independent of run order.
    """
    candidates = _positive_bandwidths(candidates)
    errors = sum(loo_errors(x, y, candidates) for x, y in runs)
    return float(candidates[int(np.argmin(errors))])


def _positive_bandwidths(values: Sequence[float] | float) -> np.ndarray:
    bandwidths = np.atleast_1d(np.asarray(values, dtype=float))
    if bandwidths.size == 0 or not np.all(np.isfinite(bandwidths) & (bandwidths > 0)):
        raise ValueError(f"smoothing bandwidths must be finite and positive, got {values!r}")
    return bandwidths


def resolve_bandwidth(runs: Sequence[Run], smoothing_bandwidth: float | Sequence[float] | None) -> float:
    """rlberry's ``smoothing_bandwidth``: a number is used as is, an array is searched, None searches heuristics."""
    if isinstance(smoothing_bandwidth, numbers.Real):
        return float(_positive_bandwidths(smoothing_bandwidth)[0])
    candidates = bandwidth_candidates(runs) if smoothing_bandwidth is None else smoothing_bandwidth
    return select_bandwidth(runs, candidates)


def smooth_runs(runs: Sequence[Run], grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """The ``(n_runs, grid.size)`` matrix of every run smoothed onto ``grid`` with one bandwidth."""
    return np.vstack([kernel_smooth(x, y, grid, bandwidth) for x, y in runs])


# -------------------------------------------------------------------------------------------- bands
def normal_quantile(level: float) -> float:
    """z with P(|Z| <= z) = level for a standard normal Z: mean ± z·sd covers ``level`` two-sided."""
    check_level(level, "level")
    return NormalDist().inv_cdf(0.5 + float(level) / 2.0)


def spread(curves: np.ndarray) -> np.ndarray:
    """Standard deviation over runs (ddof=1) at each x; 0 for a single run, whose band collapses."""
    if curves.shape[0] < 2:
        return np.zeros(curves.shape[1])
    return curves.std(axis=0, ddof=1)


def simultaneous_half_width(curves: np.ndarray, level: float, n_boot: int, seed: int = BAND_SEED) -> np.ndarray:
    """Half-width of a bootstrap band that holds the mean curve at every x at once with prob. ``level``.

    Runs are resampled ``n_boot`` times (as the statistics resample instances); the band is q·sd, q the ``level``
    quantile of max_x |resampled mean - mean| / sd (x where sd = 0 take no part and get no width).
    """
    check_bootstrap_args(n_boot, level, names=("n_boot", "level"))
    n_runs = curves.shape[0]
    if n_runs * (1.0 - float(level)) < 1.0 - 1e-9:  # the tolerance keeps 10 runs enough for level 0.9
        warnings.warn(f"{n_runs} runs are too few for a {level:g} simultaneous band: it may not reach its level",
                      stacklevel=4)
    sd = spread(curves)
    counts = resample_counts(np.random.default_rng(seed), int(n_boot), n_runs)
    deviations = np.abs(counts @ curves / n_runs - curves.mean(axis=0))
    scaled = np.divide(deviations, sd, out=np.zeros_like(deviations), where=sd > 0)
    return float(np.quantile(scaled.max(axis=1), level)) * sd


def band_half_width(curves: np.ndarray, kind: str, level: float, n_boot: int) -> np.ndarray:
    """Half-width around the mean curve: "ci" z·sd/√n (CI of the mean), "pi" z·sd, "cb" simultaneous band.

    ``n`` is the number of runs (rlberry's non-smoothed "ci" divides by √(n−1) by mistake).
    """
    if kind == "ci":
        return normal_quantile(level) * spread(curves) / np.sqrt(curves.shape[0])
    if kind == "pi":
        return normal_quantile(level) * spread(curves)
    if kind == "cb":
        return simultaneous_half_width(curves, level, n_boot)
    raise ValueError(f"error_representation not implemented: {kind!r} is not a band, use one of {BAND_KINDS}")
