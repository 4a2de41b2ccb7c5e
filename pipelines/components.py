"""Builds pipeline parts from config parts, memoising each so trials only pay for what changed.

One ``Components`` object lives for a process (a study, a server): chunk lists are keyed by
(chunking config, corpus), dense indexes by (model, chunking, index), BM25 indexes by
(chunking, lexical config); models load once. Embeddings additionally persist on disk
(:class:`EmbeddingStore`), so they survive across processes too.

The built parts are kept for the most recently used configs only (:data:`KEPT`): a 48-hour loop tries hundreds of
chunkings and BM25 settings, and kept for ever their indexes would grow the process until it is killed (a dense
index of 100,000 chunks at 384 dimensions is 150 MB). What is forgotten is rebuilt from the chunks and the
embedding store, never embedded again.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from evalsets import Document
from pipelines.chunking import Chunk, ChunkingConfig, make_chunker
from pipelines.config import DenseConfig, LexicalConfig
from pipelines.dense_index import DenseIndex
from pipelines.catalog import ModelCatalog, catalog_or_env
from pipelines.embedders import CachedEmbedder, EmbeddingStore, resolve_model
from pipelines.embedders.adapter import AdaptedEmbedder
from pipelines.lexical import BM25Index, get_tokenizer
from pipelines.rerankers import Reranker, RerankerConfig, make_reranker

Progress = Callable[[str, int, int], None]
"""(stage description, done, total)."""

KEPT = {"chunks": 16, "tokens": 16, "bm25": 8, "dense": 6}
"""How many configs' built parts a process keeps, per kind (the least recently used go first)."""

V = TypeVar("V")


