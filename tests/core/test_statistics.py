"""Tests of rlpipe.core.statistics: hand-computed IQMs, bootstrap properties, learning-curve grids."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rlpipe.core.statistics import (
    bootstrap_ci,
    curve_band,
    interquartile_mean,
    learning_curves,
    summarize,
    x_values,
)


# ------------------------------------------------------------------------------------------- IQM
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([4.0, 1.0, 3.0, 2.0], 2.5),  # mean(x2, x3) = (2 + 3) / 2
        ([1.0, 2.0, 3.0, 4.0, 100.0], 3.0),  # (0.75*2 + 3 + 0.75*4) / 2.5
        # sorted: -1e6, 0, 0, 10, 20, 30, 40, 1e6 -> middle four x3..x6 = 0, 10, 20, 30
        ([0.0, 0.0, 10.0, 20.0, 30.0, 40.0, 1e6, -1e6], 15.0),
        ([7.5], 7.5),
    ],
)
def test_iqm_hand_computed(values: list[float], expected: float) -> None:
    assert interquartile_mean(np.array(values)) == pytest.approx(expected)


def test_iqm_n5_weights_explicit() -> None:
    # n=5: middle half is [1.25, 3.75]; x2 covers [1,2] -> 0.75, x3 -> 1, x4 covers [3,4] -> 0.75.
    values = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    assert interquartile_mean(values) == pytest.approx((0.75 * 20 + 30 + 0.75 * 40) / 2.5)


def test_iqm_equals_trimmed_mean_of_fourfold_repetition() -> None:
    # Repeating each value 4 times makes n a multiple of 4, where the IQM is an ordinary trimmed
    # mean; fractional weighting must give exactly the same answer on the original sample.
    rng = np.random.default_rng(1)
    for n in range(1, 23):
        values = rng.normal(size=n)
        repeated = np.sort(np.repeat(values, 4))
        expected = repeated[n: 3 * n].mean()
        assert interquartile_mean(values) == pytest.approx(expected, abs=1e-12)


def test_iqm_of_constant_and_order_invariance() -> None:
    for n in range(1, 12):
        assert interquartile_mean(np.full(n, 3.25)) == pytest.approx(3.25)
    values = np.array([5.0, -1.0, 9.0, 2.0, 2.0, 7.0])
    assert interquartile_mean(values) == pytest.approx(interquartile_mean(values[::-1]))


def test_iqm_rejects_empty_and_nan() -> None:
    with pytest.raises(ValueError, match="empty"):
        interquartile_mean(np.array([]))
    with pytest.raises(ValueError, match="NaN"):
        interquartile_mean(np.array([1.0, np.nan]))


# ------------------------------------------------------------------------------------ bootstrap
def test_bootstrap_contains_mean_and_is_deterministic() -> None:
    values = np.random.default_rng(2).normal(3.0, 1.0, size=25)
    first = bootstrap_ci(values, np.random.default_rng(42), n_resamples=2000)
    second = bootstrap_ci(values, np.random.default_rng(42), n_resamples=2000)
    assert first == second
    assert first[0] < values.mean() < first[1]
    assert bootstrap_ci(values, np.random.default_rng(43), n_resamples=2000) != first


def test_bootstrap_single_value() -> None:
    assert bootstrap_ci(np.array([4.2]), np.random.default_rng(0)) == (4.2, 4.2)
    assert bootstrap_ci(np.array([4.2]), np.random.default_rng(0), statistic="iqm") == (4.2, 4.2)


def test_bootstrap_narrows_as_n_grows() -> None:
    rng = np.random.default_rng(3)
    small = rng.normal(size=10)
    large = rng.normal(size=1000)
    low_s, high_s = bootstrap_ci(small, np.random.default_rng(0), n_resamples=1000)
    low_l, high_l = bootstrap_ci(large, np.random.default_rng(0), n_resamples=1000)
    assert (high_l - low_l) < 0.3 * (high_s - low_s)


@pytest.mark.parametrize("statistic", ["iqm", "median"])
def test_bootstrap_vectorised_statistic_matches_row_by_row(statistic: str) -> None:
    values = np.random.default_rng(4).exponential(size=13)
    n_resamples = 300
    low, high = bootstrap_ci(values, np.random.default_rng(7), statistic=statistic, n_resamples=n_resamples)
    indices = np.random.default_rng(7).integers(0, values.size, size=(n_resamples, values.size))
    function = interquartile_mean if statistic == "iqm" else np.median
    reference = np.array([function(values[row]) for row in indices])
    assert (low, high) == pytest.approx(tuple(np.quantile(reference, [0.025, 0.975])))


def test_bootstrap_coverage_simulation() -> None:
    rng = np.random.default_rng(5)
    true_mean = 1.0
    hits = 0
    n_trials = 200
    for _ in range(n_trials):
        sample = rng.normal(true_mean, 2.0, size=30)
        low, high = bootstrap_ci(sample, rng, n_resamples=1000, confidence=0.95)
        hits += low <= true_mean <= high
    assert 0.88 <= hits / n_trials <= 0.99


def test_bootstrap_rejects_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="statistic"):
        bootstrap_ci(np.arange(3.0), rng, statistic="mode")
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.arange(3.0), rng, confidence=1.5)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci(np.array([]), rng)


# ------------------------------------------------------------------------------------ summarize
def test_summarize_values_and_types() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    summary = summarize(values, np.random.default_rng(0), n_resamples=500)
    assert set(summary) == {"n", "mean", "std", "median", "iqm", "ci_low", "ci_high", "confidence", "n_resamples"}
    assert summary["n"] == 4 and type(summary["n"]) is int
    assert summary["mean"] == pytest.approx(2.5)
    assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    assert summary["median"] == pytest.approx(2.5)
    assert summary["iqm"] == pytest.approx(2.5)
    assert summary["ci_low"] <= 2.5 <= summary["ci_high"]
    assert summary["confidence"] == 0.95 and summary["n_resamples"] == 500
    assert all(type(value) in (int, float) for value in summary.values())
    assert json.loads(json.dumps(summary)) == summary


def test_summarize_single_value_and_empty() -> None:
    summary = summarize(np.array([2.0]), np.random.default_rng(0))
    assert math.isnan(summary["std"])
    assert (summary["mean"], summary["ci_low"], summary["ci_high"], summary["iqm"]) == (2.0, 2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="empty"):
        summarize(np.array([]), np.random.default_rng(0))


# ------------------------------------------------------------------------------ learning curves
def _writer_rows(instance: int, steps: np.ndarray, values: np.ndarray, tag: str = "episode_rewards") -> pd.DataFrame:
    return pd.DataFrame({
        "name": "agent", "instance": instance, "tag": tag, "value": values,
        "dw_time_elapsed": np.arange(len(steps)) * 0.5, "global_step": steps,
    })


def test_learning_curves_grid_is_common_range_and_linear_exact() -> None:
    steps_a = np.array([0.0, 7.0, 30.0, 55.0, 100.0])
    steps_b = np.array([10.0, 20.0, 45.0, 90.0])
    data = pd.concat([
        _writer_rows(0, steps_a, 2.0 * steps_a + 1.0),
        _writer_rows(1, steps_b, -steps_b + 3.0),
        _writer_rows(0, np.array([1.0, 2.0]), np.array([9.0, 9.0]), tag="loss"),
    ], ignore_index=True).sample(frac=1.0, random_state=0)  # shuffled: sorting is the function's job
    curves = learning_curves(data, "episode_rewards", n_points=17)
    assert list(curves.columns) == ["instance", "x", "value"]
    assert len(curves) == 2 * 17
    for instance, curve in curves.groupby("instance"):
        x = curve["x"].to_numpy()
        assert x[0] == 10.0 and x[-1] == 90.0
        np.testing.assert_allclose(x, np.linspace(10.0, 90.0, 17))
        expected = 2.0 * x + 1.0 if instance == 0 else -x + 3.0
        np.testing.assert_allclose(curve["value"].to_numpy(), expected, rtol=1e-12)


def test_learning_curves_smoothing() -> None:
    steps = np.arange(10.0)
    alternating = np.tile([0.0, 1.0], 5)
    data = _writer_rows(0, steps, alternating)
    raw = learning_curves(data, "episode_rewards", n_points=10)
    smooth = learning_curves(data, "episode_rewards", n_points=10, smoothing_window=2)
    np.testing.assert_allclose(raw["value"], alternating)
    np.testing.assert_allclose(smooth["value"], [0.0] + [0.5] * 9)  # trailing mean, min_periods=1
    assert smooth["value"].std() < raw["value"].std()


def test_learning_curves_nan_global_step_uses_row_order() -> None:
    a = _writer_rows(0, np.full(5, np.nan), np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    b = _writer_rows(1, np.full(3, np.nan), np.array([10.0, 20.0, 30.0]))
    data = pd.concat([a.iloc[:2], b.iloc[:1], a.iloc[2:], b.iloc[1:]], ignore_index=True)  # interleaved
    curves = learning_curves(data, "episode_rewards", n_points=3)
    np.testing.assert_allclose(curves["x"], [0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(curves["value"], [0.0, 1.0, 2.0, 10.0, 20.0, 30.0])


def test_x_values_are_the_xtag_or_the_logging_order_within_each_run() -> None:
    rows = pd.DataFrame({"name": ["a", "a", "b", "a", "b"], "n_simu": [0, 0, 0, 1, 0], "instance": [0, 0, 1, 0, 1],
                         "global_step": [np.nan] * 5, "dw_time_elapsed": [0.5, np.nan, 1.5, 2.0, 3.0]})
    assert x_values(rows, "global_step").tolist() == [0.0, 1.0, 0.0, 2.0, 1.0]  # per instance, by default
    assert x_values(rows, "global_step", by=["name", "n_simu"]).tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(x_values(rows, "dw_time_elapsed"), [0.5, np.nan, 1.5, 2.0, 3.0])  # some have one


def test_learning_curves_other_xtag() -> None:
    data = _writer_rows(0, np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0, 3.0]))
    curves = learning_curves(data, "episode_rewards", xtag="dw_time_elapsed", n_points=3)
    np.testing.assert_allclose(curves["x"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(curves["value"], [1.0, 2.0, 3.0])


def test_learning_curves_refuses_instances_without_a_common_x_range() -> None:
    data = pd.concat([_writer_rows(0, np.array([0.0, 1.0]), np.zeros(2)),
                      _writer_rows(1, np.array([2.0, 3.0]), np.ones(2))], ignore_index=True)
    with pytest.raises(ValueError, match=r"no common x range \(latest start 2 > earliest end 1\)"):
        learning_curves(data, "episode_rewards")


def test_learning_curves_missing_tag_lists_available_tags() -> None:
    data = pd.concat([_writer_rows(0, np.arange(3.0), np.arange(3.0)),
                      _writer_rows(0, np.arange(3.0), np.arange(3.0), tag="loss")])
    with pytest.raises(KeyError) as error:
        learning_curves(data, "returns")
    message = str(error.value)
    assert "'returns'" in message and "episode_rewards" in message and "loss" in message


# ----------------------------------------------------------------------------------- curve band
def _three_instance_curves() -> pd.DataFrame:
    frames = [_writer_rows(i, np.linspace(0.0, 100.0, 21), np.sin(np.linspace(0, 3, 21)) + i) for i in range(3)]
    return learning_curves(pd.concat(frames, ignore_index=True), "episode_rewards", n_points=50)


def test_curve_band_shapes_and_mean() -> None:
    curves = _three_instance_curves()
    band = curve_band(curves, np.random.default_rng(0), n_resamples=500)
    assert list(band.columns) == ["x", "mean", "ci_low", "ci_high", "n_instances"]
    assert len(band) == 50
    assert (band["n_instances"] == 3).all()
    expected = curves.groupby("x")["value"].mean()
    np.testing.assert_allclose(band["x"], expected.index)
    np.testing.assert_allclose(band["mean"], expected.to_numpy())
    assert (band["ci_low"] <= band["mean"] + 1e-12).all() and (band["mean"] <= band["ci_high"] + 1e-12).all()
    assert (band["ci_high"] - band["ci_low"] > 0).all()
    again = curve_band(curves, np.random.default_rng(0), n_resamples=500)
    pd.testing.assert_frame_equal(band, again)


def test_curve_band_matches_explicit_resampling() -> None:
    curves = _three_instance_curves()
    band = curve_band(curves, np.random.default_rng(9), n_resamples=200, confidence=0.9)
    matrix = curves.pivot(index="instance", columns="x", values="value").to_numpy()
    indices = np.random.default_rng(9).integers(0, 3, size=(200, 3))
    resampled_means = matrix[indices].mean(axis=1)
    low, high = np.quantile(resampled_means, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(band["ci_low"], low, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(band["ci_high"], high, rtol=1e-12, atol=1e-12)


def test_curve_band_single_instance() -> None:
    curves = learning_curves(_writer_rows(0, np.arange(5.0), np.arange(5.0) ** 2), "episode_rewards", n_points=9)
    band = curve_band(curves, np.random.default_rng(0))
    assert (band["n_instances"] == 1).all()
    np.testing.assert_array_equal(band["ci_low"], band["mean"])
    np.testing.assert_array_equal(band["ci_high"], band["mean"])
    np.testing.assert_allclose(band["mean"], curves["value"])
