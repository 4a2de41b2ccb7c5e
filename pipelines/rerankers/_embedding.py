"""A second embedding model re-scoring the candidates.

No cross-encoder ships inside a PyPI package (MODELS.md), so offline the useful reranker is a
stronger embedding model re-scoring a cheap first stage.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pipelines.embedders import CachedEmbedder
from pipelines.rerankers.base import RERANKERS, Embedders, Reranker, RerankerConfig


class EmbeddingRerankerConfig(RerankerConfig):
    kind: Literal["embedding"] = "embedding"
    model_kind = "embedding"


@RERANKERS.register
class EmbeddingReranker(Reranker):
    """Cosine similarity under another embedding model (its embeddings are cached like any other)."""

    config = EmbeddingRerankerConfig

    def __init__(self, embedder: CachedEmbedder, blend: float = 0.0):
        super().__init__(blend)
        self.embedder = embedder

    @classmethod
    def from_config(cls, config: RerankerConfig, embedders: Embedders) -> "EmbeddingReranker":
        return cls(embedders(config.model or ""), config.blend)

    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        query_vectors = self.embedder.embed(queries, "query")
        unique = list(dict.fromkeys(t for texts in candidates for t in texts))
        position = {t: i for i, t in enumerate(unique)}
        passage_vectors = self.embedder.embed(unique, "passage")
        return [passage_vectors[[position[t] for t in texts]] @ q if texts else np.zeros(0)
                for q, texts in zip(query_vectors, candidates)]
