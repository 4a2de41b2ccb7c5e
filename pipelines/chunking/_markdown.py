"""Markdown sections: split at headings, long sections split by paragraphs."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from pipelines.chunking._paragraph import ParagraphChunker, ParagraphChunking
from pipelines.chunking.base import CHUNKERS

_HEADING = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)


class MarkdownChunking(ParagraphChunking):
    """Paragraph chunking's parameters (a long section is packed by paragraphs), sized for whole sections."""

    kind: Literal["markdown"] = "markdown"  # type: ignore[assignment]
    size: int = Field(1500, ge=16, le=100_000, description="max characters per section chunk")


@CHUNKERS.register
class MarkdownChunker(ParagraphChunker):
    """Splits at markdown headings; a section longer than ``size`` is split by paragraphs."""

    config = MarkdownChunking

    def spans(self, text: str) -> list[tuple[int, int]]:
        starts = sorted({0, *(m.start() for m in _HEADING.finditer(text))})
        spans = []
        for start, end in zip(starts, starts[1:] + [len(text)]):
            if not text[start:end].strip():
                continue
            if end - start <= self.size:
                spans.append((start, end))
            else:
                spans.extend((start + a, start + b) for a, b in super().spans(text[start:end]))
        return spans
