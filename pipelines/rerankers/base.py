"""Rerankers re-score the top-n fused candidates of each query with a stronger (slower) model."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


def min_max(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min() if len(values) else 0.0
    return (values - values.min()) / span if span > 0 else np.ones_like(values)


class Reranker(ABC):
    """Scores (query, chunk text) pairs; :meth:`rerank` blends them with the first-stage scores."""

    def __init__(self, blend: float = 0.0):
        self.blend = blend
        """Weight of the (min-max normalised) first-stage score in the final score, 0 = reranker only."""

    @abstractmethod
    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        """Relevance of each candidate text to its query, one array per query."""

    def rerank(self, queries: list[str], candidates: list[list[str]],
               first_stage: list[np.ndarray]) -> list[np.ndarray]:
        scores = self.score(queries, candidates)
        if self.blend == 0:
            return scores
        return [(1 - self.blend) * min_max(s) + self.blend * min_max(f) if len(s) else s
                for s, f in zip(scores, first_stage)]
