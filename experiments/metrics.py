"""Retrieval metrics per query (nDCG@k, MRR@k, Recall@k), trec_eval conventions.

Tiny exact functions on purpose: they are checked against hand-computed cases and ranx in tests.
nDCG uses linear gain (rel / log2(rank + 1)), as trec_eval's ndcg_cut and BEIR do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Ranking = Sequence[str]
Judgements = dict[str, int]


def ndcg_at_k(ranking: Ranking, relevant: Judgements, k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(ranking: Ranking, relevant: Judgements, k: int = 10) -> float:
    for rank, doc in enumerate(ranking[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def recall_at_k(ranking: Ranking, relevant: Judgements, k: int = 100) -> float:
    positives = {doc for doc, g in relevant.items() if g > 0}
    if not positives:
        return 0.0
    return len(positives.intersection(ranking[:k])) / len(positives)


METRICS = {"ndcg": ndcg_at_k, "mrr": mrr_at_k, "recall": recall_at_k}
DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")


def parse_metric(name: str) -> tuple[str, int]:
    """'ndcg@10' -> ('ndcg', 10), with a clear error for anything else."""
    base, _, cutoff = name.lower().partition("@")
    if base not in METRICS or not cutoff.isdigit() or int(cutoff) < 1:
        raise ValueError(f"unknown metric {name!r}: use ndcg@K, mrr@K or recall@K")
    return base, int(cutoff)


def score_query(ranking: Ranking, relevant: Judgements, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, float]:
    out = {}
    for name in metrics:
        base, cutoff = parse_metric(name)
        out[name] = METRICS[base](ranking, relevant, cutoff)
    return out


def mean_scores(per_query: Iterable[dict[str, float]]) -> dict[str, float]:
    rows = list(per_query)
    if not rows:
        return {}
    return {name: sum(r[name] for r in rows) / len(rows) for name in rows[0]}
