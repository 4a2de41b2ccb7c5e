"""HWP 5.0 (Hangul word processor, ``.hwp``): the binary format most Korean company and public-sector documents
are still kept in. No maintained Python library reads its text, so this module reads the compound file with
``olefile`` and walks the records as the public spec (Hancom, "한글 문서 파일 형식 5.0") lays them out.

What comes out: one line per paragraph (body, text boxes, headers/footers and notes, in record order); outline
paragraphs (개요 1-7) as Markdown ``#`` headings; a table as one ``| a | b |`` line per row, cells placed by their
row/column address (a merged cell's covered places left empty), its caption first. Sections are joined by blank
lines. Distribution (배포용) and password documents keep their text encrypted and are reported, not guessed at.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from evalsets.ingest.base import READERS, Extracted, ExtractionError, Reader, ReadOptions, table_row, tidy
from evalsets.ingest.structure import choose_title, mark_text, markdown_sections

SIGNATURE = b"HWP Document File"
# FileHeader properties (offset 36): bit 0 compressed, 1 password, 2 distribution (배포용), 4 DRM,
# 8 certificate-encrypted, 10 certificate DRM.
COMPRESSED, PASSWORD, DISTRIBUTION, DRM, CERT_ENCRYPTED, CERT_DRM = 1, 2, 4, 16, 256, 1024

HWPTAG_BEGIN = 0x10
TAG_PARA_SHAPE = HWPTAG_BEGIN + 9  # DocInfo
TAG_PARA_HEADER = HWPTAG_BEGIN + 50
TAG_PARA_TEXT = HWPTAG_BEGIN + 51
TAG_CTRL_HEADER = HWPTAG_BEGIN + 55
TAG_LIST_HEADER = HWPTAG_BEGIN + 56
TAG_TABLE = HWPTAG_BEGIN + 61
CTRL_TABLE = b" lbt"  # MAKE_4CHID('t','b','l',' ') written as a little-endian UINT32

# PARA_TEXT control characters (code units below 32): "char" controls take one unit, "inline" and "extended"
# controls eight (the code, six units of data, the code again).
CHAR_CONTROLS = frozenset({0, 10, 13, 24, 25, 26, 27, 28, 29, 30, 31})
CONTROL_TEXT = {9: "\t", 10: "\n", 24: "-", 30: " ", 31: " "}
MAX_HEADING = 120  # an outline paragraph longer than this is body text that happens to be numbered


def records(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(tag id, level, payload) of each record; a truncated last record ends the stream."""
    position, end = 0, len(data)
    while position + 4 <= end:
        (header,) = struct.unpack_from("<I", data, position)
        position += 4
        tag, level, size = header & 0x3FF, (header >> 10) & 0x3FF, header >> 20
        if size == 0xFFF:
            if position + 4 > end:
                return
            (size,) = struct.unpack_from("<I", data, position)
            position += 4
        yield tag, level, data[position:position + size]
        position += size


def para_text(payload: bytes) -> str:
    """The text of a PARA_TEXT record (UTF-16LE), control characters dropped or turned into their whitespace."""
    count = len(payload) // 2
    units = struct.unpack_from(f"<{count}H", payload)
    parts: list[str] = []
    i = 0
    while i < count:
        unit = units[i]
        if unit >= 32:
            j = i
            while j < count and units[j] >= 32:
                j += 1
            parts.append(payload[2 * i:2 * j].decode("utf-16-le", "replace"))
            i = j
            continue
        parts.append(CONTROL_TEXT.get(unit, ""))
        i += 1 if unit in CHAR_CONTROLS else 8
    return "".join(parts)


def outline_levels(docinfo: bytes) -> list[int | None]:
    """Per paragraph shape id: its outline level (0-6) when paragraphs of that shape are 개요 headings."""
    levels: list[int | None] = []
    for tag, _, payload in records(docinfo):
        if tag != TAG_PARA_SHAPE:
            continue
        props = struct.unpack_from("<I", payload)[0] if len(payload) >= 4 else 0
        levels.append((props >> 25) & 0x7 if (props >> 23) & 0x3 == 1 else None)
    return levels


@dataclass
class _Cell:
    row: int
    col: int
    colspan: int
    lines: list[str] = field(default_factory=list)


