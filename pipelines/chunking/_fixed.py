"""Fixed-size windows of characters or whitespace tokens."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from pipelines.chunking.base import CHUNKERS, Chunker, ChunkingConfig

_WORD = re.compile(r"\S+")


class FixedChunking(ChunkingConfig):
    kind: Literal["fixed"] = "fixed"
    unit: Literal["chars", "tokens"] = "chars"
    size: int = Field(512, ge=16, le=100_000, description="characters or tokens per window")
    overlap: int = Field(64, ge=0, description="shared by consecutive windows; below size, and at most size/2 where "
                                               "a search space draws it")
    include_title: bool = True

    tuned = ("size", "unit", "overlap", "include_title")  # size first: the order trials have always drawn them

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "FixedChunking":
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self

    @classmethod
    def clamp(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Keeps windows moving forward: overlap at most half the size (the default overlap too, when only the size
        was drawn: a size below twice the default overlap is then still a valid window)."""
        if "overlap" not in params and "size" not in params:
            return params
        size = params.get("size", cls.model_fields["size"].default)
        overlap = params.get("overlap", cls.model_fields["overlap"].default)
        return {**params, "overlap": min(overlap, size // 2)}


@CHUNKERS.register
class FixedSizeChunker(Chunker):
    """Windows of ``size`` characters or whitespace tokens, consecutive windows sharing ``overlap``."""

    config = FixedChunking

    def __init__(self, size: int, overlap: int, unit: str = "chars", include_title: bool = True):
        super().__init__(include_title)
        if overlap >= size:
            raise ValueError(f"overlap ({overlap}) must be smaller than size ({size})")
        self.size, self.overlap, self.unit = size, overlap, unit

    def spans(self, text: str) -> list[tuple[int, int]]:
        if self.unit == "chars":
            starts, ends = list(range(len(text))), list(range(1, len(text) + 1))
        else:
            words = list(_WORD.finditer(text))
            starts, ends = [m.start() for m in words], [m.end() for m in words]
        step = self.size - self.overlap
        spans = []
        for first in range(0, len(starts), step):
            last = min(first + self.size, len(starts)) - 1
            spans.append((starts[first], ends[last]))
            if last == len(starts) - 1:
                break
        return spans
