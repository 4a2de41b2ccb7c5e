"""Paragraph chunks: blank-line separated paragraphs packed up to a size, long ones split by sentence."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from pipelines.chunking._sentence import sentence_spans
from pipelines.chunking.base import CHUNKERS, Chunker, ChunkingConfig, pack_units

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [s for s in spans if text[s[0]:s[1]].strip()]


class ParagraphChunking(ChunkingConfig):
    kind: Literal["paragraph"] = "paragraph"
    size: int = Field(1200, ge=16, le=100_000, description="max characters per chunk")
    include_title: bool = True


@CHUNKERS.register
class ParagraphChunker(Chunker):
    """Paragraphs (blank-line separated) packed up to ``size`` characters; long ones split by sentence."""

    config = ParagraphChunking

    def __init__(self, size: int, include_title: bool = True):
        super().__init__(include_title)
        self.size = size

    def spans(self, text: str) -> list[tuple[int, int]]:
        units: list[tuple[int, int]] = []
        for start, end in paragraph_spans(text):
            if end - start <= self.size:
                units.append((start, end))
            else:
                units.extend((start + a, start + b) for a, b in sentence_spans(text[start:end]))
        return pack_units(units, self.size)
