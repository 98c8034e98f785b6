"""rlpipe.core.hypothesis_tests on plain arrays: p-values checked against exact enumeration and by hand."""
from __future__ import annotations

import warnings
from itertools import combinations
from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy.stats import tukey_hsd

from rlpipe.core.hypothesis_tests import (
    compare_scores,
    pair_table,
    permutation_test,
    significance_stars,
    smallest_permutation_pvalue,
    step_down_pvalues,
    tukey_hsd_pvalues,
)


def scores_table(**groups: list[float]) -> pd.DataFrame:
    rows = [(name, value) for name, values in groups.items() for value in values]
    return pd.DataFrame(rows, columns=["agent", "mean_eval"])


def exact_pvalue(x: list[float], y: list[float]) -> float:
    """Two-sided permutation p-value of |mean(x) - mean(y)| over every split of the pooled scores."""
    pooled = np.array(x + y)
    observed = abs(np.mean(x) - np.mean(y))
    splits = [np.isin(np.arange(len(pooled)), first) for first in combinations(range(len(pooled)), len(x))]
    statistics = np.array([abs(pooled[s].mean() - pooled[~s].mean()) for s in splits])
    return float(np.mean(statistics >= observed - 1e-12))


def test_permutation_pvalue_of_separated_samples_is_two_of_seventy():
    # Among the comb(8, 4) = 70 splits of 0..7, only {0,1,2,3} and its mirror {4,5,6,7} reach |diff| = 4.
    p = permutation_test([[0, 1, 2, 3], [4, 5, 6, 7]], B=40_000, alpha=0.05, seed=0)
    assert exact_pvalue([0, 1, 2, 3], [4, 5, 6, 7]) == pytest.approx(2 / 70)
    assert p[0] == pytest.approx(2 / 70, abs=4 * np.sqrt(2 / 70 / 40_000))


@pytest.mark.parametrize("x, y", [([0.3, 1.1, 2.5], [0.9, 1.7, 2.0, 3.4, 4.1]),  # unequal sizes: 56 splits
                                  ([0.2, 1.3, 0.7, 2.2], [1.0, 2.9, 1.8, 2.4])])
def test_two_sample_permutation_pvalue_matches_enumeration(x, y):
    exact = exact_pvalue(x, y)
    p = permutation_test([x, y], B=40_000, alpha=0.05, seed=1)[0]
    assert 0.05 < exact < 0.9
    assert p == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 40_000))


def test_step_down_pvalues_by_hand():
    observed = np.array([3.0, 1.0, 2.0])
    permuted = np.array([[1.0, 0.5, 2.5],
                         [3.5, 0.2, 0.1],
                         [0.5, 0.9, 1.0],
                         [2.0, 0.8, 2.2]])
    # Rank 1, hypothesis 0 (3.0) vs row maxima 2.5, 3.5, 1.0, 2.2: one hit -> (1 + 1) / 5 = 0.4.
    # Rank 2, hypothesis 2 (2.0) vs maxima of columns 2 and 1: 2.5, 0.2, 1.0, 2.2: two hits -> 0.6.
    # Rank 3, hypothesis 1 (1.0) vs column 1: no hit -> 0.2, raised to 0.6 to keep the step-down monotone.
    assert step_down_pvalues(observed, permuted) == pytest.approx([0.4, 0.6, 0.6])


def test_three_agents_step_down_rejects_only_the_different_one():
    a = [0.1, -0.4, 0.8, 0.3, -0.2, 0.5, -0.6, 0.0]
    b = [0.2, -0.3, 0.6, -0.1, 0.4, -0.5, 0.7, 0.05]
    table = compare_scores(scores_table(A=a, B=b, C=[v + 6 for v in a]), method="permutation", B=5000, seed=2)
    assert table["Agent1 vs Agent2"].tolist() == ["A vs B", "A vs C", "B vs C"]
    assert table["decisions"].tolist() == ["accept", "reject", "reject"]
    assert list(table.columns) == ["Agent1 vs Agent2", "mean Agent1", "mean Agent2", "mean diff", "std diff",
                                   "decisions"]


def test_permutation_draws_are_seeded():
    samples = [[0.2, 1.3, 0.7, 2.2, 0.4], [1.0, 2.9, 1.8, 2.4, 0.1], [0.5, 0.6, 2.0, 1.1, 1.5]]
    first = permutation_test(samples, B=2000, seed=7)
    assert np.array_equal(first, permutation_test(samples, B=2000, seed=7))
    assert not np.array_equal(first, permutation_test(samples, B=2000, seed=8))


def test_too_few_fits_or_draws_for_alpha_raise():
    assert smallest_permutation_pvalue(3, 3) == pytest.approx(2 / 20)
    assert smallest_permutation_pvalue(3, 5) == pytest.approx(1 / comb(8, 3))
    with pytest.raises(ValueError, match="too few fits for alpha=0.05.*3 against 3 scores"):
        permutation_test([[0, 1, 2], [5, 6, 7]], alpha=0.05)
    with pytest.raises(ValueError, match="B=10 permutations"):
        permutation_test([[0, 1, 2, 3], [4, 5, 6, 7]], B=10, alpha=0.05)
    assert permutation_test([[0, 1], list(range(10, 20))], B=2000, alpha=0.05, seed=0)[0] <= 0.05  # 1/66 reachable


def test_tukey_pvalues_and_stars():
    samples = [np.array([1.0, 2, 3, 4]), np.array([2.0, 3, 5, 6, 4]), np.array([9.0, 8, 10])]
    expected = tukey_hsd(*samples).pvalue
    assert tukey_hsd_pvalues(samples) == pytest.approx([expected[0, 1], expected[0, 2], expected[1, 2]])
    stars = significance_stars(np.array([0.0005, 0.001, 0.005, 0.01, 0.05, 0.051, np.nan]))
    assert stars.tolist() == ["***", "**", "**", "*", "*", "", ""]


def test_tukey_on_constant_equal_scores_accepts_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = compare_scores(scores_table(A=[1.0] * 4, B=[1.0] * 4, C=[3.0] * 4))
    assert table["decisions"].tolist() == ["accept", "reject", "reject"]  # rlberry's `p >= alpha` rejects NaN
    assert np.isnan(table["p-val"][0]) and table["significance"].tolist() == ["", "***", "***"]


def test_std_diff_is_the_spread_of_all_cross_differences():
    table = pair_table({"A": np.array([0.0, 2.0]), "B": np.array([1.0, 1.0, 4.0])})
    cross = np.subtract.outer([0.0, 2.0], [1.0, 1.0, 4.0])
    assert table["mean diff"][0] == pytest.approx(cross.mean()) == pytest.approx(-1.0)
    assert table["std diff"][0] == pytest.approx(cross.std()) == pytest.approx(np.sqrt(3.0))


def test_bad_method_or_table_raise():
    with pytest.raises(ValueError, match=r"'anova'.*\('tukey_hsd', 'permutation'\)"):
        compare_scores(scores_table(A=[1.0, 2.0], B=[3.0, 4.0]), method="anova")
    with pytest.raises(ValueError, match="mean_eval"):
        compare_scores(pd.DataFrame({"agent": ["A", "B"], "score": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="at least two agents"):
        compare_scores(scores_table(A=[1.0, 2.0, 3.0]))
