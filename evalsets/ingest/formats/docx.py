"""DOCX: the body in reading order (python-docx), paragraphs and tables interleaved as they stand, so a table stays
beside the paragraph that introduces it. Heading styles become Markdown ``#`` lines (the chunkers split on them)
and each table row one ``| a | b |`` line; headers, footers and comments are left out.

Text boxes come after the paragraph they are anchored in, read once: Word keeps a DrawingML box and a VML copy of it
(``mc:AlternateContent``: ``mc:Choice`` and ``mc:Fallback``), and only the first is read. A table nested in a cell
is read into that cell as plain text. A table python-docx cannot lay out (an irregular grid: a vertical merge with
no cell above it) is read from its XML, row by row, instead of refusing the whole document as damaged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalsets.ingest.base import READERS, Extracted, Reader, ReadOptions, join_pages, table_row, tidy
from evalsets.ingest.formats._office import check_package, corrupt
from evalsets.ingest.structure import choose_title, heading_level, mark_headings

# "Heading 2" in English Word, "제목 2" where a Korean template named its styles; "Title" / "제목" is level 1
HEADING = re.compile(r"^(?:heading|제목)\s*(\d)$", re.IGNORECASE)
TITLE_STYLES = {"title": 1, "제목": 1, "subtitle": 2, "부제": 2}
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
W_P, W_TBL, W_TR, W_TC, W_T, W_SDT, W_SDT_CONTENT, W_TXBX = (W + name for name in (
    "p", "tbl", "tr", "tc", "t", "sdt", "sdtContent", "txbxContent"))


@READERS.register
class DocxReader(Reader):
    format = "docx"
    suffixes = (".docx",)
    version = 2  # 2: text boxes, nested tables, an irregular table read from its XML

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        import docx
        from docx.table import Table

        if path.stat().st_size == 0:
            return []
        check_package(path)
        try:
            document = docx.Document(str(path))
            blocks: list[str] = []
            headings: dict[int, str] = {}
            listing = False
            for item in document.iter_inner_content():
                if isinstance(item, Table):
                    lines = mark_headings(_table_lines(item))  # a one-cell box: a heading
                    if len(lines) == 1 and lines[0].startswith("#"):
                        headings[len(blocks)] = lines[0].lstrip("#").strip()
                    blocks.append("\n".join(lines))
                    listing = False
                    continue
                boxes = _box_lines(item._p, item._parent)
                text = tidy(item.text)
                if not text:
                    if boxes:
                        blocks.append("\n".join(boxes))
                        listing = False
                    continue
                style = _style_name(item)
                # a heading style, else Korean numbering ("Ⅰ. 개요", "1.1. 일반사항", "제3조(정의)") on a plain line
                level = _heading_level(style) or (0 if "\n" in text or style.lower().startswith("list")
                                                  else heading_level(text))
                if level:
                    headings[len(blocks)] = text
                    blocks.append("#" * level + " " + " ".join(text.split()))
                    listing = False
                elif style.lower().startswith("list"):
                    if listing:
                        blocks[-1] += "\n- " + text
                    else:
                        blocks.append("- " + text)
                    listing = True
                else:
                    blocks.append(text)
                    listing = False
                if boxes:
                    blocks.append("\n".join(boxes))
                    listing = False
            core_title = (document.core_properties.title or "").strip()
        except Exception as error:  # python-docx and lxml on a damaged part
            raise corrupt(path, error) from error

        text, spans = join_pages(blocks, start=0)
        if not text:
            return []
        sections = [[offset, headings[index]] for offset, index in spans if index in headings]
        return [Extracted(title=choose_title(text, path.stem, core_title), text=text, metadata={"sections": sections})]


def _style_name(paragraph) -> str:
    try:
        return (paragraph.style.name or "") if paragraph.style is not None else ""
    except (KeyError, ValueError):
        return ""


def _heading_level(style: str) -> int:
    if style.lower() in TITLE_STYLES:
        return TITLE_STYLES[style.lower()]
    match = HEADING.match(style.strip())
    return min(int(match.group(1)), 6) if match and int(match.group(1)) > 0 else 0


def _table_lines(table, in_cell: bool = False) -> list[str]:
    """A table as ``| a | b |`` lines; in a cell, as plain lines (it lands inside one cell of its outer table)."""
    return [" ".join(c for c in row if c.strip()) if in_cell else table_row(row) for row in _rows(table)]


def _rows(table) -> list[list[str]]:
    """Cell texts row by row; a merged cell, which python-docx repeats for each column it spans, counts once. A
    table whose grid python-docx cannot follow is read from its XML: each ``w:tc`` of each ``w:tr`` in order."""
    try:
        rows = []
        for row in table.rows:
            cells, seen = [], None
            for cell in row.cells:
                if cell._tc is seen:
                    continue
                seen = cell._tc
                cells.append(_cell_text(cell))
            rows.append(cells)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):  # an irregular grid (python-docx)
        rows = [[" ".join(_raw_text(tc)) for tc in tr.iterchildren(W_TC)] for tr in table._tbl.iterchildren(W_TR)]
    return [cells for cells in rows if any(c.strip() for c in cells)]


def _cell_text(cell) -> str:
    return "\n".join(_container_lines(cell._tc, cell, in_cell=True))


def _container_lines(element: Any, parent: Any, in_cell: bool) -> list[str]:
    """The lines of the paragraphs and tables in ``element`` (a cell, a text box, a content control), in order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    lines: list[str] = []
    for child in element.iterchildren():
        if child.tag == W_P:
            text = tidy(Paragraph(child, parent).text)
            lines.extend([text] if text else [])
            lines.extend(_box_lines(child, parent))
        elif child.tag == W_TBL:
            lines.extend(_table_lines(Table(child, parent), in_cell=in_cell))
        elif child.tag == W_SDT:
            for content in child.iterchildren(W_SDT_CONTENT):
                lines.extend(_container_lines(content, parent, in_cell))
    return lines


def _box_lines(paragraph: Any, parent: Any) -> list[str]:
    """The lines of the text boxes anchored in ``paragraph`` (a ``w:p``): each ``w:txbxContent`` in it that is not
    the VML fallback copy of another (``mc:Fallback``) nor inside another box (read with that box)."""
    lines: list[str] = []
    for box in paragraph.iter(W_TXBX):
        ancestor = box.getparent()
        while ancestor is not None and ancestor is not paragraph and ancestor.tag not in (MC_FALLBACK, W_TXBX):
            ancestor = ancestor.getparent()
        if ancestor is paragraph:
            lines.extend(_container_lines(box, parent, in_cell=False))
    return lines


def _raw_text(element: Any) -> list[str]:
    """The text of ``element``'s ``w:t`` nodes in order, one part per paragraph; fallback copies left out."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        for child in node.iterchildren():
            if child.tag == MC_FALLBACK:
                continue
            if child.tag == W_P:
                parts.append("")
            elif child.tag == W_T:
                if not parts:
                    parts.append("")
                parts[-1] += child.text or ""
            walk(child)

    walk(element)
    return [part for part in parts if part.strip()]
