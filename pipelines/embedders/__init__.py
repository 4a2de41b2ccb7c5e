"""Embedding models: registry, loaders, and the on-disk cache that makes a chunk embed once."""

from pipelines.embedders.base import Embedder, load_embedder
from pipelines.embedders.cache import CachedEmbedder, CacheStats, EmbeddingStore, WorkAbandoned
from pipelines.embedders.registry import REGISTRY, ModelSpec, resolve_model

__all__ = ["REGISTRY", "CacheStats", "CachedEmbedder", "Embedder", "EmbeddingStore", "ModelSpec",
           "WorkAbandoned", "load_embedder", "resolve_model"]