@dataclass
class _Table:
    """A table control being read: its caption, its cells, and which of them takes the next paragraphs."""

    level: int
    cols: int = 0
    body_seen: bool = False  # the TABLE record comes after the caption's list and before the cells'
    caption: list[str] = field(default_factory=list)
    cells: list[_Cell] = field(default_factory=list)
    open: list[str] | None = None

    def start_cell(self, payload: bytes) -> None:
        if len(payload) >= 16:
            col, row, colspan = struct.unpack_from("<HHH", payload, 8)
        else:  # no address: the next place, rows wrapping at the column count
            index = len(self.cells)
            row, col, colspan = (index // self.cols, index % self.cols, 1) if self.cols else (0, index, 1)
        self.cells.append(_Cell(row, col, max(colspan, 1)))
        self.open = self.cells[-1].lines

    def lines(self, nested: bool) -> list[str]:
        """The table as lines: a nested one as plain text (it lands inside one cell of its outer table)."""
        width = max([self.cols] + [c.col + c.colspan for c in self.cells])
        grid: dict[int, dict[int, str]] = {}
        for cell in self.cells:
            grid.setdefault(cell.row, {})[cell.col] = " ".join(cell.lines)
        out = [" ".join(self.caption)] if self.caption else []
        for row in sorted(grid):
            cells = [grid[row].get(col, "") for col in range(width)]
            if any(cells):
                out.append(" ".join(c for c in cells if c) if nested else table_row(cells))
        return out


def section_lines(data: bytes, levels: list[int | None]) -> tuple[list[str], list[str]]:
    """The lines of one BodyText section, and which of them are headings."""
    out: list[str] = []
    headings: list[str] = []
    tables: list[_Table] = []
    heading: int | None = None

    def sink() -> list[str]:
        for table in reversed(tables):
            if table.open is not None:
                return table.open
        return out

    for tag, level, payload in records(data):
        while tables and level <= tables[-1].level:  # a record at or above the control's level ends the table
            table = tables.pop()
            sink().extend(table.lines(nested=bool(tables)))
        if tag == TAG_PARA_HEADER:
            heading = None
            if level == 0 and len(payload) >= 10:
                shape = struct.unpack_from("<H", payload, 8)[0]
                heading = levels[shape] if shape < len(levels) else None
        elif tag == TAG_PARA_TEXT:
            text = para_text(payload).strip()
            if not text:
                continue
            if heading is not None and not tables and len(text) <= MAX_HEADING and "\n" not in text:
                text = "#" * min(heading + 1, 6) + " " + text
                headings.append(text)
            sink().append(text)
        elif tag == TAG_CTRL_HEADER and payload[:4] == CTRL_TABLE:
            tables.append(_Table(level))
        elif tables and level == tables[-1].level + 1:
            table = tables[-1]
            if tag == TAG_TABLE:
                table.body_seen = True
                table.cols = struct.unpack_from("<H", payload, 6)[0] if len(payload) >= 8 else 0
                table.open = None
            elif tag == TAG_LIST_HEADER:
                if table.body_seen:
                    table.start_cell(payload)
                else:
                    table.open = table.caption
    while tables:
        table = tables.pop()
        sink().extend(table.lines(nested=bool(tables)))
    return out, headings


def summary_title(stream: bytes) -> str:
    """PIDSI_TITLE (2) of the HwpSummaryInformation property set (MS-OLEPS), read directly: olefile 0.47 misreads
    VT_LPWSTR lengths and returns the title with the next properties' bytes after it."""
    try:
        (section,) = struct.unpack_from("<I", stream, 44)
        size, count = struct.unpack_from("<II", stream, section)
        for i in range(min(count, 256)):
            pid, offset = struct.unpack_from("<II", stream, section + 8 + 8 * i)
            if pid != 2 or offset >= size:
                continue
            kind, length = struct.unpack_from("<II", stream, section + offset)
            start = section + offset + 8
            if kind & 0xFFFF == 31:  # VT_LPWSTR: a count of UTF-16 units, the terminating NUL included
                value = stream[start:start + 2 * length].decode("utf-16-le", "replace")
            elif kind & 0xFFFF == 30:  # VT_LPSTR: bytes in the ANSI code page, Korean Windows: cp949
                value = stream[start:start + length].decode("cp949", "replace")
            else:
                return ""
            return re.sub(r"\s+", " ", value.split("\x00", 1)[0]).strip()
    except struct.error:
        pass
    return ""


def inflate(data: bytes, name: str) -> bytes:
    """A raw-deflate stream; decompressobj, as zlib.decompress refuses bytes after the end of the data."""
    try:
        inflater = zlib.decompressobj(-15)
        return inflater.decompress(data) + inflater.flush()
    except zlib.error as error:
        raise ExtractionError("corrupt", f"HWP stream {name} does not inflate: {error}") from error


def check_header(header: bytes) -> int:
    """The FileHeader's properties, or the reason the body cannot be read."""
    if len(header) < 40 or not header.startswith(SIGNATURE):
        raise ExtractionError("corrupt", "an OLE compound file whose FileHeader is not an HWP 5 signature")
    (props,) = struct.unpack_from("<I", header, 36)
    if props & DISTRIBUTION:
        raise ExtractionError("encrypted", "distribution-protected (배포용) HWP: its text is stored encrypted in "
                                           "ViewText; save it from Hangul as a normal document to ingest it")
    if props & PASSWORD:
        raise ExtractionError("encrypted", "password-protected HWP: remove the password in Hangul to ingest it")
    if props & (DRM | CERT_ENCRYPTED | CERT_DRM):
        raise ExtractionError("encrypted", "DRM- or certificate-encrypted HWP")
    return props


def section_number(name: str) -> int:
    match = re.fullmatch(r"section(\d+)", name, re.IGNORECASE)
    return int(match.group(1)) if match else -1


@READERS.register
class HwpReader(Reader):
    """HWP 5.0 binary documents. An HWPX package saved under ``.hwp`` is read as HWPX."""

    format = "hwp"
    suffixes = (".hwp",)

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        import olefile

        with path.open("rb") as handle:
            head = handle.read(32)
        if not olefile.isOleFile(str(path)):
            if head.startswith(b"PK\x03\x04"):
                from evalsets.ingest.formats.hwpx import read_hwpx

                return read_hwpx(path)
            if head.startswith(SIGNATURE):
                raise ExtractionError("unsupported", "HWP 3.x or older (not a compound file); save it from Hangul as "
                                                     "HWP 5 or HWPX")
            raise ExtractionError("corrupt", "not an HWP 5 compound file (a document wrapped by an enterprise DRM "
                                             "agent looks like this too)")
        try:
            ole = olefile.OleFileIO(str(path))
        except OSError as error:
            raise ExtractionError("corrupt", f"unreadable compound file: {error}") from error
        with ole:
            if not ole.exists("FileHeader"):
                raise ExtractionError("corrupt", "compound file without an HWP FileHeader stream")
            header = ole.openstream("FileHeader").read()
            props = check_header(header)
            compressed = bool(props & COMPRESSED)
            sections = sorted(
                (number, "/".join(entry)) for entry in ole.listdir(streams=True, storages=False)
                if len(entry) == 2 and entry[0] == "BodyText" and (number := section_number(entry[1])) >= 0)
            if not sections:
                raise ExtractionError("corrupt", "HWP file without BodyText/Section streams")
            levels: list[int | None] = []
            if ole.exists("DocInfo"):
                docinfo = ole.openstream("DocInfo").read()
                try:
                    levels = outline_levels(inflate(docinfo, "DocInfo") if compressed else docinfo)
                except ExtractionError:
                    levels = []  # headings are a nicety; the body decides whether the file reads
            texts: list[str] = []
            for _, name in sections:
                data = ole.openstream(name).read()
                lines, _ = section_lines(inflate(data, name) if compressed else data, levels)
                texts.append("\n".join(lines))
            title = ""
            if ole.exists("\x05HwpSummaryInformation"):
                title = summary_title(ole.openstream("\x05HwpSummaryInformation").read())
        text = mark_text(tidy("\n\n".join(texts)))
        if not text:
            return []
        version = ".".join(str(b) for b in reversed(header[32:36]))
        metadata: dict[str, object] = {"hwp_version": version}
        if sections_at := markdown_sections(text):
            metadata["sections"] = sections_at
        return [Extracted(title=choose_title(text, path.stem, title), text=text, metadata=metadata)]
