"""rlpipe.core.cross_env: metrics across environments (Agarwal et al. 2021, rliable's formulas) on small arrays
computed by hand, the stratified bootstrap (reproducible, within tasks, nominal coverage) and bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu, trim_mean

from rlpipe.core import cross_env
from rlpipe.core.statistics import interquartile_mean

# Two tasks with unequal run counts: each run of a weighs 1/4, each run of b 1/6.
UNEQUAL = {"a": [0.0, 0.8], "b": [0.2, 0.4, 1.3]}
# A third task with one run, which then weighs 1/3 (a's runs 1/6, b's 1/9).
THREE = {**UNEQUAL, "c": [2.0]}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------- normalize
def test_normalize_maps_random_to_0_and_optimum_to_1():
    assert cross_env.normalize([22.0, 500.0, 261.0, 0.0], 22.0, 500.0).tolist() == [0.0, 1.0, 0.5, -22.0 / 478.0]
    assert cross_env.normalize(0.5, 1.0, 0.0) == 0.5  # a lower-is-better reference works too


@pytest.mark.parametrize(("low", "high", "message"), [(3.0, 3.0, "low == high"), (float("nan"), 1.0, "finite"),
                                                       (0.0, float("inf"), "finite")])
def test_normalize_refuses_references_that_cannot_normalise(low, high, message):
    with pytest.raises(ValueError, match=message):
        cross_env.normalize([1.0], low, high)


# ---------------------------------------------------------------------------------------------- point metrics
def test_point_metrics_of_two_tasks_with_unequal_run_counts():
    # task means: a (0.0 + 0.8) / 2 = 0.4, b (0.2 + 0.4 + 1.3) / 3 = 0.6333
    assert cross_env.mean(UNEQUAL) == pytest.approx((0.4 + 1.9 / 3) / 2)
    assert cross_env.median(UNEQUAL) == pytest.approx((0.4 + 1.9 / 3) / 2)  # median of two values: their mean
    # sorted runs and the parts of [0, 1] they cover: 0.0 [0, 1/4], 0.2 [1/4, 5/12], 0.4 [5/12, 7/12],
    # 0.8 [7/12, 5/6], 1.3 [5/6, 1]; the middle half [1/4, 3/4] holds 1/6 of each of 0.2, 0.4 and 0.8
    assert cross_env.iqm(UNEQUAL) == pytest.approx((0.2 + 0.4 + 0.8) / 6 / 0.5)
    # min(score, 1): b's mean becomes (0.2 + 0.4 + 1.0) / 3
    assert cross_env.optimality_gap(UNEQUAL) == pytest.approx(1.0 - (0.4 + 1.6 / 3) / 2)


def test_point_metrics_of_three_tasks():
    # task means 0.4, 0.6333, 2.0
    assert cross_env.median(THREE) == pytest.approx(1.9 / 3)
    assert cross_env.mean(THREE) == pytest.approx((0.4 + 1.9 / 3 + 2.0) / 3)
    # covered parts: 0.0 [0, 1/6], 0.2 [1/6, 5/18], 0.4 [5/18, 7/18], 0.8 [7/18, 5/9], 1.3 [5/9, 2/3], 2.0 [2/3, 1];
    # within [1/4, 3/4]: 0.2 1/36, 0.4 4/36, 0.8 6/36, 1.3 4/36, 2.0 3/36 (18/36 in all)
    assert cross_env.iqm(THREE) == pytest.approx((0.2 * 1 + 0.4 * 4 + 0.8 * 6 + 1.3 * 4 + 2.0 * 3) / 36 / 0.5)
    assert cross_env.optimality_gap(THREE) == pytest.approx(1.0 - (0.4 + 1.6 / 3 + 1.0) / 3)


def test_a_task_with_more_runs_does_not_weigh_more():
    """Pooling the runs (rliable's trim_mean over all of them) would let b's three runs outweigh a's two."""
    pooled = interquartile_mean(np.array([0.0, 0.8, 0.2, 0.4, 1.3]))  # (0.75 * 0.2 + 0.4 + 0.75 * 0.8) / 2.5
    assert pooled == pytest.approx(0.46)
    assert cross_env.iqm(UNEQUAL) == pytest.approx(1.4 / 3) != pytest.approx(pooled)


@pytest.mark.parametrize("n", range(1, 14))
def test_iqm_of_equal_weights_is_the_fractional_iqm_of_statistics(n):
    values = np.random.default_rng(n).normal(size=n)
    assert cross_env.iqm({"task": values}) == pytest.approx(interquartile_mean(values), rel=1e-12, abs=1e-15)
    tasks = {f"t{k}": np.random.default_rng([n, k]).normal(size=n) for k in range(3)}  # equal counts: equal weights
    assert cross_env.iqm(tasks) == pytest.approx(interquartile_mean(np.concatenate(list(tasks.values()))), rel=1e-12)


@pytest.mark.parametrize(("n_tasks", "n_runs"), [(1, 4), (1, 8), (2, 2), (3, 4), (5, 12), (4, 10)])
def test_iqm_is_rliables_trim_mean_when_the_run_count_is_a_multiple_of_4(n_tasks, n_runs):
    scores = np.random.default_rng(n_tasks * n_runs).exponential(size=(n_runs, n_tasks))  # rliable: (runs, tasks)
    assert cross_env.iqm({str(t): scores[:, t] for t in range(n_tasks)}) == pytest.approx(
        trim_mean(scores, proportiontocut=0.25, axis=None), rel=1e-12)


def test_point_metrics_do_not_depend_on_the_order_of_tasks_or_runs():
    shuffled = {"b": [1.3, 0.2, 0.4], "c": [2.0], "a": [0.8, 0.0]}
    for metric in (cross_env.iqm, cross_env.median, cross_env.mean, cross_env.optimality_gap):
        assert metric(shuffled) == pytest.approx(metric(THREE))


# ---------------------------------------------------------------------------------------------- aggregate_metrics
def test_aggregate_metrics_table():
    table = cross_env.aggregate_metrics({"A": UNEQUAL, "B": THREE}, rng(), n_resamples=300, confidence=0.9)
    assert list(table.columns) == cross_env.AGGREGATE_COLUMNS
    assert table[["algorithm", "metric"]].values.tolist() == [[a, m] for a in "AB" for m in cross_env.METRICS]
    assert table["estimate"].tolist() == pytest.approx([cross_env.iqm(UNEQUAL), cross_env.median(UNEQUAL),
                                                        cross_env.mean(UNEQUAL), cross_env.optimality_gap(UNEQUAL),
                                                        cross_env.iqm(THREE), cross_env.median(THREE),
                                                        cross_env.mean(THREE), cross_env.optimality_gap(THREE)])
    assert table["n_tasks"].tolist() == [2] * 4 + [3] * 4 and table["n_runs"].tolist() == [5] * 4 + [6] * 4
    assert (table["confidence"] == 0.9).all() and (table["n_resamples"] == 300).all()
    assert (table["ci_low"] <= table["ci_high"]).all()


def test_intervals_are_reproducible_from_the_seed():
    scores = {"A": UNEQUAL, "B": THREE}
    first = cross_env.aggregate_metrics(scores, rng(5), n_resamples=500)
    pd.testing.assert_frame_equal(first, cross_env.aggregate_metrics(scores, rng(5), n_resamples=500))
    other = cross_env.aggregate_metrics(scores, rng(6), n_resamples=500)
    assert not np.array_equal(first["ci_low"], other["ci_low"])
    pd.testing.assert_frame_equal(first[["estimate"]], other[["estimate"]])  # the estimates draw nothing


def test_a_resample_never_moves_a_run_to_another_task():
    scores = {"a": [0.0, 0.1, 0.2], "b": [10.0, 11.0], "c": [100.0]}
    resampled = cross_env.stratified_resamples(scores, rng(), n_resamples=1000)
    assert list(resampled) == ["a", "b", "c"]
    for task, values in scores.items():
        assert resampled[task].shape == (1000, len(values))  # every resample has each task's own number of runs
        assert set(np.unique(resampled[task])) == set(values)  # drawn from that task's runs only (and all of them)


def test_one_run_per_task_leaves_nothing_to_resample():
    """Runs are resampled within tasks: with one run per task every resample is the data itself, so every interval
    collapses onto its estimate (a bootstrap that pooled the tasks' runs would not)."""
    table = cross_env.aggregate_metrics({"A": {"a": [0.1], "b": [0.9], "c": [0.4], "d": [2.0]}}, rng(), n_resamples=200)
    assert table["ci_low"].tolist() == pytest.approx(table["estimate"].tolist())
    assert table["ci_high"].tolist() == pytest.approx(table["estimate"].tolist())


def test_intervals_of_the_mean_cover_the_truth_at_their_nominal_level():
    """1500 simulated studies (5 tasks x 40 runs, normal scores of known means): the 95% interval of the mean contains
    the true mean in 93 to 97% of them. Expected: about 94.6% (the percentile bootstrap is narrow by sqrt((n-1)/n));
    the Monte Carlo standard error is 0.6 points, and other seeds gave 93.8 to 94.6%."""
    means, spreads = np.array([0.1, 0.3, 0.5, 0.7, 0.9]), np.array([0.1, 0.2, 0.3, 0.2, 0.1])
    truth = means.mean()
    simulation = np.random.default_rng(2021)
    covered, n_studies = 0, 1500
    for _ in range(n_studies):
        data = simulation.normal(means, spreads, size=(40, 5))
        row = cross_env.aggregate_metrics({"A": {str(t): data[:, t] for t in range(5)}}, simulation, metrics=("mean",),
                                          n_resamples=500).iloc[0]
        covered += row.ci_low <= truth <= row.ci_high
    assert 0.93 <= covered / n_studies <= 0.97


# ---------------------------------------------------------------------------------------------- performance profiles
def test_performance_profiles_count_runs_strictly_above_each_threshold():
    table = cross_env.performance_profiles({"A": UNEQUAL}, rng(), thresholds=[1.0, 0.0, 0.3, 0.8, 0.3], n_resamples=200)
    assert list(table.columns) == cross_env.PROFILE_COLUMNS
    assert table["threshold"].tolist() == [0.0, 0.3, 0.8, 1.0]  # sorted, duplicates dropped
    # tau 0: a 1/2, b 1; 0.3: a 1/2, b 2/3; 0.8: a 0 (0.8 is not above 0.8), b 1/3; 1.0: a 0, b 1/3
    assert table["fraction"].tolist() == pytest.approx([0.75, (0.5 + 2 / 3) / 2, 1 / 6, 1 / 6])
    assert (table["ci_low"] <= table["fraction"] + 1e-12).all() and (table["fraction"] <= table["ci_high"] + 1e-12).all()


def test_profile_bands_are_the_profiles_of_the_resampled_runs():
    """The profile of a resample is computed from counts of draws; here from the resampled runs themselves."""
    scores = {"a": [0.1, 0.5, 0.9, 0.3], "b": [0.2, 0.8]}
    taus = np.array([0.0, 0.25, 0.5, 0.75])
    table = cross_env.performance_profiles({"A": scores}, rng(1), thresholds=taus, n_resamples=500, confidence=0.9)
    resampled = cross_env.stratified_resamples(scores, rng(1), n_resamples=500)  # the same draws
    fractions = np.mean([(runs[..., None] > taus).mean(axis=1) for runs in resampled.values()], axis=0)
    np.testing.assert_allclose(table[["ci_low", "ci_high"]].to_numpy().T, np.quantile(fractions, [0.05, 0.95], axis=0))


def test_default_thresholds_span_random_to_optimum_and_every_score():
    assert cross_env.profile_thresholds({"A": UNEQUAL}, n_points=3).tolist() == [0.0, 0.65, 1.3]
    assert cross_env.profile_thresholds({"A": {"a": [0.2, 0.5]}}, n_points=3).tolist() == [0.0, 0.5, 1.0]
    assert cross_env.profile_thresholds({"A": {"a": [-1.0]}}, n_points=3).tolist() == [-1.0, 0.0, 1.0]
    table = cross_env.performance_profiles({"A": UNEQUAL, "B": THREE}, rng(), n_resamples=100)
    assert table.groupby("algorithm")["threshold"].agg(["min", "max", "size"]).values.tolist() == [[0.0, 2.0, 101]] * 2


# ---------------------------------------------------------------------------------------------- probability of improvement
def test_probability_of_improvement_by_hand():
    x = {"a": [1.0, 2.0, 3.0], "b": [0.5]}
    y = {"a": [2.0, 0.0], "b": [0.5, 0.7, 0.1], "c": [9.0]}
    # a: 1 vs (2, 0): 0 + 1; 2 vs (2, 0): 1/2 + 1; 3 vs (2, 0): 1 + 1 -> 4.5 / 6 = 0.75
    # b: 0.5 vs (0.5, 0.7, 0.1): 1/2 + 0 + 1 -> 1.5 / 3 = 0.5;  c: only Y ran on it, left out
    table = cross_env.probability_of_improvement({"X": x, "Y": y}, rng(), n_resamples=300)
    assert list(table.columns) == cross_env.IMPROVEMENT_COLUMNS
    assert table[["algorithm_x", "algorithm_y"]].values.tolist() == [["X", "Y"], ["Y", "X"]]
    assert table["probability"].tolist() == pytest.approx([0.625, 0.375])
    assert table["n_tasks"].tolist() == [2, 2]
    assert table["n_runs_x"].tolist() == [4, 5] and table["n_runs_y"].tolist() == [5, 4]  # runs on the common tasks


def test_probability_of_improvement_is_rliables_mann_whitney_statistic():
    generator = np.random.default_rng(3)
    x = {str(t): generator.integers(0, 4, size=7).astype(float) for t in range(3)}  # ties on purpose
    y = {str(t): generator.integers(0, 4, size=5).astype(float) for t in range(3)}
    expected = np.mean([mannwhitneyu(x[t], y[t], alternative="greater").statistic / 35 for t in x])
    table = cross_env.probability_of_improvement({"X": x, "Y": y}, rng(), n_resamples=100)
    assert table["probability"].iloc[0] == pytest.approx(expected)


def test_improvement_intervals_are_those_of_the_resampled_runs():
    """A resample's P(X > Y) is computed as a quadratic form of counts of draws; here from the resampled runs."""
    x, y = {"a": [1.0, 2.0, 3.0], "b": [0.5, 0.1]}, {"a": [2.0, 0.0], "b": [0.5, 0.7, 0.1]}
    table = cross_env.probability_of_improvement({"X": x, "Y": y}, rng(2), n_resamples=400, confidence=0.8)
    draws, per_task = rng(2), []
    for task in ("a", "b"):  # per common task, X's runs then Y's, as the function draws them
        xs = np.asarray(x[task])[draws.integers(0, len(x[task]), size=(400, len(x[task])))]
        ys = np.asarray(y[task])[draws.integers(0, len(y[task]), size=(400, len(y[task])))]
        per_task.append(((np.sign(xs[:, :, None] - ys[:, None, :]) + 1) / 2).mean(axis=(1, 2)))
    low, high = np.quantile(np.mean(per_task, axis=0), [0.1, 0.9])
    assert (table.ci_low.iloc[0], table.ci_high.iloc[0]) == pytest.approx((low, high))


@pytest.mark.parametrize("ties", [False, True])
def test_probability_of_improvement_of_a_pair_and_its_reverse_add_up_to_1(ties):
    generator = np.random.default_rng(4)
    draw = (lambda n: generator.integers(0, 3, size=n).astype(float)) if ties else (lambda n: generator.normal(size=n))
    scores = {name: {str(t): draw(6 + t) for t in range(3)} for name in ("X", "Y", "Z")}
    table = cross_env.probability_of_improvement(scores, rng(), n_resamples=400).set_index(["algorithm_x", "algorithm_y"])
    assert len(table) == 6
    for x, y in [("X", "Y"), ("X", "Z"), ("Y", "Z")]:
        forward, reverse = table.loc[(x, y)], table.loc[(y, x)]
        assert forward.probability + reverse.probability == pytest.approx(1.0)
        assert forward.ci_low == pytest.approx(1.0 - reverse.ci_high) and forward.ci_high == pytest.approx(1.0 - reverse.ci_low)
    swapped = cross_env.probability_of_improvement({"Y": scores["Y"], "X": scores["X"]}, rng(), n_resamples=400)
    assert swapped.set_index(["algorithm_x", "algorithm_y"]).loc[("X", "Y")].probability == pytest.approx(
        table.loc[("X", "Y")].probability)


def test_algorithms_without_a_common_task_are_not_compared():
    table = cross_env.probability_of_improvement({"X": {"a": [1.0]}, "Y": {"b": [0.0]}}, rng(), n_resamples=100)
    assert table.empty and list(table.columns) == cross_env.IMPROVEMENT_COLUMNS


# ---------------------------------------------------------------------------------------------- sample efficiency
def curves(*runs: tuple[list[float], list[float]]) -> pd.DataFrame:
    return pd.DataFrame([(i, x, v) for i, (xs, vs) in enumerate(runs) for x, v in zip(xs, vs)],
                        columns=["instance", "x", "value"])


# task a: two runs from x 0 to 10, values x/10 and x/5; task b: one run from x 2 to 12, value 1
SAMPLE = {"a": curves(([0, 10], [0.0, 1.0]), ([0, 10], [0.0, 2.0])), "b": curves(([2, 12], [1.0, 1.0]))}


def test_curves_go_on_the_x_range_every_run_covers():
    grid, matrices = cross_env.curves_on_grid("A", SAMPLE, n_points=5)
    assert grid.tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]  # the latest start (b's 2) to the earliest end (a's 10)
    np.testing.assert_allclose(matrices["a"], [[0.2, 0.4, 0.6, 0.8, 1.0], [0.4, 0.8, 1.2, 1.6, 2.0]])
    assert matrices["b"].tolist() == [[1.0] * 5]


