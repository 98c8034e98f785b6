"""Tests of rlpipe.core.curves: hand-computed kernel smoothing, cross-validation, sub-sampling and bands."""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from rlpipe.core import curves

Z90 = NormalDist().inv_cdf(0.95)  # two-sided 90%: 1.6449


def runs_frame(runs: dict[int, tuple[list[float], list[float]]], name: str = "a") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"name": name, "n_simu": simu, "x": x, "y": y}) for simu, (x, y) in runs.items()],
                     ignore_index=True)


# ------------------------------------------------------------------------------- kernel smoothing
def test_kernel_smooth_is_the_hand_computed_nadaraya_watson_value() -> None:
    x, y = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 4.0])
    # At 0.5 with h = 1: weights e^-0.125, e^-0.125, e^-1.125; divide by e^-0.125.
    expected = (0.0 + 1.0 + 4.0 * math.exp(-1.0)) / (1.0 + 1.0 + math.exp(-1.0))
    got = curves.kernel_smooth(x, y, np.array([0.5, 1.0]), bandwidth=1.0)
    assert got[0] == pytest.approx(expected, rel=1e-12)
    # At 1 the outer points weigh e^-0.5 each, so the estimate is (e^-0.5 * 4 + 1) / (2 e^-0.5 + 1).
    assert got[1] == pytest.approx((1.0 + 4.0 * math.exp(-0.5)) / (1.0 + 2.0 * math.exp(-0.5)), rel=1e-12)


def test_kernel_smooth_far_from_the_data_takes_the_nearest_value_instead_of_nan() -> None:
    got = curves.kernel_smooth(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 4.0]), np.array([-50.0, 1e3]), 0.1)
    np.testing.assert_allclose(got, [0.0, 4.0])


def test_kernel_smooth_in_blocks_equals_one_block(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    x, y, points = np.sort(rng.uniform(0, 10, 50)), rng.normal(size=50), np.linspace(0, 10, 37)
    whole = curves.kernel_smooth(x, y, points, 0.7)
    monkeypatch.setattr(curves, "_KERNEL_ENTRIES", 120)  # blocks of 2 centres
    np.testing.assert_allclose(curves.kernel_smooth(x, y, points, 0.7), whole, rtol=1e-12)
    assert curves.loo_errors(x, y, [0.7])[0] == pytest.approx(sum(
        (y[i] - curves.kernel_smooth(np.delete(x, i), np.delete(y, i), x[i:i + 1], 0.7)[0]) ** 2 for i in range(50)))


# --------------------------------------------------------------------------------- bandwidth search
def test_loo_error_is_the_hand_computed_sum_of_squared_residuals() -> None:
    # y = (0, 3, 0) at x = (0, 1, 2), h = 1. Without x=0: (3 e^-0.5 + 0 e^-2) / (e^-0.5 + e^-2), same at x=2;
    # without x=1 both neighbours are 0, so the residual is 3.
    a, b = math.exp(-0.5), math.exp(-2.0)
    edge = 3.0 * a / (a + b)
    assert curves.loo_errors([0.0, 1.0, 2.0], [0.0, 3.0, 0.0], [1.0])[0] == pytest.approx(2 * edge**2 + 9.0, rel=1e-12)
    np.testing.assert_array_equal(curves.loo_errors([5.0], [1.0], [1.0, 2.0]), [0.0, 0.0])  # one point predicts nothing


def test_cross_validation_picks_the_bandwidth_with_the_smallest_loo_error() -> None:
    x = np.arange(21.0)
    candidates = [0.3, 1.0, 3.0, 30.0]
    # A straight line: tiny bandwidths average the two neighbours, which is exact inside the range.
    line = [(x, 2.0 * x)]
    # Pure alternation around 0: neighbours always have the opposite sign, the global mean is best.
    zigzag = [(x, (-1.0) ** x)]
    for runs, best in ((line, 0.3), (zigzag, 30.0)):
        errors = curves.loo_errors(*runs[0], candidates)
        np.testing.assert_allclose(errors, [curves.loo_errors(*runs[0], [h])[0] for h in candidates])
        assert candidates[int(np.argmin(errors))] == best
        assert curves.select_bandwidth(runs, candidates) == best
    # Over several runs the summed errors decide, here a compromise between the two runs' own choices.
    mixed = line + zigzag
    summed = curves.loo_errors(*line[0], candidates) + curves.loo_errors(*zigzag[0], candidates)
    assert curves.select_bandwidth(mixed, candidates) == candidates[int(np.argmin(summed))] == 1.0


def test_bandwidth_candidates_span_the_median_gap_to_a_tenth_of_the_range() -> None:
    x = np.arange(101.0)
    got = curves.bandwidth_candidates([(x, x), (x[::2], x[::2])])  # gaps 1 (100 of them) and 2 (50)
    assert len(got) == curves.N_BANDWIDTHS
    assert got[0] == pytest.approx(1.0) and got[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(got[1:] / got[:-1], 10.0 ** (1 / 9))
    np.testing.assert_array_equal(curves.bandwidth_candidates([(np.array([4.0, 4.0]), np.zeros(2))]), [1.0])


def test_resolve_bandwidth_uses_a_number_searches_an_array_and_rejects_nonpositive_values() -> None:
    x = np.arange(21.0)
    runs = [(x, (-1.0) ** x)]
    assert curves.resolve_bandwidth(runs, 2.5) == 2.5
    assert curves.resolve_bandwidth(runs, np.array([0.3, 30.0])) == 30.0
    assert curves.resolve_bandwidth(runs, None) == pytest.approx(2.0)  # the widest heuristic: range / 10
    for bad in (0.0, -1.0, [1.0, float("nan")], []):
        with pytest.raises(ValueError, match="positive"):
            curves.resolve_bandwidth(runs, bad)


def test_smooth_runs_stacks_one_row_per_run() -> None:
    x = np.arange(5.0)
    grid = np.linspace(0, 4, 9)
    matrix = curves.smooth_runs([(x, x), (x, x + 1.0)], grid, 1.0)
    assert matrix.shape == (2, 9)
    np.testing.assert_allclose(matrix[1] - matrix[0], 1.0)  # the weights sum to one: shifts pass through


# ------------------------------------------------------------------------------ runs and sub-sampling
def test_sub_sample_keeps_at_most_max_points_per_run_in_x_order() -> None:
    long = pd.DataFrame({"name": "a", "n_simu": 0, "x": np.arange(2500.0)[::-1], "y": 0.0})
    short = pd.DataFrame({"name": "a", "n_simu": 1, "x": np.arange(900.0), "y": 1.0})
    data = pd.concat([long, short], ignore_index=True)
    kept = curves.sub_sample(data, "x")
    sizes = kept.groupby("n_simu").size()
    assert sizes[0] == 834 and sizes[1] == 900  # every 3rd of 2500 points (from the smallest x); 900 untouched
    np.testing.assert_array_equal(np.sort(kept.loc[kept["n_simu"] == 0, "x"]), np.arange(0.0, 2500.0, 3.0))
    assert kept.index.is_monotonic_increasing  # the original row order is kept
    assert len(curves.sub_sample(data, "x", max_points=100).query("n_simu == 1")) == 100


def test_runs_of_sorts_each_run_by_x() -> None:
    data = runs_frame({1: ([2.0, 0.0], [20.0, 0.0]), 0: ([1.0], [10.0])})
    runs = curves.runs_of(data, "x", "y")
    assert [r[0].tolist() for r in runs] == [[1.0], [0.0, 2.0]]
    assert [r[1].tolist() for r in runs] == [[10.0], [0.0, 20.0]]


def test_synchronize_keeps_shared_x_and_averages_duplicates() -> None:
    data = runs_frame({0: ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]), 1: ([0.0, 1.0, 1.0, 2.0], [4.0, 5.0, 7.0, 6.0]),
                       2: ([0.0, 1.0, 2.0], [8.0, 9.0, 10.0])})
    with pytest.warns(UserWarning, match="truncating"):
        kept, x, matrix = curves.synchronize(data, "x", "y")
    np.testing.assert_array_equal(x, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(matrix, [[0.0, 1.0, 2.0], [4.0, 6.0, 6.0], [8.0, 9.0, 10.0]])
    assert len(kept) == len(data) - 1 and 3.0 not in kept["x"].to_numpy()
    with pytest.raises(ValueError, match="smooth=True"):
        curves.synchronize(runs_frame({0: ([0.0], [1.0]), 1: ([1.0], [1.0])}), "x", "y")


# -------------------------------------------------------------------------------------------- bands
CURVES = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 6.0]])  # sd (ddof=1) per x: sqrt(2), sqrt(2), 2 sqrt(2)


