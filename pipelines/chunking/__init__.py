"""Chunking: split documents into retrievable units that remember their document."""

from pipelines.chunking.base import Chunk, Chunker
from pipelines.chunking.splitters import (
    FixedSizeChunker,
    MarkdownChunker,
    ParagraphChunker,
    SentenceChunker,
    WholeDocumentChunker,
    sentence_spans,
)

__all__ = ["Chunk", "Chunker", "FixedSizeChunker", "MarkdownChunker", "ParagraphChunker",
           "SentenceChunker", "WholeDocumentChunker", "sentence_spans"]
