"""Weighted sum of min-max normalised scores."""

from __future__ import annotations

from typing import Literal

from pipelines.fusion.base import FUSIONS, Fusion, FusionConfig, weighted_sum
from pipelines.scored import ScoredLists


def _weighted_min_max(row: list[tuple[int, float]], weight: float) -> list[tuple[int, float]]:
    if not row:
        return []
    values = [s for _, s in row]
    low, high = min(values), max(values)
    span = high - low
    return [(i, weight * ((s - low) / span if span > 0 else 1.0)) for i, s in row]


def weighted_score_fusion(lists: list[ScoredLists], weights: list[float]) -> ScoredLists:
    """Per query, min-max normalise each list's scores to [0, 1], then a weighted sum (absent = 0)."""
    return weighted_sum(lists, weights, _weighted_min_max)


class WeightedConfig(FusionConfig):
    kind: Literal["weighted"] = "weighted"
    tuned = ("dense_weight",)


@FUSIONS.register
class WeightedScoreFusion(Fusion):
    """Normalised scores, ``dense_weight`` for the dense list and the rest for the lexical one."""

    config = WeightedConfig

    def __init__(self, dense_weight: float = 0.5):
        self.dense_weight = dense_weight

    @classmethod
    def from_config(cls, config: FusionConfig) -> "WeightedScoreFusion":
        return cls(config.dense_weight)

    def fuse(self, dense: ScoredLists, lexical: ScoredLists) -> ScoredLists:
        return weighted_score_fusion([dense, lexical], [self.dense_weight, 1.0 - self.dense_weight])
