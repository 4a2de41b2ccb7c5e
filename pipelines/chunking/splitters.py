"""The chunkers: whole document, fixed size, sentence/paragraph-aware, markdown-heading-aware."""

from __future__ import annotations

import re
from functools import lru_cache

from evalsets.text import language_of
from pipelines.chunking.base import Chunker, pack_units

_WORD = re.compile(r"\S+")
_EN_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_HEADING = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)


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


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [s for s in spans if text[s[0]:s[1]].strip()]


class WholeDocumentChunker(Chunker):
    """One chunk per document (the embedder truncates what exceeds its window)."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


class FixedSizeChunker(Chunker):
    """Windows of ``size`` characters or whitespace tokens, consecutive windows sharing ``overlap``."""

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


class SentenceChunker(Chunker):
    """Whole sentences packed up to ``size`` characters, ``overlap`` sentences repeated."""

    def __init__(self, size: int, overlap: int = 0, include_title: bool = True):
        super().__init__(include_title)
        self.size, self.overlap = size, overlap

    def spans(self, text: str) -> list[tuple[int, int]]:
        return pack_units(sentence_spans(text), self.size, self.overlap)


class ParagraphChunker(Chunker):
    """Paragraphs (blank-line separated) packed up to ``size`` characters; long ones split by sentence."""

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


class MarkdownChunker(Chunker):
    """Splits at markdown headings; a section longer than ``size`` is split by paragraphs."""

    def __init__(self, size: int, include_title: bool = True):
        super().__init__(include_title)
        self.paragraphs = ParagraphChunker(size, include_title)
        self.size = size

    def spans(self, text: str) -> list[tuple[int, int]]:
        starts = sorted({0, *(m.start() for m in _HEADING.finditer(text))})
        spans = []
        for start, end in zip(starts, starts[1:] + [len(text)]):
            if not text[start:end].strip():
                continue
            if end - start <= self.size:
                spans.append((start, end))
            else:
                spans.extend((start + a, start + b) for a, b in self.paragraphs.spans(text[start:end]))
        return spans
