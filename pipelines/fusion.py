"""Fusing a dense and a lexical candidate list: reciprocal-rank fusion or weighted normalised scores."""

from __future__ import annotations

from pipelines.scored import ScoredLists, from_rows


def reciprocal_rank_fusion(lists: list[ScoredLists], k: int = 60, weights: list[float] | None = None) -> ScoredLists:
    """score(d) = sum_i w_i / (k + rank_i(d)), ranks starting at 1 (Cormack et al. 2009)."""
    weights = weights or [1.0] * len(lists)
    rows = []
    for q in range(len(lists[0])):
        fused: dict[int, float] = {}
        for weight, scored in zip(weights, lists):
            for rank, (i, _) in enumerate(scored.row(q), start=1):
                fused[i] = fused.get(i, 0.0) + weight / (k + rank)
        rows.append(list(fused.items()))
    return from_rows(rows)


def _min_max(row: list[tuple[int, float]]) -> dict[int, float]:
    if not row:
        return {}
    values = [s for _, s in row]
    low, high = min(values), max(values)
    span = high - low
    return {i: (s - low) / span if span > 0 else 1.0 for i, s in row}


def weighted_score_fusion(lists: list[ScoredLists], weights: list[float]) -> ScoredLists:
    """Per query, min-max normalise each list's scores to [0, 1], then a weighted sum (absent = 0)."""
    rows = []
    for q in range(len(lists[0])):
        fused: dict[int, float] = {}
        for weight, scored in zip(weights, lists):
            for i, s in _min_max(scored.row(q)).items():
                fused[i] = fused.get(i, 0.0) + weight * s
        rows.append(list(fused.items()))
    return from_rows(rows)
