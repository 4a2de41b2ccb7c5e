"""Reranker implementations: a second embedding model, or a sentence-transformers cross-encoder.

No cross-encoder ships inside a PyPI package (MODELS.md), so offline the useful reranker is a
stronger embedding model re-scoring a cheap first stage; the cross-encoder path serves GPU nodes
that have bge-reranker / ms-marco weights as a local directory or a cached hub name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipelines.device import torch_device
from pipelines.embedders import CachedEmbedder
from pipelines.rerankers.base import Reranker


class EmbeddingReranker(Reranker):
    """Cosine similarity under another embedding model (its embeddings are cached like any other)."""

    def __init__(self, embedder: CachedEmbedder, blend: float = 0.0):
        super().__init__(blend)
        self.embedder = embedder

    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        query_vectors = self.embedder.embed(queries, "query")
        unique = list(dict.fromkeys(t for texts in candidates for t in texts))
        position = {t: i for i, t in enumerate(unique)}
        passage_vectors = self.embedder.embed(unique, "passage")
        return [passage_vectors[[position[t] for t in texts]] @ q if texts else np.zeros(0)
                for q, texts in zip(query_vectors, candidates)]


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder from a local directory or a hub name already cached."""

    def __init__(self, model: str, blend: float = 0.0, batch_size: int = 32):
        super().__init__(blend)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        location = str(Path(model).expanduser()) if Path(model).expanduser().exists() else model
        self.model = CrossEncoder(location, device=torch_device())
        self.batch_size = batch_size

    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        pairs = [(q, t) for q, texts in zip(queries, candidates) for t in texts]
        flat = np.asarray(self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False),
                          dtype=np.float64) if pairs else np.zeros(0)
        if flat.ndim > 1:  # a head with several labels: take the last one as 'relevant'
            flat = flat[:, -1]
        out, start = [], 0
        for texts in candidates:
            out.append(flat[start:start + len(texts)])
            start += len(texts)
        return out
