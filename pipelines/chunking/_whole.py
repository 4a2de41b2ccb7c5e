"""The whole document as one chunk."""

from __future__ import annotations

from typing import Literal

from pipelines.chunking.base import CHUNKERS, Chunker, ChunkingConfig


class WholeChunking(ChunkingConfig):
    kind: Literal["whole"] = "whole"
    include_title: bool = True


@CHUNKERS.register
class WholeDocumentChunker(Chunker):
    """One chunk per document (the embedder truncates what exceeds its window)."""

    config = WholeChunking

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]
