"""HWP 5.0 (Hangul word processor, ``.hwp``): the binary format most Korean company and public-sector documents
are still kept in. No maintained Python library reads its text, so this module reads the compound file with
``olefile`` and walks the records as the public spec (Hancom, "한글 문서 파일 형식 5.0") lays them out.

What comes out: one line per paragraph (body, text boxes, headers/footers and notes, in record order); outline
paragraphs (개요 1-7) as Markdown ``#`` headings; a table as one ``| a | b |`` line per row, cells placed by their
row/column address (a merged cell's covered places left empty), its caption first; a 덧말 (ruby) as its main text.
Sections are joined by blank lines. Distribution (배포용) documents are read from their ``ViewText`` sections,
decrypted as the spec says (:mod:`._hwp_distribution`); password and DRM documents are reported, not guessed at.

A file cut short (a copy that stopped, a stream whose sectors lie past the end of the file) is ``corrupt
(truncated)``; it is still kept when something of it reads: the body up to the cut, or Hangul's preview text
(``PrvText``, the first 1,000 or so characters) when that holds more, marked as partial.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from evalsets.ingest.base import READERS, Extracted, ExtractionError, Reader, ReadOptions, table_row, tidy
from evalsets.ingest.formats._hwp_distribution import DATA_SIZE, decrypt_section
from evalsets.ingest.structure import MAX_OUTLINE_HEADING as MAX_HEADING
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
CTRL_DUTMAL = b"tudt"  # 덧말 ('tdut'): its main text lives in the control's header, not in PARA_TEXT
DUTMAL_CODE = 23  # the extended control that anchors a 덧말 (or a 글자 겹침) in the text

# PARA_TEXT control characters (code units below 32): "char" controls take one unit, "inline" and "extended"
# controls eight (the code, six units of data, the code again).
CHAR_CONTROLS = frozenset({0, 10, 13, 24, 25, 26, 27, 28, 29, 30, 31})
CONTROL_TEXT = {9: "\t", 10: "\n", 24: "-", 30: " ", 31: " "}


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


def para_text(payload: bytes, dutmal: list[str] | None = None) -> str:
    """The text of a PARA_TEXT record (UTF-16LE), control characters dropped or turned into their whitespace;
    each 덧말 control replaced by the next of ``dutmal`` (the main texts of the paragraph's 덧말, in order)."""
    dutmal = list(dutmal or [])
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
        if unit == DUTMAL_CODE and payload[2 * i + 2:2 * i + 6] == CTRL_DUTMAL and dutmal:
            parts.append(dutmal.pop(0))
        parts.append(CONTROL_TEXT.get(unit, ""))
        i += 1 if unit in CHAR_CONTROLS else 8
    return "".join(parts)


def dutmal_text(payload: bytes) -> str:
    """The main text (본말) of a 덧말 CTRL_HEADER: after the control id, a WORD length and that many WCHARs."""
    if len(payload) < 6:
        return ""
    (length,) = struct.unpack_from("<H", payload, 4)
    return payload[6:6 + 2 * length].decode("utf-16-le", "replace")


def paragraph_dutmal(items: list[tuple[int, int, bytes]], index: int) -> list[str]:
    """The 덧말 main texts of the paragraph whose PARA_TEXT is ``items[index]``: its controls' headers are the
    CTRL_HEADER records at the text's level that follow it, before the next paragraph."""
    level = items[index][1]
    found = []
    for position in range(index + 1, len(items)):
        tag, at, payload = items[position]
        if at < level:
            break
        if at == level and tag == TAG_CTRL_HEADER and payload[:4] == CTRL_DUTMAL:
            found.append(dutmal_text(payload))
    return found


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

    items = list(records(data))
    for index, (tag, level, payload) in enumerate(items):
        while tables and level <= tables[-1].level:  # a record at or above the control's level ends the table
            table = tables.pop()
            sink().extend(table.lines(nested=bool(tables)))
        if tag == TAG_PARA_HEADER:
            heading = None
            if level == 0 and len(payload) >= 10:
                shape = struct.unpack_from("<H", payload, 8)[0]
                heading = levels[shape] if shape < len(levels) else None
        elif tag == TAG_PARA_TEXT:
            dutmal = paragraph_dutmal(items, index) if CTRL_DUTMAL in payload else None
            text = para_text(payload, dutmal).strip()
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
    out, _, error = inflate_partial(data)
    if error:
        raise ExtractionError("corrupt", f"HWP stream {name} does not inflate: {error}")
    return out


def inflate_partial(data: bytes, chunk: int = 1 << 16) -> tuple[bytes, bool, str]:
    """(what inflates, whether the deflate data ended, the zlib error that stopped it or ""): fed in chunks, so
    the text before a cut or a damaged block is kept."""
    inflater = zlib.decompressobj(-15)
    out: list[bytes] = []
    try:
        for start in range(0, len(data), chunk):
            out.append(inflater.decompress(data[start:start + chunk]))
            if inflater.eof:
                break
        out.append(inflater.flush())
    except zlib.error as error:
        return b"".join(out), False, str(error)
    return b"".join(out), inflater.eof, ""


def check_header(header: bytes) -> int:
    """The FileHeader's properties, or the reason the body cannot be read. A distribution (배포용) document
    reads (its key is in the file); one that also needs a password or is DRM-wrapped does not."""
    if len(header) < 40 or not header.startswith(SIGNATURE):
        raise ExtractionError("corrupt", "an OLE compound file whose FileHeader is not an HWP 5 signature")
    (props,) = struct.unpack_from("<I", header, 36)
    if props & PASSWORD:
        raise ExtractionError("encrypted", "password-protected HWP" + (" (a distribution document with a password)"
                                                                        if props & DISTRIBUTION else "")
                              + ": remove the password in Hangul to ingest it")
    if props & (DRM | CERT_ENCRYPTED | CERT_DRM):
        raise ExtractionError("encrypted", "DRM- or certificate-encrypted HWP")
    return props


def read_section(ole, name: str, compressed: bool, distribution: bool) -> tuple[bytes, str]:
    """The records of one section stream, and how it is cut short ("" when it is whole): a stream holding fewer
    bytes than the compound file's directory says (its sectors lie past the end of the file), encrypted data that
    stops inside a block, or deflate data that stops before its end. What precedes the cut is returned."""
    data = ole.openstream(name).read()
    declared = ole.get_size(name)
    cut = f"{name} holds {len(data):,} of its {declared:,} bytes" if len(data) < declared else ""
    if distribution:
        if cut and len(data) < 4 + DATA_SIZE:
            return b"", cut
        data, short = decrypt_section(data, name)
        cut = cut or (f"{name} ends inside an encrypted block" if short else "")
    if compressed:
        data, ended, error = inflate_partial(data)
        if error and not cut:
            raise ExtractionError("corrupt", f"HWP stream {name} does not inflate: {error}")
        cut = cut or ("" if ended else f"{name} ends before its compressed data does")
    return data, cut


def preview_text(ole) -> str:
    """Hangul's preview of the document (``PrvText``: UTF-16LE, about its first 1,000 characters)."""
    if not ole.exists("PrvText"):
        return ""
    return tidy(ole.openstream("PrvText").read().decode("utf-16-le", "replace").split("\x00", 1)[0])


def section_number(name: str) -> int:
    match = re.fullmatch(r"section(\d+)", name, re.IGNORECASE)
    return int(match.group(1)) if match else -1


@READERS.register
class HwpReader(Reader):
    """HWP 5.0 binary documents. An HWPX package saved under ``.hwp`` is read as HWPX."""

    format = "hwp"
    suffixes = (".hwp",)
    version = 2  # 2: distribution documents, 덧말, truncated files kept in part

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
            compressed, distribution = bool(props & COMPRESSED), bool(props & DISTRIBUTION)
            storage = "ViewText" if distribution else "BodyText"
            sections = sorted(
                (number, "/".join(entry)) for entry in ole.listdir(streams=True, storages=False)
                if len(entry) == 2 and entry[0] == storage and (number := section_number(entry[1])) >= 0)
            if not sections:
                raise ExtractionError("corrupt", f"{'distribution ' if distribution else ''}HWP file without "
                                                 f"{storage}/Section streams")
            levels: list[int | None] = []
            if ole.exists("DocInfo"):
                docinfo = ole.openstream("DocInfo").read()
                try:
                    levels = outline_levels(inflate(docinfo, "DocInfo") if compressed else docinfo)
                except ExtractionError:
                    levels = []  # headings are a nicety; the body decides whether the file reads
            texts: list[str] = []
            cuts: list[str] = []
            for _, name in sections:
                data, cut = read_section(ole, name, compressed, distribution)
                lines, _ = section_lines(data, levels)
                texts.append("\n".join(lines))
                if cut:
                    cuts.append(cut)
            preview = preview_text(ole) if cuts else ""
            title = ""
            if ole.exists("\x05HwpSummaryInformation"):
                title = summary_title(ole.openstream("\x05HwpSummaryInformation").read())
        text = mark_text(tidy("\n\n".join(texts)))
        metadata: dict[str, object] = {}
        partial = None
        if cuts:
            reason = "truncated: " + "; ".join(cuts)
            if len(preview) > len(text):
                text, metadata["partial"] = preview, "preview"
                partial = ("corrupt", f"{reason}; kept only its preview text (PrvText, {len(preview):,} characters)")
            elif text:
                metadata["partial"] = "before-cut"
                partial = ("corrupt", f"{reason}; kept only the text before the cut ({len(text):,} characters)")
            else:
                raise ExtractionError("corrupt", f"{reason}; no text before the cut and no preview text")
        if not text:
            return []
        version = ".".join(str(b) for b in reversed(header[32:36]))
        metadata["hwp_version"] = version
        if distribution:
            metadata["hwp_distribution"] = True
        if sections_at := markdown_sections(text):
            metadata["sections"] = sections_at
        return [Extracted(title=choose_title(text, path.stem, title), text=text, metadata=metadata, partial=partial)]