class Recent(Generic[V]):
    """A mapping that keeps its ``size`` most recently used entries (set or read) and forgets the rest."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"a cache must keep at least 1 entry, not {size}")
        self.size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, key: Hashable) -> V:
        self._entries.move_to_end(key)
        return self._entries[key]

    def __setitem__(self, key: Hashable, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get(self, key: Hashable, default: V | None = None) -> V | None:
        return self[key] if key in self._entries else default


def corpus_fingerprint(corpus: list[Document]) -> str:
    digest = hashlib.sha256()
    for doc in corpus:
        for part in (doc.doc_id, doc.title, doc.text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return digest.hexdigest()[:16]


@dataclass
class StageLog:
    """Seconds per stage and what was reused, for one build or search."""

    seconds: dict[str, float] = field(default_factory=dict)
    reused: dict[str, bool] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def timed(self, stage: str, started: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


class Components:
    def __init__(self, store: EmbeddingStore | Path | str, catalog: ModelCatalog | None = None,
                 kept: dict[str, int] | None = None):
        self.store = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
        self._catalog = catalog
        sizes = {**KEPT, **(kept or {})}
        self._embedders: dict[str, CachedEmbedder | AdaptedEmbedder] = {}
        self._chunks: Recent[list[Chunk]] = Recent(sizes["chunks"])
        self._dense: Recent[DenseIndex] = Recent(sizes["dense"])
        self._tokens: Recent[list[list[str]]] = Recent(sizes["tokens"])
        self._bm25: Recent[BM25Index] = Recent(sizes["bm25"])
        self._rerankers: dict[RerankerConfig, Reranker | None] = {}
        self.stop_check: Callable[[], bool] | None = None
        """While set and True, embedding stops between batches (WorkAbandoned): a time budget is spent."""

    @property
    def catalog(self) -> ModelCatalog:
        """Where the model names of the configs built here resolve: the one given, else this process's (as its
        variables say now, :meth:`ModelCatalog.from_env`)."""
        return catalog_or_env(self._catalog)

    def _should_stop(self) -> bool:
        return self.stop_check is not None and self.stop_check()

    def embedder(self, model: str) -> CachedEmbedder | AdaptedEmbedder:
        """The process's cached embedder for a model name; a trained adapter wraps its base model's."""
        if model not in self._embedders:
            spec = resolve_model(model, self.catalog)
            if spec.loader == "adapter":
                self._embedders[model] = AdaptedEmbedder(spec, self.embedder(spec.base or ""))
            else:
                self._embedders[model] = CachedEmbedder(spec, self.store)
                self._embedders[model].stop_check = self._should_stop
        return self._embedders[model]

    def chunks(self, config: ChunkingConfig, corpus: list[Document], corpus_key: str,
               log: StageLog) -> list[Chunk]:
        key = (config, corpus_key)
        log.reused["chunks"] = key in self._chunks
        if key not in self._chunks:
            started = time.perf_counter()
            self._chunks[key] = make_chunker(config).chunk_all(corpus)
            log.timed("chunk", started)
        return self._chunks[key]

    def dense_index(self, config: DenseConfig, chunking: ChunkingConfig, chunks: list[Chunk], corpus_key: str,
                    log: StageLog, progress: Progress | None = None) -> DenseIndex:
        key = (config, chunking, corpus_key)
        log.reused["dense_index"] = key in self._dense
        if key not in self._dense:
            embedder = self.embedder(config.model)
            started = time.perf_counter()
            hits_before, misses_before = embedder.stats.hits, embedder.stats.misses
            report = (lambda done, total: progress(f"embedding chunks ({config.model})", done, total)) \
                if progress else None
            vectors = embedder.embed([c.text for c in chunks], "passage", report)
            log.timed("embed_chunks", started)
            log.counts["chunk_embeddings_cached"] = embedder.stats.hits - hits_before
            log.counts["chunk_embeddings_computed"] = embedder.stats.misses - misses_before
            started = time.perf_counter()
            self._dense[key] = DenseIndex(config.index, config.hnsw_m, config.ef_search).build(vectors)
            log.timed("index_dense", started)
        return self._dense[key]

    def bm25_index(self, config: LexicalConfig, chunking: ChunkingConfig, chunks: list[Chunk], corpus_key: str,
                   log: StageLog) -> BM25Index:
        key = (config, chunking, corpus_key)
        log.reused["bm25_index"] = key in self._bm25
        if key not in self._bm25:
            token_key = (config.tokenizer, chunking, corpus_key)
            tokenizer = get_tokenizer(config.tokenizer)
            if token_key not in self._tokens:
                started = time.perf_counter()
                self._tokens[token_key] = tokenizer.tokenize([c.text for c in chunks])
                log.timed("tokenize_chunks", started)
            started = time.perf_counter()
            self._bm25[key] = BM25Index(tokenizer, config.k1, config.b, config.method).build(self._tokens[token_key])
            log.timed("index_bm25", started)
        return self._bm25[key]

    def tokens(self, config: LexicalConfig, chunking: ChunkingConfig, corpus_key: str) -> list[list[str]] | None:
        """The BM25 tokens of a corpus's chunks, when an index built here made them."""
        return self._tokens.get((config.tokenizer, chunking, corpus_key))

    def reranker(self, config: RerankerConfig) -> Reranker | None:
        """The reranker a config names, built once per process (None for kind 'none')."""
        if config not in self._rerankers:
            self._rerankers[config] = make_reranker(config, self.embedder, self.store, self.catalog)
        return self._rerankers[config]

    def embedding_counts(self) -> tuple[int, int]:
        """(texts served from the cache, texts embedded) so far, over every model this process used."""
        stats = list({id(e.stats): e.stats for e in self._embedders.values()}.values())  # adapters share their base's
        return sum(s.hits for s in stats), sum(s.misses for s in stats)

    def embed_queries(self, model: str, queries: list[str], use_cache: bool = True) -> np.ndarray:
        """Query vectors; ``use_cache=False`` always runs the model (what serving latency must include)."""
        if not use_cache:
            from pipelines.embedders.base import checked_vectors, l2_normalize

            embedder = self.embedder(model)
            return l2_normalize(checked_vectors(embedder.embedder.encode(queries, "query"), len(queries),
                                                embedder.dim, model))
        return self.embedder(model).embed(queries, "query")
