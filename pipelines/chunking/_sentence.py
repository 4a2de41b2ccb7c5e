"""Sentence chunks: whole sentences packed up to a size (Korean split by kiwipiepy, other text by a regex)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field

from evalsets import language_of
from pipelines.chunking.base import CHUNKERS, Chunker, ChunkingConfig, pack_units

_EN_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi  # lazy: loading the morphological model takes ~1 s

    return Kiwi()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans; Korean (any Hangul) goes through kiwipiepy, other text through a regex."""
    if language_of(text) == "ko":
        return [(s.start, s.end) for s in _kiwi().split_into_sents(text)]
    spans, start = [], 0
    for match in _EN_SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [s for s in spans if text[s[0]:s[1]].strip()]


class SentenceChunking(ChunkingConfig):
    kind: Literal["sentence"] = "sentence"
    size: int = Field(800, ge=16, le=100_000, description="max characters per chunk")
    overlap: int = Field(0, ge=0, le=10, description="sentences repeated between chunks")
    include_title: bool = True


@CHUNKERS.register
class SentenceChunker(Chunker):
    """Whole sentences packed up to ``size`` characters, ``overlap`` sentences repeated."""

    config = SentenceChunking

    def __init__(self, size: int, overlap: int = 0, include_title: bool = True):
        super().__init__(include_title)
        self.size, self.overlap = size, overlap

    def spans(self, text: str) -> list[tuple[int, int]]:
        return pack_units(sentence_spans(text), self.size, self.overlap)
