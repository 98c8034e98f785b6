"""A one-sided paired test of "the candidate scores higher": the sign-flip (randomisation) test, pure numpy.

The tuning confirmation refits each candidate setting on the same fresh seeds as the config's own setting, so
the per-seed differences ``d_j = candidate_j - current_j`` are paired. Under "no difference" each ``d_j`` is as likely
positive as negative (symmetric about 0), so every one of the ``2**n`` sign flips of ``d`` is an equally likely
data set; the p-value is the share of them whose sum is at least the observed sum. It assumes nothing about the
scores' distribution (FrozenLake returns are bounded and skewed), and is exact for ``n <=`` :data:`EXACT_MAX_PAIRS`;
beyond, :data:`MONTE_CARLO_FLIPS` seeded random flips estimate it (the observed signs counted as one draw, so the
estimate stays a valid p-value). Its smallest possible value, ``2**-n``, is why a confirmation needs enough seeds.
"""
from __future__ import annotations

import numpy as np

# Up to this many pairs every sign flip is enumerated (2**16 x 16 signs: a few MB, milliseconds).
EXACT_MAX_PAIRS = 16
# Beyond, this many random flips.
MONTE_CARLO_FLIPS = 2**16
_CHUNK = 2**12
# Two sums closer than this (relative to sum |d|) count as equal: a flip equal to the observed signs up to rounding
# must count as "at least as extreme" (a zero difference flipped, say).
_RELATIVE_TOLERANCE = 1e3 * np.finfo(float).eps


def smallest_sign_flip_pvalue(n: int) -> float:
    """The smallest p-value :func:`sign_flip_pvalue` can give on ``n`` pairs: every difference positive, so that only
    the observed signs reach the observed sum (``2**-n``), or one Monte-Carlo hit among ``1 + MONTE_CARLO_FLIPS``."""
    if n < 1:
        raise ValueError(f"a paired test needs at least one pair, got {n}")
    return 0.5**n if n <= EXACT_MAX_PAIRS else 1.0 / (MONTE_CARLO_FLIPS + 1)


def sign_flip_pvalue(differences: np.ndarray, seed: int | np.random.SeedSequence | None = None) -> float:
    """One-sided p-value of "the paired differences are symmetric about 0" against "they tend to be positive".

    ``P(sum(s * d) >= sum(d))`` over sign vectors ``s`` uniform on ``{-1, 1}**n``: enumerated for ``n <=``
    :data:`EXACT_MAX_PAIRS` (``seed`` unused), else ``(1 + hits) / (1 + MONTE_CARLO_FLIPS)`` over random flips drawn
    from ``seed``. All differences 0 give 1. NaN or an empty input is an error.
    """
    d = np.asarray(differences, dtype=float).ravel()
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"a paired test needs finite differences, got {d.tolist()}")
    observed = d.sum()
    tolerance = _RELATIVE_TOLERANCE * max(np.abs(d).sum(), np.finfo(float).tiny)
    if d.size <= EXACT_MAX_PAIRS:
        bits = (np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1
        sums = (1 - 2 * bits) @ d
        return float(np.count_nonzero(sums >= observed - tolerance) / sums.size)
    rng, hits = np.random.default_rng(seed), 0
    for _ in range(MONTE_CARLO_FLIPS // _CHUNK):  # in chunks: memory stays small however many pairs
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(_CHUNK, d.size))
        hits += int(np.count_nonzero(signs @ d >= observed - tolerance))
    return float((1 + hits) / (1 + MONTE_CARLO_FLIPS))
