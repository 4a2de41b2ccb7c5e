"""Reciprocal-rank fusion."""

from __future__ import annotations

from typing import Literal

from pipelines.fusion.base import FUSIONS, Fusion, FusionConfig, weighted_sum
from pipelines.scored import ScoredLists


def reciprocal_rank_fusion(lists: list[ScoredLists], k: int = 60, weights: list[float] | None = None) -> ScoredLists:
    """score(d) = sum_i w_i / (k + rank_i(d)), ranks starting at 1 (Cormack et al. 2009)."""
    return weighted_sum(lists, weights or [1.0] * len(lists),
                        lambda row, weight: ((i, weight / (k + rank)) for rank, (i, _) in enumerate(row, start=1)))


class RRFConfig(FusionConfig):
    kind: Literal["rrf"] = "rrf"
    tuned = ("rrf_k",)


@FUSIONS.register
class ReciprocalRankFusion(Fusion):
    """Sums 1/(k + rank) over the lists: ranks only, so the two score scales never meet."""

    config = RRFConfig

    def __init__(self, k: int = 60):
        self.k = k

    @classmethod
    def from_config(cls, config: FusionConfig) -> "ReciprocalRankFusion":
        return cls(config.rrf_k)

    def fuse(self, dense: ScoredLists, lexical: ScoredLists) -> ScoredLists:
        return reciprocal_rank_fusion([dense, lexical], self.k)
