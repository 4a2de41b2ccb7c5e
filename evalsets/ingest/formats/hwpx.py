"""HWPX (OWPML, KS X 6101): the ZIP-of-XML format Hangul 2014+ saves by default and public bodies now require.

The sections are read in the package's own order (the spine of ``Contents/content.hpf``, else ``section<N>.xml``
by number). A paragraph (``hp:p``) is one line; an outline paragraph (개요 1-7 in ``header.xml``) a Markdown ``#``
heading; a table (``hp:tbl``) one ``| a | b |`` line per ``hp:tr``, cells placed by ``hp:cellAddr``, its caption
first, its cell paragraphs not repeated as body lines; a 덧말 (``hp:dutmal``, ruby) is its main text in the line.
Text boxes, notes and headers/footers come where they are anchored.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import Any

from evalsets.ingest.base import READERS, Extracted, ExtractionError, Reader, ReadOptions, table_row, tidy
from evalsets.ingest.structure import MAX_OUTLINE_HEADING as MAX_HEADING
from evalsets.ingest.structure import choose_title, mark_text, markdown_sections

SECTION = re.compile(r"(?:^|/)section(\d+)\.xml$", re.IGNORECASE)
INLINE_TEXT = {"tab": "\t", "lineBreak": "\n", "nbSpace": " ", "fwSpace": " ", "hyphen": "-"}


def local(element: Any) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def section_number(name: str) -> int:
    match = SECTION.search(name)
    return int(match.group(1)) if match else -1


def parse_xml(data: bytes, name: str) -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise ExtractionError("corrupt", f"HWPX part {name} is not well-formed XML: {error}") from error


def package_parts(archive: zipfile.ZipFile) -> tuple[list[str], str | None, str]:
    """(section part names in reading order, the header part's name, the title) from the package manifest."""
    names = set(archive.namelist())
    rootfile = "Contents/content.hpf"
    if "META-INF/container.xml" in names:
        container = parse_xml(archive.read("META-INF/container.xml"), "META-INF/container.xml")
        for element in container.iter():
            if local(element) == "rootfile" and str(element.get("full-path", "")).endswith(".hpf"):
                rootfile = str(element.get("full-path"))
                break
    sections: list[str] = []
    header: str | None = "Contents/header.xml" if "Contents/header.xml" in names else None
    title = ""
    if rootfile in names:
        package = parse_xml(archive.read(rootfile), rootfile)
        base = posixpath.dirname(rootfile)
        hrefs: dict[str, str] = {}
        spine: list[str] = []
        for element in package.iter():
            name = local(element)
            if name == "item" and element.get("href"):
                href = str(element.get("href"))
                # Hancom writes hrefs from the package root ("Contents/section0.xml"); OPF allows relative ones.
                hrefs[str(element.get("id", ""))] = href if href in names else posixpath.join(base, href)
            elif name == "itemref" and element.get("idref"):
                spine.append(str(element.get("idref")))
            elif name == "title" and not title:
                title = re.sub(r"\s+", " ", "".join(element.itertext())).strip()
        ordered = [hrefs[i] for i in spine if i in hrefs] + sorted(hrefs.values(), key=section_number)
        sections = list(dict.fromkeys(h for h in ordered if SECTION.search(h) and h in names))
        header = next((h for h in ordered if h.lower().endswith("header.xml") and h in names), header)
    if not sections:
        sections = sorted((n for n in names if SECTION.search(n)), key=section_number)
    return sections, header, title


def outline_levels(header: Any) -> dict[str, int]:
    """paraPr id -> outline level (0-based) of the paragraph shapes that make 개요 headings."""
    levels: dict[str, int] = {}
    for element in header.iter():
        if local(element) != "paraPr":
            continue
        heading = next((h for h in element.iter() if local(h) == "heading"), None)
        if heading is not None and heading.get("type") == "OUTLINE":
            try:
                levels[str(element.get("id"))] = int(heading.get("level", "0"))
            except ValueError:
                continue
    return levels


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class SectionText:
    """Walks one section's XML into lines; tables and nested lists are consumed where they are anchored.
    ``top``: a body paragraph (one that may be a heading); ``in_cell``: inside a table cell, where a nested table
    is flattened to plain text so that it stays inside its outer cell."""

    def __init__(self, levels: dict[str, int]):
        self.levels = levels
        self.headings: list[str] = []

    def block(self, element: Any, out: list[str], top: bool, in_cell: bool) -> None:
        for child in element:
            name = local(child)
            if name == "p":
                self.paragraph(child, out, top, in_cell)
            elif name == "tbl":
                self.table(child, out, in_cell)
            else:
                self.block(child, out, top, in_cell)

    def paragraph(self, p: Any, out: list[str], top: bool, in_cell: bool) -> None:
        parts: list[str] = []
        after: list[str] = []  # tables, text boxes and notes anchored in this paragraph, after its own text

        def visit(element: Any) -> None:
            for child in element:
                name = local(child)
                if name == "t":
                    parts.append(self.text(child))
                elif name == "dutmal":  # the text in the line; the ruby above or below it is left out
                    parts.extend("".join(m.itertext()) for m in child if local(m) == "mainText")
                elif name == "tbl":
                    self.table(child, after, in_cell)
                elif name == "p":
                    self.paragraph(child, after, False, in_cell)
                else:
                    visit(child)

        visit(p)
        line = "".join(parts).strip()
        if line:
            level = self.levels.get(str(p.get("paraPrIDRef")))
            if level is not None and top and len(line) <= MAX_HEADING and "\n" not in line:
                line = "#" * min(level + 1, 6) + " " + line
                self.headings.append(line)
            out.append(line)
        out.extend(after)

    @staticmethod
    def text(t: Any) -> str:
        parts = [t.text or ""]
        for child in t:
            parts.append(INLINE_TEXT.get(local(child), ""))
            parts.append(child.tail or "")
        return "".join(parts)

    def table(self, tbl: Any, out: list[str], in_cell: bool) -> None:
        caption: list[str] = []
        rows: list[dict[int, str]] = []
        width = _int(tbl.get("colCnt"))
        for child in tbl:
            name = local(child)
            if name == "caption":
                self.block(child, caption, False, in_cell)
            elif name == "tr":
                row: dict[int, str] = {}
                for tc in child:
                    if local(tc) != "tc":
                        continue
                    lines: list[str] = []
                    col, span = len(row), 1
                    for part in tc:
                        kind = local(part)
                        if kind == "subList":
                            self.block(part, lines, False, True)
                        elif kind == "cellAddr":
                            col = _int(part.get("colAddr"), col)
                        elif kind == "cellSpan":
                            span = max(_int(part.get("colSpan"), 1), 1)
                    row[col] = " ".join(lines)
                    width = max(width, col + span)
                rows.append(row)
        if caption:
            out.append(" ".join(caption))
        for row in rows:
            cells = [row.get(col, "") for col in range(width)]
            if any(cells):
                out.append(" ".join(c for c in cells if c) if in_cell else table_row(cells))


def read_hwpx(path: Path) -> list[Extracted]:
    """The one document of an HWPX package (also used for an HWPX file saved under ``.hwp``)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ExtractionError("corrupt", f"not an HWPX (ZIP) package: {error}") from error
    with archive:
        names = set(archive.namelist())
        if "META-INF/manifest.xml" in names and b"encryption-data" in archive.read("META-INF/manifest.xml"):
            raise ExtractionError("encrypted", "password-protected HWPX: remove the password in Hangul to ingest it")
        sections, header, title = package_parts(archive)
        if not sections:
            raise ExtractionError("corrupt", "HWPX package without Contents/section*.xml")
        try:
            levels = outline_levels(parse_xml(archive.read(header), header)) if header else {}
        except ExtractionError:
            levels = {}  # headings are a nicety; the sections decide whether the file reads
        walker = SectionText(levels)
        texts: list[str] = []
        for name in sections:
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, RuntimeError, OSError) as error:  # RuntimeError: an encrypted entry
                raise ExtractionError("corrupt", f"HWPX part {name} unreadable: {error}") from error
            lines: list[str] = []
            walker.block(parse_xml(data, name), lines, True, False)
            texts.append("\n".join(lines))
    text = mark_text(tidy("\n\n".join(texts)))  # numbered lines and one-cell tables become headings too
    if not text:
        return []
    metadata: dict[str, object] = {}
    if sections_at := markdown_sections(text):
        metadata["sections"] = sections_at
    return [Extracted(title=choose_title(text, path.stem, title), text=text, metadata=metadata)]


@READERS.register
class HwpxReader(Reader):
    """HWPX (OWPML) packages."""

    format = "hwpx"
    suffixes = (".hwpx",)
    version = 2  # 2: 덧말 main text

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        return read_hwpx(path)
