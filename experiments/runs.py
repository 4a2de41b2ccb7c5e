"""A run: what a pipeline retrieved for each query, kept apart from how it is scored (as BEIR and ranx keep runs and
qrels apart). Retrieval is the expensive half; a run is scored by any metrics, any number of times, for free."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from evalsets import EvalSet, Qrels, Query
from experiments.metrics import DEFAULT_METRICS, score_query
from pipelines import Components, PipelineConfig, Progress, Retriever, StageLog

Hit = tuple[str, float]
"""(document id, score), best first."""


@dataclass
class Run:
    """Ranked hits per query id, in the order the queries were asked, with the stage timings of the search (and of
    the build, when :func:`retrieve` built the pipeline)."""

    hits: dict[str, list[Hit]]
    search: StageLog = field(default_factory=StageLog)
    build: StageLog | None = None
    seconds: float = 0.0
    """Wall time of the search (and the build, when there was one)."""

    @property
    def query_ids(self) -> list[str]:
        return list(self.hits)

    def doc_ids(self, query_id: str) -> list[str]:
        return [doc for doc, _ in self.hits[query_id]]


def search_run(retriever: Retriever, queries: list[Query], log: StageLog | None = None,
               progress: Progress | None = None, batch_size: int = 256) -> Run:
    """Ask a built retriever every query, ``batch_size`` at a time (the dense stage encodes a batch at once)."""
    log = log if log is not None else StageLog()
    started = time.perf_counter()
    texts = [q.text for q in queries]
    rankings: list[list[Hit]] = []
    for start in range(0, len(texts), batch_size):
        rankings.extend(retriever.search(texts[start:start + batch_size], log))
        if progress:
            progress("searching queries", min(start + batch_size, len(texts)), len(texts))
    hits = {query.query_id: ranking for query, ranking in zip(queries, rankings)}
    return Run(hits, log, None, time.perf_counter() - started)


def retrieve(evalset: EvalSet, config: PipelineConfig, components: Components, progress: Progress | None = None,
             batch_size: int = 256) -> Run:
    """Build ``config`` on the set's corpus (reusing what ``components`` already holds) and search every query."""
    started = time.perf_counter()
    retriever = Retriever(config, components).build(evalset.corpus, progress)
    run = search_run(retriever, evalset.queries, StageLog(), progress, batch_size)
    run.build = retriever.build_log
    run.seconds = time.perf_counter() - started
    return run


def score(run: Run, qrels: Qrels, metrics: tuple[str, ...] = DEFAULT_METRICS) -> list[dict[str, Any]]:
    """One row per query of the run: its id, each metric, its top 10 and its relevant documents. Pure."""
    rows = []
    for query_id, ranking in run.hits.items():
        relevant = qrels[query_id]
        doc_ids = [doc for doc, _ in ranking]
        rows.append({"query_id": query_id, **score_query(doc_ids, relevant, metrics),
                     "top10": doc_ids[:10], "relevant": sorted(d for d, g in relevant.items() if g > 0)})
    return rows
