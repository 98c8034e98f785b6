"""Multiple comparisons of agents from their scores (one score per fitted instance): pure numpy/scipy.

The input is a table with columns ``agent`` and ``mean_eval``; agents may have different numbers of
scores. Pairs are ``(i, j)`` with ``i < j`` in the agents' order of first appearance, row-major:
``(0, 1), (0, 2), …, (1, 2), …`` (rlberry's order). Nothing here knows about managers, so the tests
can be checked on plain arrays. scipy is imported here only: ``import rlpipe`` never pays for it.
"""
from __future__ import annotations

from collections.abc import Sequence
from math import comb

import numpy as np
import pandas as pd

METHODS = ("tukey_hsd", "permutation")
# Two statistics closer than this (relative to the largest |score|) count as equal: a permuted split equal to
# the observed one must count as "at least as extreme" even when rounding made it a hair smaller.
_RELATIVE_TOLERANCE = 1e3 * np.finfo(float).eps


def check_method(method: str) -> None:
    """Fail before any costly evaluation when the method is unknown."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {METHODS}")


def compare_scores(scores: pd.DataFrame, method: str = "tukey_hsd", alpha: float = 0.05, B: int = 10_000,
                   seed: int | np.random.SeedSequence | None = None) -> pd.DataFrame:
    """One row per pair of agents: means, difference, its spread and the test's decision ("accept"/"reject").

    ``"tukey_hsd"`` adds ``p-val`` and ``significance`` (Tukey–Kramer for unequal sizes) and rejects when
    ``p < alpha``. ``"permutation"`` is :func:`permutation_test` (``B`` draws from ``seed``) and rejects when
    its adjusted p-value is ``<= alpha``. Both control the family-wise error rate at ``alpha``.
    """
    check_method(method)
    groups = score_groups(scores)
    table = pair_table(groups)
    samples = list(groups.values())
    if method == "tukey_hsd":
        pvalues = tukey_hsd_pvalues(samples)
        return table.assign(decisions=np.where(pvalues < alpha, "reject", "accept"), **{
            "p-val": pvalues, "significance": significance_stars(pvalues)})
    pvalues = permutation_test(samples, B=B, alpha=alpha, seed=seed)
    return table.assign(decisions=np.where(pvalues <= alpha, "reject", "accept"))


def score_groups(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """``{agent: its scores}`` in order of first appearance (the order of the table's pairs)."""
    missing = {"agent", "mean_eval"} - set(scores.columns)
    if missing:
        raise ValueError(f"the scores table lacks the column(s) {sorted(missing)}; it needs 'agent' and 'mean_eval'")
    by_agent = scores.groupby("agent", sort=False)["mean_eval"]
    groups = {str(name): values.to_numpy(dtype=float) for name, values in by_agent}
    if len(groups) < 2:
        raise ValueError(f"comparing agents needs at least two agents, got {list(groups)}")
    return groups


def pair_indices(n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``(first, second)`` indices of every pair ``i < j``, in row-major order."""
    return np.triu_indices(n_groups, k=1)


def pair_table(groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """The descriptive columns of the comparison table.

    ``std diff`` is the standard deviation of all differences between a score of Agent1 and a score of
    Agent2, ``sqrt(var1 + var2)`` (population variances). rlberry subtracts fit ``k`` of one agent from fit
    ``k`` of the other, which needs equal sizes and depends on the arbitrary order of independent fits.
    """
    names = list(groups)
    first, second = pair_indices(len(names))
    means = np.array([values.mean() for values in groups.values()])
    variances = np.array([values.var() for values in groups.values()])
    return pd.DataFrame({
        "Agent1 vs Agent2": [f"{names[i]} vs {names[j]}" for i, j in zip(first, second, strict=True)],
        "mean Agent1": means[first],
        "mean Agent2": means[second],
        "mean diff": means[first] - means[second],
        "std diff": np.sqrt(variances[first] + variances[second]),
    })


def tukey_hsd_pvalues(samples: Sequence[np.ndarray]) -> np.ndarray:
    """Tukey HSD p-value of every pair (scipy's ``tukey_hsd``).

    Constant samples make the statistic 0/0: the p-value is NaN (no evidence either way, hence "accept"),
    without scipy's division warnings.
    """
    from scipy.stats import tukey_hsd

    first, second = pair_indices(len(samples))
    with np.errstate(divide="ignore", invalid="ignore"):
        return tukey_hsd(*samples).pvalue[first, second]


def significance_stars(pvalues: np.ndarray) -> np.ndarray:
    """rlberry's stars: ``***`` p < 0.001, ``**`` p < 0.01, ``*`` p <= 0.05, else ""."""
    return np.select([pvalues < 0.001, pvalues < 0.01, pvalues <= 0.05], ["***", "**", "*"], default="")


def smallest_permutation_pvalue(n1: int, n2: int) -> float:
    """The smallest p-value an exact two-sided permutation test of ``n1`` against ``n2`` scores can give.

    Only the observed split reaches the most extreme |mean difference| (and its mirror, when the sizes
    are equal), among ``comb(n1 + n2, n1)`` equally likely splits.
    """
    return (1 + (n1 == n2)) / comb(n1 + n2, n1)


def check_permutation_precision(sizes: Sequence[int], B: int, alpha: float) -> None:
    """Refuse a test that could never reject some pair at level ``alpha``: too few fits, or too few draws."""
    if (1 + B) * alpha < 1:
        smallest_b = int(np.ceil(1 / alpha)) - 1
        raise ValueError(f"B={B} permutations cannot give a p-value <= alpha={alpha}: use B >= {smallest_b}")
    first, second = pair_indices(len(sizes))
    weak = [(sizes[i], sizes[j]) for i, j in zip(first, second, strict=True)
            if smallest_permutation_pvalue(sizes[i], sizes[j]) > alpha]
    if weak:
        n1, n2 = weak[0]
        raise ValueError(
            f"too few fits for alpha={alpha}: a permutation test of {n1} against {n2} scores cannot give a p-value "
            f"below {smallest_permutation_pvalue(n1, n2):.3g}, so such pairs could never be declared different; "
            "fit more instances or raise alpha"
        )


def permutation_test(samples: Sequence[np.ndarray], B: int = 10_000, alpha: float = 0.05,
                     seed: int | np.random.SeedSequence | None = None) -> np.ndarray:
    """Step-down max-T permutation test of "equal distributions" for every pair: adjusted p-values.

    The statistic of a pair is ``|mean_i - mean_j|``. Each of the ``B`` draws relabels every pair's pooled
    scores uniformly at random (so each pair's null distribution is that pair's own exact permutation
    distribution, whatever the group sizes); the pairs share the draw through one random key per score,
    so pairs with a common agent are permuted consistently. The step-down (Lehmann & Romano, 15.4.4) is
    :func:`step_down_pvalues`. ``ValueError`` when some pair could never be rejected at ``alpha``.
    """
    samples = [np.asarray(values, dtype=float) for values in samples]
    check_permutation_precision([len(values) for values in samples], B, alpha)
    first, second = pair_indices(len(samples))
    means = np.array([values.mean() for values in samples])
    observed = np.abs(means[first] - means[second])
    permuted = permuted_differences(samples, B, np.random.default_rng(seed))
    scale = max(np.abs(values).max() for values in samples)
    return step_down_pvalues(observed, permuted, tolerance=_RELATIVE_TOLERANCE * scale)


def permuted_differences(samples: Sequence[np.ndarray], B: int, rng: np.random.Generator) -> np.ndarray:
    """``|mean difference|`` of every pair (columns) under ``B`` random relabellings (rows).

    Every score gets a uniform key per draw; in a pair, the ``n_i`` scores with the smallest keys form
    the first group. That split is uniform for each pair, and a score moves the same way in every pair.
    """
    sizes = np.array([len(values) for values in samples])
    starts = np.cumsum(sizes) - sizes
    keys = rng.random((B, sizes.sum()))
    columns = []
    for i, j in zip(*pair_indices(len(samples)), strict=True):
        pooled = np.concatenate([samples[i], samples[j]])
        positions = np.r_[starts[i]:starts[i] + sizes[i], starts[j]:starts[j] + sizes[j]]
        first_group = np.argsort(keys[:, positions], axis=1)[:, : sizes[i]]
        first_sum = pooled[first_group].sum(axis=1)
        columns.append(np.abs(first_sum / sizes[i] - (pooled.sum() - first_sum) / sizes[j]))
    return np.column_stack(columns)


def step_down_pvalues(observed: np.ndarray, permuted: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """Step-down max-T adjusted p-values (Westfall & Young) of statistics ``observed`` given draws ``permuted``.

    Ranked from the largest statistic down, hypothesis ``r`` is compared with the maximum, in each draw,
    of the statistics of the hypotheses not yet rejected (``r`` and below). Rejecting ``p <= alpha`` is
    rlberry's loop "reject the largest while it beats the (1 - alpha) quantile of the max over the
    remaining pairs", except that the observed labelling counts as one of the draws, ``(1 + #draws at
    least as large) / (1 + B)``, which keeps the Monte-Carlo p-value valid. P-values are made
    non-decreasing down the ranking, so a pair is rejected only if all larger ones are.
    """
    order = np.argsort(-observed, kind="stable")
    successive_max = np.maximum.accumulate(permuted[:, order[::-1]], axis=1)[:, ::-1]
    hits = (successive_max >= observed[order] - tolerance).sum(axis=0)
    adjusted = np.empty(len(observed))
    adjusted[order] = np.maximum.accumulate((1 + hits) / (1 + len(permuted)))
    return adjusted
