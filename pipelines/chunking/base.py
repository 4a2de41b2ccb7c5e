"""Chunks and the chunker interface. A chunk always knows its document, so scores map back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from evalsets import Document


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    text: str
    """What gets embedded and indexed (document title prepended when the config asks for it)."""
    start: int
    end: int
    """Character span of the chunk body in the document text."""


class Chunker(ABC):
    """Splits a document into chunks; subclasses implement :meth:`spans`."""

    def __init__(self, include_title: bool = True):
        self.include_title = include_title

    @abstractmethod
    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans (start, end) of the chunks of ``text``, in order."""

    def chunk(self, doc: Document) -> list[Chunk]:
        spans = self.spans(doc.text) or [(0, len(doc.text))]
        chunks = []
        for number, (start, end) in enumerate(spans):
            body = doc.text[start:end].strip()
            text = f"{doc.title}\n{body}" if self.include_title and doc.title else body
            chunks.append(Chunk(f"{doc.doc_id}#{number}", doc.doc_id, text, start, end))
        return chunks

    def chunk_all(self, docs: Iterable[Document]) -> list[Chunk]:
        return [chunk for doc in docs for chunk in self.chunk(doc)]


def pack_units(units: list[tuple[int, int]], size: int, overlap_units: int = 0) -> list[tuple[int, int]]:
    """Greedily pack consecutive units (sentences, paragraphs) into spans of at most ``size`` chars.

    A single unit longer than ``size`` becomes its own span. ``overlap_units`` repeats that many
    trailing units at the start of the next span.
    """
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(units):
        last = first
        while last + 1 < len(units) and units[last + 1][1] - units[first][0] <= size:
            last += 1
        spans.append((units[first][0], units[last][1]))
        if last + 1 >= len(units):
            break
        first = max(last + 1 - overlap_units, first + 1)
    return spans
