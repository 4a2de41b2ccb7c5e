"""Rerankers: re-score the top-n candidates (embedding model, cross-encoder, served reranker, or a
memory of past questions).

Each kind is one private module that registers itself in :data:`RERANKERS`; :func:`make_reranker` builds one
from its config.
"""

from pipelines.registry import import_kinds
from pipelines.rerankers._cross_encoder import CrossEncoderReranker, CrossEncoderRerankerConfig
from pipelines.rerankers._embedding import EmbeddingReranker, EmbeddingRerankerConfig
from pipelines.rerankers._memory import (FALLBACK_THRESHOLD, MemoryReranker, MemoryRerankerConfig, memory_calibration,
                                         save_memory)
from pipelines.rerankers._remote import RemoteReranker, RemoteRerankerConfig
from pipelines.rerankers.base import RERANKERS, NoRerankerConfig, Reranker, RerankerConfig, make_reranker

import_kinds(__name__, __path__)

__all__ = ["FALLBACK_THRESHOLD", "RERANKERS", "CrossEncoderReranker", "CrossEncoderRerankerConfig", "EmbeddingReranker",
           "EmbeddingRerankerConfig", "MemoryReranker", "MemoryRerankerConfig", "NoRerankerConfig", "RemoteReranker", "RemoteRerankerConfig", "Reranker", "RerankerConfig", "make_reranker",
           "memory_calibration", "save_memory"]
