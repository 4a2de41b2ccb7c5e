"""A built pipeline: chunks -> dense/BM25 candidates -> fusion -> rerank -> ranked documents."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cached_property

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
        self.tokens: list[list[str]] | None = None

    def build(self, corpus: list[Document], progress: Progress | None = None) -> "Retriever":
        cfg, log = self.config, self.build_log
        self.corpus_key = corpus_fingerprint(corpus)
        self.chunks = self.components.chunks(cfg.chunking, corpus, self.corpus_key, log)
        self.__dict__.pop("_first_chunk", None)  # derived from the chunks: built again when next asked for
        self.dense = self.lexical = None
        if cfg.dense:
            self.dense = self.components.dense_index(cfg.dense, cfg.chunking, self.chunks, self.corpus_key, log,
                                                     progress)
        if cfg.lexical:
            self.lexical = self.components.bm25_index(cfg.lexical, cfg.chunking, self.chunks, self.corpus_key, log)
            self.tokens = self.components.tokens(cfg.lexical, cfg.chunking, self.corpus_key)
        return self

    def refreshed(self, corpus: list[Document], progress: Progress | None = None) -> "Retriever":
        """This pipeline over a new version of its corpus, updated rather than rebuilt: chunks whose text did not
        change keep their vectors (no embedding, no cache lookup) and a flat index drops the removed rows and
        appends the new ones (HNSW only appends; with removals it is built again). BM25 has no update: it is
        built again from the kept chunks' tokens plus the new ones'. This retriever is left as it was, so a server
        keeps answering with it until the new one is swapped in. ``build_log.counts`` says what was kept."""
        cfg = self.config
        new = Retriever(cfg, self.components)
        log = new.build_log
        new.corpus_key = corpus_fingerprint(corpus)
        fresh = self.components.chunks(cfg.chunking, corpus, new.corpus_key, log)
        old_rows = {(c.chunk_id, c.text): row for row, c in enumerate(self.chunks)}
        kept_rows = {old_rows[(c.chunk_id, c.text)] for c in fresh if (c.chunk_id, c.text) in old_rows}
        keep = np.zeros(len(self.chunks), dtype=bool)
        keep[list(kept_rows)] = True
        added = [c for c in fresh if (c.chunk_id, c.text) not in old_rows]
        new.chunks = [c for row, c in enumerate(self.chunks) if keep[row]] + added
        log.counts.update(chunks_kept=int(keep.sum()), chunks_added=len(added), chunks_removed=int((~keep).sum()))
        new.dense = new.lexical = None
        if self.dense is not None and cfg.dense is not None:
            started = time.perf_counter()
            report = (lambda done, total: progress(f"embedding new chunks ({cfg.dense.model})", done, total)) \
                if progress else None
            vectors = self.components.embedder(cfg.dense.model).embed([c.text for c in added], "passage", report) \
                if added else np.zeros((0, 1), dtype=np.float32)
            log.timed("embed_chunks", started)
            started = time.perf_counter()
            new.dense = self.dense.updated(keep, vectors)
            log.reused["dense_index_updated"] = new.dense is not None
            if new.dense is None:
                new.dense = self.components.dense_index(cfg.dense, cfg.chunking, new.chunks, new.corpus_key + "+",
                                                        log, progress)
            log.timed("index_dense", started)
        if self.lexical is not None and cfg.lexical is not None:
            started = time.perf_counter()
            tokenizer = self.lexical.tokenizer
            old_tokens = getattr(self, "tokens", None)
            kept_tokens = [t for row, t in enumerate(old_tokens) if keep[row]] if old_tokens is not None else \
                tokenizer.tokenize([c.text for row, c in enumerate(self.chunks) if keep[row]])
            new.tokens = kept_tokens + tokenizer.tokenize([c.text for c in added])
            lexical = cfg.lexical
            new.lexical = type(self.lexical)(tokenizer, lexical.k1, lexical.b, lexical.method).build(new.tokens)
            log.timed("index_bm25", started)
        return new

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
        by_id: dict = {}
        if reranker.uses_doc_ids:
            heads = self._with_recalled(heads, reranker.recalled(queries))
            by_id["doc_ids"] = [[self.chunks[i].doc_id for i, _ in head] for head in heads]
        new_scores = reranker.rerank(queries, [[self.chunks[i].text for i, _ in head] for head in heads],
                                     [np.array([s for _, s in head]) for head in heads], **by_id)
        reranked = []
        for head, scores, row in zip(heads, new_scores, rows):
            order = sorted(zip((i for i, _ in head), scores), key=lambda p: -p[1])
            # reranked head first; the tail keeps first-stage order below the lowest reranked score
            floor = min((float(s) for _, s in order), default=0.0)
            in_head = {i for i, _ in head}
            rest = [i for i, _ in row[top_n:] if i not in in_head]
            tail = [(i, floor - 1.0 - rank) for rank, i in enumerate(rest)]
            reranked.append([(i, float(s)) for i, s in order] + tail)
        log.timed("rerank", started)
        return reranked

    def _with_recalled(self, heads: list[list[tuple[int, float]]], recalled: list[list[str]]
                       ) -> list[list[tuple[int, float]]]:
        """Each head with the first chunk of every recalled document it lacks, at the head's lowest first-stage
        score (so the first stage's say about it is the least it says about any candidate)."""
        out = []
        for head, docs in zip(heads, recalled):
            present = {self.chunks[i].doc_id for i, _ in head}
            low = min((s for _, s in head), default=0.0)
            out.append(head + [(self._first_chunk[d], low) for d in dict.fromkeys(docs)
                               if d not in present and d in self._first_chunk])
        return out

    @cached_property
    def _first_chunk(self) -> dict[str, int]:
        """Document id -> the row of its first chunk (chunks never change after build: a refresh is a new object)."""
        first: dict[str, int] = {}
        for index, chunk in enumerate(self.chunks):
            first.setdefault(chunk.doc_id, index)
        return first

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
