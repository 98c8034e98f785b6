"""Statistics for aggregating RL experiments: robust point estimates, bootstrap CIs, learning curves.

Everything here is pure (no I/O) and deterministic given a ``np.random.Generator``: the caller
passes a generator seeded from the experiment's ``Stream.STATISTICS`` stream, so re-running the
aggregation reproduces every interval bit for bit. Bootstraps draw one index matrix and apply the
statistic to all resamples at once instead of looping in Python.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

STATISTICS = ("mean", "iqm", "median")

CURVE_COLUMNS = ("instance", "x", "value")


# ---------------------------------------------------------------------------------------- checks
def _as_sample(values: np.ndarray) -> np.ndarray:
    """Flatten ``values`` to a 1-D float array, refusing empty or NaN input early and clearly.

    A NaN would silently turn every statistic and interval into NaN, hiding the real problem
    (a diverged run or a broken evaluation), so it is an error here.
    """
    sample = np.asarray(values, dtype=float).ravel()
    if sample.size == 0:
        raise ValueError("cannot compute statistics of an empty sample: no values were given")
    if np.isnan(sample).any():
        raise ValueError(f"the sample contains {int(np.isnan(sample).sum())} NaN value(s) out of {sample.size}")
    return sample


def check_bootstrap_args(n_resamples: int, confidence: float, names: tuple[str, str] = ("n_resamples", "confidence")
                         ) -> None:
    """Reject parameters that would give a meaningless interval instead of a silently wrong one; ``names`` are the
    caller's names of the two (rlberry's plots say ``n_boot`` and ``level``)."""
    if int(n_resamples) < 1:
        raise ValueError(f"{names[0]} must be at least 1, got {n_resamples}")
    check_level(confidence, names[1])


def check_level(level: float, name: str = "confidence") -> None:
    """Reject a level outside (0, 1), where no interval or band exists."""
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {level}")


def _percentile_bounds(resampled: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile-bootstrap bounds along axis 0 (the resample axis)."""
    alpha = 1.0 - confidence
    low, high = np.quantile(resampled, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return low, high


# ------------------------------------------------------------------------------ point estimates
def _iqm_weights(n: int) -> np.ndarray:
    """Weights of the sorted values in the IQM; they sum to 1 (see :func:`interquartile_mean`)."""
    upper = np.arange(1, n + 1, dtype=float)
    overlap = np.minimum(upper, 0.75 * n) - np.maximum(upper - 1.0, 0.25 * n)
    return np.clip(overlap, 0.0, None) / (0.5 * n)


def _iqm_along_last_axis(values: np.ndarray) -> np.ndarray:
    """IQM of each row of ``values`` (last axis), so a whole bootstrap matrix is done in one call."""
    return np.sort(values, axis=-1) @ _iqm_weights(values.shape[-1])


def interquartile_mean(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the sorted values (Agarwal et al., 2021).

    The IQM is robust to a few outlying instances yet, unlike the median, uses half of the data.
    To be well defined for every ``n >= 1`` (not only multiples of 4), each sorted value
    ``x_(i)``, ``i = 1..n``, is seen as covering the interval ``[i-1, i]`` of ``[0, n]``, and the
    middle half is ``[n/4, 3n/4]``. The value's weight is the length of the overlap::

        w_i = max(0, min(i, 3n/4) - max(i-1, n/4))      (sum_i w_i = n/2)
        IQM = sum_i w_i * x_(i) / (n/2)

    So boundary values count fractionally: n=4 gives mean(x2, x3); n=5 gives
    (0.75*x2 + x3 + 0.75*x4) / 2.5; n=8 gives mean(x3..x6); n=1 gives x1.
    """
    return float(_iqm_along_last_axis(_as_sample(values)))


_STATISTIC_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda matrix: matrix.mean(axis=-1),
    "median": lambda matrix: np.median(matrix, axis=-1),
    "iqm": _iqm_along_last_axis,
}


# ------------------------------------------------------------------------------------ bootstrap
def bootstrap_ci(
    values: np.ndarray,
    rng: np.random.Generator,
    statistic: str = "mean",
    n_resamples: int = 10_000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` ("mean", "iqm" or "median").

    One ``(n_resamples, n)`` index matrix is drawn from ``rng`` and the statistic is applied to all
    resamples at once, so the result depends only on the values and the generator's state. With a
    single value there is no variability to resample and the interval is ``(v, v)`` (``rng`` is
    then left untouched).
    """
    if statistic not in _STATISTIC_FUNCTIONS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    check_bootstrap_args(n_resamples, confidence)
    sample = _as_sample(values)
    if sample.size == 1:
        return float(sample[0]), float(sample[0])
    indices = rng.integers(0, sample.size, size=(int(n_resamples), sample.size))
    resampled = _STATISTIC_FUNCTIONS[statistic](sample[indices])
    low, high = _percentile_bounds(resampled, confidence)
    return float(low), float(high)


def summarize(
    values: np.ndarray,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
) -> dict:
    """Summary of a sample as plain Python numbers, ready for ``json.dumps``.

    Keys: ``n``, ``mean``, ``std``, ``median``, ``iqm``, ``ci_low``/``ci_high`` (percentile bootstrap
    CI of the mean), ``confidence`` and ``n_resamples``. ``std`` is the sample standard deviation
    (``ddof=1``); with ``n == 1`` it is undefined and reported as ``float("nan")`` rather than a
    misleading 0.0 (``json.dumps`` writes it as ``NaN``; strict-JSON readers must allow it).
    Empty input raises ``ValueError``.
    """
    sample = _as_sample(values)
    ci_low, ci_high = bootstrap_ci(sample, rng, "mean", n_resamples, confidence)
    return {
        "n": int(sample.size),
        "mean": float(sample.mean()),
        "std": float(sample.std(ddof=1)) if sample.size > 1 else float("nan"),
        "median": float(np.median(sample)),
        "iqm": interquartile_mean(sample),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "confidence": float(confidence),
        "n_resamples": int(n_resamples),
    }


# ------------------------------------------------------------------------------ learning curves
def _rows_of_tag(data: pd.DataFrame, tag: str, xtag: str) -> pd.DataFrame:
    """Rows of ``tag``; a KeyError names the available tags so a typo in a config is easy to fix."""
    missing = [column for column in ("instance", "tag", "value", xtag) if column not in data.columns]
    if missing:
        raise KeyError(f"writer data lacks column(s) {missing}; available columns: {list(data.columns)}")
    rows = data.loc[data["tag"] == tag, ["instance", "value", xtag]]
    if rows.empty:
        available = sorted(map(str, data["tag"].dropna().unique()))
        raise KeyError(f"no rows with tag {tag!r}; available tags: {available}")
    return rows


def x_values(rows: pd.DataFrame, xtag: str, by: str | Sequence[str] = "instance") -> pd.Series:
    """The x of each row: ``xtag`` as floats, or, when ``xtag`` is NaN in every row, the row's position (0, 1, 2…)
    within its run, the rows sharing the ``by`` column(s).

    Writers record ``global_step`` as NaN when the agent gave none; the logging order is then the
    only meaningful abscissa. Rows whose ``xtag`` is NaN among others that have one stay NaN.
    """
    x = pd.to_numeric(rows[xtag], errors="coerce").astype(float)
    if x.isna().all():
        return rows.groupby(by if isinstance(by, str) else list(by), sort=False).cumcount().astype(float)
    return x


def _smoothed_points(rows: pd.DataFrame, x: pd.Series, smoothing_window: int) -> pd.DataFrame:
    """Per instance: sort by x, trailing rolling mean, then average points sharing an x.

    Rows whose x is NaN cannot be placed on the axis and are dropped. Duplicate x values are
    averaged so that interpolation sees strictly increasing abscissae.
    """
    points = pd.DataFrame({"instance": rows["instance"].to_numpy(), "x": x.to_numpy(),
                           "value": pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)})
    points = points.dropna(subset=["x"]).sort_values(["instance", "x"], kind="stable", ignore_index=True)
    points["value"] = (points.groupby("instance", sort=False)["value"]
                       .rolling(smoothing_window, min_periods=1).mean()
                       .reset_index(level=0, drop=True))
    return points.groupby(["instance", "x"], sort=True, as_index=False)["value"].mean()


def _common_grid(points: pd.DataFrame, n_points: int) -> np.ndarray:
    """``n_points`` x values spanning the range that every instance covers (no extrapolation)."""
    bounds = points.groupby("instance")["x"].agg(["min", "max"])
    low, high = float(bounds["min"].max()), float(bounds["max"].min())
    if low > high:
        raise ValueError(
            f"instances share no common x range (latest start {low:g} > earliest end {high:g}); "
            "cannot put their curves on a common grid without extrapolating")
    if low == high:
        return np.array([low])
    return np.linspace(low, high, n_points)


def learning_curves(
    data: pd.DataFrame,
    tag: str,
    xtag: str = "global_step",
    n_points: int = 200,
    smoothing_window: int = 1,
) -> pd.DataFrame:
    """Curves of ``tag`` for every instance, smoothed and interpolated onto one common x grid.

    Instances log at different steps, so their curves are only comparable (and averageable) on a
    shared grid. Per instance the rows are sorted by ``xtag``, smoothed with a trailing rolling
    mean of ``smoothing_window`` points (``min_periods=1``), then linearly interpolated onto
    ``n_points`` values spanning [latest first x, earliest last x] -- the range all instances
    cover, so nothing is extrapolated (if that range is a single point, the grid is that point).
    If ``xtag`` is NaN for every row of ``tag``, the row order within each instance (0, 1, 2, ...)
    is used as x. Returns a long DataFrame with columns ``instance, x, value``.
    """
    if int(n_points) < 1:
        raise ValueError(f"n_points must be at least 1, got {n_points}")
    if int(smoothing_window) < 1:
        raise ValueError(f"smoothing_window must be at least 1, got {smoothing_window}")
    rows = _rows_of_tag(data, tag, xtag)
    points = _smoothed_points(rows, x_values(rows, xtag), int(smoothing_window))
    if points.empty:
        raise ValueError(f"every row of tag {tag!r} has a NaN {xtag!r}; cannot place them on an x axis")
    grid = _common_grid(points, int(n_points))
    groups = points.groupby("instance", sort=True)
    interpolated = [np.interp(grid, group["x"].to_numpy(), group["value"].to_numpy()) for _, group in groups]
    instances = pd.Index(list(groups.groups))
    return pd.DataFrame({
        "instance": instances.repeat(grid.size),
        "x": np.tile(grid, len(instances)),
        "value": np.concatenate(interpolated),
    })


def _curve_matrix(curves: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The x grid and the ``(n_instances, n_points)`` value matrix of long-format curves."""
    missing = [column for column in CURVE_COLUMNS if column not in curves.columns]
    if missing:
        raise KeyError(f"curves lack column(s) {missing}; available columns: {list(curves.columns)}")
    if curves.empty:
        raise ValueError("cannot compute a band from empty curves")
    wide = curves.pivot(index="instance", columns="x", values="value")
    if wide.size != len(curves):
        raise ValueError("instances do not share a common x grid; build curves with learning_curves()")
    return wide.columns.to_numpy(dtype=float), wide.to_numpy(dtype=float)


def resample_counts(rng: np.random.Generator, n_resamples: int, n: int) -> np.ndarray:
    """How often each of ``n`` items is drawn in each resample, shape ``(n_resamples, n)``.

    Turning the index matrix into counts lets the resampled means of every x be one matrix
    product, without materialising an ``(n_resamples, n, n_points)`` array.
    """
    indices = rng.integers(0, n, size=(n_resamples, n))
    flat = (indices + n * np.arange(n_resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n)


def curve_band(
    curves: pd.DataFrame,
    rng: np.random.Generator,
    n_resamples: int = 2_000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean learning curve and its percentile bootstrap CI over instances, at every x at once.

    Instances (not points of a curve) are the independent units, so one ``(n_resamples,
    n_instances)`` resampling of instances is drawn and applied to the whole curve matrix: each
    resample is a whole mean curve, consistent across x. With a single instance the band
    collapses onto the mean. Returns columns ``x, mean, ci_low, ci_high, n_instances``.
    """
    check_bootstrap_args(n_resamples, confidence)
    grid, matrix = _curve_matrix(curves)
    n_instances = matrix.shape[0]
    mean = matrix.mean(axis=0)
    if n_instances == 1:
        low, high = mean.copy(), mean.copy()
    else:
        counts = resample_counts(rng, int(n_resamples), n_instances)
        low, high = _percentile_bounds(counts @ matrix / n_instances, confidence)
    return pd.DataFrame({"x": grid, "mean": mean, "ci_low": low, "ci_high": high,
                         "n_instances": np.full(grid.size, n_instances, dtype=int)})
