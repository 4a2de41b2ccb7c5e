"""What a pipeline costs to serve: per-query latency (one query at a time, no query cache) and index size."""

from __future__ import annotations

import time

import numpy as np

from pipelines import Retriever


def latency_ms(retriever: Retriever, queries: list[str], limit: int = 100) -> list[float]:
    """Wall milliseconds of single-query searches, query embedding included (the cache is bypassed)."""
    if queries:
        retriever.search(queries[:1], use_query_cache=False)  # warm-up: model loading is not query latency
    timings = []
    for text in queries[:limit]:
        started = time.perf_counter()
        retriever.search([text], use_query_cache=False)
        timings.append(1000 * (time.perf_counter() - started))
    return timings


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else 0.0