def test_sample_efficiency_curves_by_hand():
    table = cross_env.sample_efficiency_curves({"A": SAMPLE}, rng(), metric="mean", n_points=5, n_resamples=200)
    assert list(table.columns) == cross_env.CURVE_COLUMNS
    # task means: a 1.5 x / 10, b 1
    assert table["estimate"].tolist() == pytest.approx([0.65, 0.8, 0.95, 1.1, 1.25])
    iqm = cross_env.sample_efficiency_curves({"A": SAMPLE}, rng(), n_points=5, n_resamples=200)
    # at x = 2: 0.2 covers [0, 1/4], 0.4 [1/4, 1/2], b's 1 [1/2, 1] -> (0.4 / 4 + 1 / 4) / 0.5 = 0.7;
    # at x = 10: 1.0 (a) [0, 1/4], 1.0 (b) [1/4, 3/4], 2.0 [3/4, 1] -> 1.0
    assert iqm["estimate"].iloc[[0, -1]].tolist() == pytest.approx([0.7, 1.0])
    assert (iqm["metric"] == "iqm").all() and (iqm["n_tasks"] == 2).all() and (iqm["n_runs"] == 3).all()
    assert (table["ci_low"] <= table["ci_high"]).all()


def test_sample_efficiency_bands_do_not_depend_on_the_chunks_of_x(monkeypatch):
    scores = {"A": {task: curves(*[(np.arange(0.0, 50.0), np.random.default_rng([k, i]).random(50)) for i in range(6)])
                    for k, task in enumerate("abc")}}
    whole = cross_env.sample_efficiency_curves(scores, rng(9), n_points=40, n_resamples=300)
    monkeypatch.setattr(cross_env, "_CHUNK_ELEMENTS", 1000)  # about one x at a time
    pd.testing.assert_frame_equal(whole, cross_env.sample_efficiency_curves(scores, rng(9), n_points=40, n_resamples=300))