def test_ci_and_pi_half_widths_are_z_sd_over_root_n_and_z_sd() -> None:
    sd = np.array([math.sqrt(2.0), math.sqrt(2.0), 2.0 * math.sqrt(2.0)])
    np.testing.assert_allclose(curves.band_half_width(CURVES, "ci", 0.9, 10), Z90 * sd / math.sqrt(2.0))
    np.testing.assert_allclose(curves.band_half_width(CURVES, "pi", 0.9, 10), Z90 * sd)
    assert curves.normal_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.filterwarnings("ignore:1 runs are too few")
@pytest.mark.parametrize("kind", ["ci", "pi", "cb"])
def test_a_single_run_collapses_the_band(kind) -> None:
    np.testing.assert_array_equal(curves.band_half_width(CURVES[:1], kind, 0.9, 50), np.zeros(3))


def test_cb_of_two_runs_is_the_hand_computed_half_difference() -> None:
    # Resampling 2 runs: both equal (prob 1/2) gives deviation |d|/2 = sd/sqrt(2); one of each gives 0.
    # The 90% quantile of max |dev| / sd is therefore 1/sqrt(2), and the band is sd/sqrt(2) = |d|/2.
    with pytest.warns(UserWarning, match="too few"):
        half = curves.band_half_width(CURVES, "cb", 0.9, 500)
    np.testing.assert_allclose(half, [1.0, 1.0, 2.0])


def test_cb_is_reproducible_and_wider_than_the_pointwise_ci_with_many_runs() -> None:
    noisy = np.random.default_rng(7).normal(size=(30, 60)) + np.linspace(0, 5, 60)
    cb = curves.band_half_width(noisy, "cb", 0.9, 500)
    np.testing.assert_array_equal(cb, curves.band_half_width(noisy, "cb", 0.9, 500))
    assert np.all(cb >= curves.band_half_width(noisy, "ci", 0.9, 500))
    assert not np.array_equal(cb, curves.simultaneous_half_width(noisy, 0.9, 500, seed=1))  # the seed is used


def test_unknown_band_and_bad_level_are_rejected() -> None:
    with pytest.raises(ValueError, match="error_representation not implemented"):
        curves.band_half_width(CURVES, "sd", 0.9, 10)
    with pytest.raises(ValueError, match="level"):
        curves.normal_quantile(1.0)


@pytest.mark.parametrize(("n_boot", "level", "message"), [
    (0, 0.9, "n_boot must be at least 1, got 0"),
    (100, 1.0, "level must be strictly between 0 and 1, got 1.0"),
])
def test_band_arguments_are_named_as_rlberrys_plots_name_them(n_boot: int, level: float, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        curves.simultaneous_half_width(np.ones((5, 3)), level, n_boot)
