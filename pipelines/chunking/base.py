"""Chunks, the chunker interface and the chunker registry. A chunk always knows its document, so scores map back.

A chunker kind is one module in this package::

    class SentenceChunking(ChunkingConfig):          # the kind's parameters, as a pipeline config states them
        kind: Literal["sentence"] = "sentence"
        size: int = Field(800, ge=16, le=100_000)
        include_title: bool = True

    @CHUNKERS.register
    class SentenceChunker(Chunker):
        config = SentenceChunking

        def spans(self, text): ...

Registered, the kind is accepted by the pipeline config, offered by search spaces and the proposer (with the
limits its config enforces) and built by :func:`make_chunker`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from evalsets import Document
from pipelines.registry import ConfigRegistry, KindConfig


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    text: str
    """What gets embedded and indexed (document title prepended when the config asks for it)."""
    start: int
    end: int
    """Character span of the chunk body in the document text."""


class ChunkingConfig(KindConfig):
    """How documents are cut into chunks: ``kind`` names the chunker, the other fields are its parameters."""


class Chunker(ABC):
    """Splits a document into chunks.

    The contract of a kind: ``config`` is its :class:`ChunkingConfig` subclass; :meth:`from_config` builds the
    chunker from one (by default the config's fields, but ``kind``, are the constructor's keyword arguments);
    :meth:`spans` is pure (same text, same spans), called once per document, from one thread at a time.
    """

    config: ClassVar[type[ChunkingConfig]]

    def __init__(self, include_title: bool = True):
        self.include_title = include_title

    @classmethod
    def from_config(cls, config: ChunkingConfig) -> "Chunker":
        return cls(**{name: getattr(config, name) for name in type(config).model_fields if name != "kind"})

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


CHUNKERS: ConfigRegistry[Chunker] = ConfigRegistry("chunker kind", ChunkingConfig)
"""Chunker kind -> chunker class; each kind's module registers itself."""


def make_chunker(config: ChunkingConfig) -> Chunker:
    """The chunker a config names (an unknown kind is refused with the known ones named)."""
    return CHUNKERS.get(config.kind).from_config(config)


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
