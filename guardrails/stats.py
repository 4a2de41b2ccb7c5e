"""Paired significance tests on per-query scores (one-sided: is the candidate better?), the level each look
at the held-back queries is tested at, and the smallest gain a held-back set can detect."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def paired_bootstrap_p(candidate: np.ndarray, champion: np.ndarray, resamples: int = 10_000, seed: int = 0) -> float:
    """P(mean difference <= 0) under bootstrap resampling of the paired per-query differences."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(champion, dtype=np.float64)
    if len(diff) == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # bounded memory for large query sets
        size = min(1000, resamples - start)
        means[start:start + size] = diff[rng.integers(0, len(diff), size=(size, len(diff)))].mean(axis=1)
    return float((np.sum(means <= 0) + 1) / (resamples + 1))


def permutation_p(candidate: np.ndarray, champion: np.ndarray, resamples: int = 10_000, seed: int = 0) -> float:
    """Sign-flip permutation test of the paired differences (exchangeable under 'no difference')."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(champion, dtype=np.float64)
    if len(diff) == 0:
        return 1.0
    observed = diff.mean()
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 1000):
        size = min(1000, resamples - start)
        signs = rng.choice([-1.0, 1.0], size=(size, len(diff)))
        hits += int(np.sum((signs * diff).mean(axis=1) >= observed))
    return float((hits + 1) / (resamples + 1))


TESTS = {"paired_bootstrap": paired_bootstrap_p, "permutation": permutation_p}


# Alpha spending over looks (online Bonferroni; Tian & Ramdas 2021, "Online control of the familywise error
# rate"): the k-th look since the last human decision is tested at alpha * gamma_k with sum_k gamma_k <= 1, so
# by the union bound the chance that any look passes a candidate no better than the champion is <= alpha,
# however many looks there are and however they depend on each other. gamma_k = 6 / (pi^2 k^2) sums to 1 and
# spends 61% of alpha on the first look; bench/guardrails/promotion_sim.py compares it with flatter sequences.
SPENDING = {
    "alpha_spending": lambda look: 6.0 / (math.pi ** 2 * look ** 2),
    "per_look": lambda look: 1.0,  # the old rule: every look at alpha (controls one look, not the family)
}


def alpha_for_look(alpha: float, look: int, spending: str = "alpha_spending") -> float:
    """The significance level of the look-th guard decision (1-based) since the last human decision."""
    if look < 1:
        raise ValueError(f"looks are counted from 1, got {look}")
    if spending not in SPENDING:
        raise KeyError(f"unknown alpha spending {spending!r}: use one of {', '.join(SPENDING)}")
    return alpha * SPENDING[spending](look)


def resamples_for(alpha: float, minimum: int, most: int = 1_000_000) -> int:
    """Resamples enough for a resampling test to resolve p < alpha (about ten resamples beyond alpha's tail).

    A test with R resamples cannot report a p-value below 1 / (R + 1), so a late look's small alpha needs
    more of them than the policy's default; capped at ``most`` (the policy's own upper bound).
    """
    return int(min(most, max(minimum, math.ceil(10 / alpha))))


# Fallback sd of the paired differences when the observed one is 0 (all differences equal): the largest sd a
# difference of two scores in [0, 1] can have, so the reported effect is an upper bound, never an optimistic 0.
FALLBACK_SD = 1.0


def minimum_detectable_effect(diff: np.ndarray, alpha: float, power: float) -> tuple[float, float, bool]:
    """Smallest mean gain a one-sided level-alpha test on these n paired differences detects with this power.

    Normal approximation: (z_{1-alpha} + z_{power}) * sd / sqrt(n). Returns (effect, sd used, fallback used);
    the fallback sd is :data:`FALLBACK_SD` when the observed sd is 0 (to rounding) or there are fewer than two
    differences.
    """
    diff = np.asarray(diff, dtype=np.float64)
    if len(diff) == 0:
        return math.inf, FALLBACK_SD, True
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    fallback = not sd > 1e-12  # equal differences leave rounding noise (0.6 - 0.5 is not 0.7 - 0.6)
    sd = FALLBACK_SD if fallback else sd
    z = NormalDist().inv_cdf
    return (z(1 - alpha) + z(power)) * sd / math.sqrt(len(diff)), sd, fallback
