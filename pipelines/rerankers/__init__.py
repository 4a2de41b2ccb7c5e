"""Rerankers: re-score the top-n candidates (embedding model or cross-encoder; LLM reranker planned)."""

from pipelines.rerankers.base import Reranker
from pipelines.rerankers.models import CrossEncoderReranker, EmbeddingReranker

__all__ = ["CrossEncoderReranker", "EmbeddingReranker", "Reranker"]
