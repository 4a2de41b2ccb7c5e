"""Embedding models: registry, loaders, and the on-disk cache that makes a chunk embed once."""

from pipelines.embedders.adapter import AdaptedEmbedder, load_adapter, save_adapter
from pipelines.embedders.base import (Embedder, EmbeddingError, ModelCodeRefused, load_without_code, model_location,
                                      transformer_subfolder)
from pipelines.embedders.loading import load_embedder
from pipelines.embedders.cache import CachedEmbedder, CacheStats, EmbeddingStore, WorkAbandoned, text_key
from pipelines.embedders.registry import REGISTRY, ModelSpec, resolve_model

__all__ = ["REGISTRY", "AdaptedEmbedder", "EmbeddingError", "ModelCodeRefused", "load_without_code", "CacheStats", "CachedEmbedder", "Embedder", "EmbeddingStore", "ModelSpec",
           "WorkAbandoned", "load_adapter", "load_embedder", "model_location", "resolve_model", "save_adapter",
           "text_key", "transformer_subfolder"]
