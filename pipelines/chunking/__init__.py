"""Chunking: split documents into retrievable units that remember their document.

Each kind is one private module that registers itself in :data:`CHUNKERS`; :func:`make_chunker` builds one
from its config.
"""

from pipelines.chunking._fixed import FixedChunking, FixedSizeChunker
from pipelines.chunking._markdown import MarkdownChunker, MarkdownChunking
from pipelines.chunking._paragraph import ParagraphChunker, ParagraphChunking
from pipelines.chunking._sentence import SentenceChunker, SentenceChunking, sentence_spans
from pipelines.chunking._whole import WholeChunking, WholeDocumentChunker
from pipelines.chunking.base import CHUNKERS, Chunk, Chunker, ChunkingConfig, make_chunker
from pipelines.registry import import_kinds

import_kinds(__name__, __path__)

__all__ = ["CHUNKERS", "Chunk", "Chunker", "ChunkingConfig", "FixedChunking", "FixedSizeChunker", "MarkdownChunker",
           "MarkdownChunking", "ParagraphChunker", "ParagraphChunking", "SentenceChunker", "SentenceChunking",
           "WholeChunking", "WholeDocumentChunker", "make_chunker", "sentence_spans"]
