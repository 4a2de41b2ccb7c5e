"""What a format reader gives back, how it fails, and the registry that picks a reader by file name.

A format is one module in :mod:`evalsets.ingest.formats`::

    @READERS.register
    class DocxReader(Reader):
        format = "docx"
        suffixes = (".docx",)

        def read(self, path: Path, options: ReadOptions) -> list[Extracted]: ...

Registered, the format is walked, extracted, listed in `evolve ingest --help` and reported by name; nothing else
lists it. Readers return text that the chunkers can use: headings as Markdown ``#`` lines, table rows as
``| a | b |`` lines, pages or slides separated by blank lines with their start offsets in ``metadata["pages"]``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class Extracted:
    """One document read from a file. A file gives one, or several (a ticket export: one per ticket)."""

    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    """Format-specific facts: ``pages`` ([[offset, page number], ...]), ``sections`` ([[offset, heading], ...]),
    ``sheet``, ``ticket_id``, ... (the walker adds source, format, modified time and content hash)."""
    key: str = ""
    """Tells documents of one file apart (a ticket's id, a sheet's name); empty for a file's only document."""
    partial: tuple[str, str] | None = None
    """(kind, reason) when the file could be read only in part (a truncated HWP kept as its preview text): the
    document is kept, the reader marks what it holds in ``metadata["partial"]``, and the ingest report lists the
    file with this kind and reason, as it lists the files it could not read."""


class ExtractionError(Exception):
    """A file that cannot be read, with a reason a person can act on. ``kind`` sorts the report:
    corrupt, encrypted, scanned (no text layer), garbled (glyph ids or mojibake), empty, unsupported, too-large,
    unreadable (the file system
    refused it), skipped (read elsewhere: a Notion
    database index whose rows are pages)."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class TicketFields:
    """Which fields of a ticket export (CSV, JSON, JSONL) make a document; the defaults fit Zendesk, Jira, Freshdesk
    and most helpdesk exports. The first of ``id`` / ``title`` present names the ticket; every ``text`` field
    present is joined into the body (a list of comments included); ``metadata`` fields are kept beside it."""

    id: tuple[str, ...] = ("ticket_id", "id", "key", "number", "issue_key")
    title: tuple[str, ...] = ("subject", "title", "summary", "name")
    text: tuple[str, ...] = ("description", "body", "content", "text", "question", "answer", "resolution",
                             "comments", "conversation")
    metadata: tuple[str, ...] = ("status", "priority", "type", "category", "tags", "created_at", "updated_at",
                                 "created", "updated", "requester", "assignee", "product")


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may be told: the ticket field mapping (``evolve ingest --ticket-fields``)."""

    tickets: TicketFields = field(default_factory=TicketFields)


class Reader(ABC):
    """Reads one format. :meth:`read` is pure (same bytes, same documents) and runs in a worker process, so a
    reader keeps no state and raises :class:`ExtractionError` for a file it cannot read (any other exception
    is reported as corrupt with its message)."""

    format: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    version: ClassVar[int] = 1
    """Raised when a change reads the same bytes differently (a fix, a new rule): every corpus's files that this
    format read with an older version are read again at the next ingest, so the fix reaches existing corpora."""

    @property
    def identity(self) -> str:
        """``format@version``, what the manifest records per file."""
        return f"{self.format}@{self.version}"

    @abstractmethod
    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        """The documents of one file; an empty list when it holds no text (reported as empty)."""


class ReaderRegistry:
    def __init__(self) -> None:
        self._by_format: dict[str, Reader] = {}
        self._by_suffix: dict[str, Reader] = {}

    def register(self, cls: type[Reader]) -> type[Reader]:
        reader = cls()
        if cls.format in self._by_format:
            raise ValueError(f"format {cls.format!r} is registered twice")
        self._by_format[cls.format] = reader
        for suffix in cls.suffixes:
            if suffix in self._by_suffix:
                raise ValueError(f"suffix {suffix} is claimed by {self._by_suffix[suffix].format} and {cls.format}")
            self._by_suffix[suffix.lower()] = reader
        return cls

    def for_path(self, path: Path) -> Reader | None:
        """The reader for ``path``: by its suffix, unless its first bytes say it is the other of two formats that
        share a family of suffixes (an HWP 5 file named .hwpx, an HWPX named .hwp: Hangul saves either under
        either name), so the file is read as what it is, not refused as corrupt."""
        reader = self._by_suffix.get(path.suffix.lower())
        if reader is None or reader.format not in MAGIC_SWAPS:
            return reader
        try:
            with path.open("rb") as handle:
                head = handle.read(8)
        except OSError:
            return reader
        for magic, format in MAGIC_SWAPS[reader.format]:
            if head.startswith(magic) and format in self._by_format:
                return self._by_format[format]
        return reader

    def get(self, format: str) -> Reader:
        return self._by_format[format]

    @property
    def formats(self) -> list[str]:
        return sorted(self._by_format)

    @property
    def suffixes(self) -> list[str]:
        return sorted(self._by_suffix)


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP = b"PK\x03\x04"
MAGIC_SWAPS: dict[str, tuple[tuple[bytes, str], ...]] = {"hwpx": ((OLE2, "hwp"),), "hwp": ((ZIP, "hwpx"),)}
"""For a reader chosen by suffix: (first bytes, the format that reads such a file instead)."""

READERS = ReaderRegistry()


# The characters str.splitlines() breaks at (besides \n and \r): each a line break in the text
_LINE_BREAKS = re.compile("[\v\f\x1c-\x1e\x85\u2028\u2029]")
# The other C0 and C1 controls, \t and \n kept: never text, and they break tools that read the corpus
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def tidy(text: str) -> str:
    """Whitespace as chunkers want it: line separators (\\r, U+2028, U+2029, U+0085, \\v, \\f...) as \\n, no other
    control characters, no trailing spaces, at most one blank line in a row."""
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _LINE_BREAKS.sub("\n", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def table_row(cells: list[Any]) -> str:
    """A table row as one Markdown line, so a row stays one unit of meaning for the chunker."""
    return "| " + " | ".join(re.sub(r"\s+", " ", "" if c is None else str(c)).strip() for c in cells) + " |"


def join_pages(pages: list[str], start: int = 1) -> tuple[str, list[list[int]]]:
    """Pages (or slides) joined by blank lines, with [offset, page number] of each non-empty page."""
    parts, offsets, position = [], [], 0
    for number, page in enumerate(pages, start=start):
        page = tidy(page)
        if not page:
            continue
        if parts:
            position += 2
        offsets.append([position, number])
        parts.append(page)
        position += len(page)
    return "\n\n".join(parts), offsets
