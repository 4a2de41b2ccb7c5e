"""A built pipeline: chunks -> dense/BM25 candidates -> fusion -> rerank -> ranked documents."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from evalsets import Document
from pipelines.chunking import Chunk
from pipelines.components import Components, Progress, StageLog, corpus_fingerprint
from pipelines.config import PipelineConfig
from pipelines.fusion import make_fusion
from pipelines.scored import ScoredLists


@dataclass
class RankedChunk:
    chunk_id: str
    doc_id: str
    score: float
    text: str


class Retriever:
    """Build once per (config, corpus); then :meth:`search` any number of query batches."""

    def __init__(self, config: PipelineConfig, components: Components):
        self.config = config
        self.components = components
        self.build_log = StageLog()
        self.chunks: list[Chunk] = []

    def build(self, corpus: list[Document], progress: Progress | None = None) -> "Retriever":
        cfg, log = self.config, self.build_log
        self.corpus_key = corpus_fingerprint(corpus)
        self.chunks = self.components.chunks(cfg.chunking, corpus, self.corpus_key, log)
        self.dense = self.lexical = None
        if cfg.dense:
            self.dense = self.components.dense_index(cfg.dense, cfg.chunking, self.chunks, self.corpus_key, log,
                                                     progress)
        if cfg.lexical:
            self.lexical = self.components.bm25_index(cfg.lexical, cfg.chunking, self.chunks, self.corpus_key, log)
        return self

    def searchable(self, query: str) -> bool:
        """Whether a query has anything to search with: a term the BM25 tokenizer keeps (not only stopwords or
        punctuation) when the pipeline has BM25, else any word character. Without one, every chunk scores the
        same and the ranking would be arbitrary."""
        if self.lexical is not None:
            return bool(self.lexical.tokenizer.tokenize([query])[0])
        return re.search(r"\w", query) is not None

    def index_bytes(self) -> int:
        """Memory the indexes hold (dense vectors/graph + BM25 sparse matrix), for size budgets."""
        total = self.dense.nbytes() if self.dense is not None else 0
        return total + (self.lexical.nbytes() if self.lexical is not None else 0)

    def _first_stage(self, queries: list[str], log: StageLog, use_query_cache: bool = True) -> ScoredLists:
        cfg = self.config
        dense = lexical = None
        if self.dense is not None and cfg.dense is not None:
            started = time.perf_counter()
            vectors = self.components.embed_queries(cfg.dense.model, queries, use_query_cache)
            log.timed("embed_queries", started)
            started = time.perf_counter()
            dense = self.dense.search(vectors, cfg.candidates)
            log.timed("search_dense", started)
        if self.lexical is not None:
            started = time.perf_counter()
            lexical = self.lexical.search(queries, cfg.candidates)
            log.timed("search_bm25", started)
        if dense is None or lexical is None:
            return dense if dense is not None else lexical
        fusion = make_fusion(cfg.fusion)
        assert fusion is not None, "the config refuses fusion 'none' with two retrievers"
        started = time.perf_counter()
        fused = fusion.fuse(dense, lexical)
        log.timed("fuse", started)
        return fused

    def _rerank(self, queries: list[str], first: ScoredLists, log: StageLog) -> list[list[tuple[int, float]]]:
        rows = [first.row(q) for q in range(len(first))]
        reranker = self.components.reranker(self.config.reranker)
        if reranker is None:
            return rows
        started = time.perf_counter()
        top_n = self.config.reranker.top_n
        heads = [row[:top_n] for row in rows]
        new_scores = reranker.rerank(queries, [[self.chunks[i].text for i, _ in head] for head in heads],
                                     [np.array([s for _, s in head]) for head in heads])
        reranked = []
        for head, scores, row in zip(heads, new_scores, rows):
            order = sorted(zip((i for i, _ in head), scores), key=lambda p: -p[1])
            # reranked head first; the tail keeps first-stage order below the lowest reranked score
            floor = min((float(s) for _, s in order), default=0.0)
            tail = [(i, floor - 1.0 - rank) for rank, (i, _) in enumerate(row[top_n:])]
            reranked.append([(i, float(s)) for i, s in order] + tail)
        log.timed("rerank", started)
        return reranked

    def search_chunks(self, queries: list[str], log: StageLog | None = None,
                      use_query_cache: bool = True) -> list[list[RankedChunk]]:
        log = log if log is not None else StageLog()
        rows = self._rerank(queries, self._first_stage(queries, log, use_query_cache), log)
        return [[RankedChunk(self.chunks[i].chunk_id, self.chunks[i].doc_id, s, self.chunks[i].text)
                 for i, s in row] for row in rows]

    def search(self, queries: list[str], log: StageLog | None = None,
               use_query_cache: bool = True) -> list[list[tuple[str, float]]]:
        """Ranked (doc_id, score) per query: a document scores as its best chunk."""
        log = log if log is not None else StageLog()
        rows = self._rerank(queries, self._first_stage(queries, log, use_query_cache), log)
        started = time.perf_counter()
        out = []
        for row in rows:
            seen: dict[str, float] = {}
            for i, s in row:
                doc_id = self.chunks[i].doc_id
                if doc_id not in seen:
                    seen[doc_id] = s
                    if len(seen) == self.config.k:
                        break
            out.append(list(seen.items()))
        log.timed("aggregate", started)
        return out
