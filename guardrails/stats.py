"""Paired significance tests on per-query scores (one-sided: is the candidate better?)."""

from __future__ import annotations

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