def test_curves_without_a_common_x_range_are_refused():
    with pytest.raises(ValueError, match=r"algorithm 'A': its runs share no common x range \(latest start 20 > earliest end 10\)"):
        cross_env.sample_efficiency_curves({"A": {"a": curves(([0, 10], [0, 1])), "b": curves(([20, 30], [0, 1]))}}, rng())


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("scores", "message"), [
    ({}, "no algorithms"),
    ({"A": {}}, "algorithm 'A' has no tasks"),
    ({"A": {"a": []}}, "algorithm 'A' on task 'a': no runs"),
    ({"A": {"a": [1.0, float("nan"), float("inf")]}}, "algorithm 'A' on task 'a': 2 of 3 scores are NaN or infinite"),
    ({"A": {"a": [[1.0, 2.0]]}}, r"algorithm 'A' on task 'a': expected a 1-D array of per-run scores, got shape \(1, 2\)"),
])
def test_bad_scores_are_refused_naming_algorithm_and_task(scores, message):
    for compute in (cross_env.aggregate_metrics, cross_env.performance_profiles, cross_env.probability_of_improvement):
        with pytest.raises(ValueError, match=message):
            compute(scores, rng())


@pytest.mark.parametrize(("kwargs", "message"), [({"metrics": ("iqr",)}, "unknown metric 'iqr'"),
                                                 ({"n_resamples": 0}, "n_resamples must be at least 1"),
                                                 ({"confidence": 1.0}, "confidence must be strictly between 0 and 1")])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cross_env.aggregate_metrics({"A": UNEQUAL}, rng(), **kwargs)


def test_bad_curves_and_thresholds_are_refused():
    with pytest.raises(ValueError, match="curve point"):
        cross_env.sample_efficiency_curves({"A": {"a": curves(([0, float("nan")], [0, 1]))}}, rng())
    with pytest.raises(ValueError, match=r"lack column\(s\) \['instance'\]"):
        cross_env.sample_efficiency_curves({"A": {"a": pd.DataFrame({"x": [0.0], "value": [1.0]})}}, rng())
    with pytest.raises(ValueError, match="thresholds must be one or more finite numbers"):
        cross_env.performance_profiles({"A": UNEQUAL}, rng(), thresholds=[])
