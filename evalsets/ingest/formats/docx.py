"""DOCX: the body in reading order (python-docx), paragraphs and tables interleaved as they stand, so a table stays
beside the paragraph that introduces it. Heading styles become Markdown ``#`` lines (the chunkers split on them)
and each table row one ``| a | b |`` line; headers, footers and comments are left out."""

from __future__ import annotations

import re
from pathlib import Path

from evalsets.ingest.base import READERS, Extracted, Reader, ReadOptions, join_pages, table_row, tidy
from evalsets.ingest.formats._office import check_package, corrupt
from evalsets.ingest.structure import choose_title, heading_level, mark_headings

# "Heading 2" in English Word, "제목 2" where a Korean template named its styles; "Title" / "제목" is level 1
HEADING = re.compile(r"^(?:heading|제목)\s*(\d)$", re.IGNORECASE)
TITLE_STYLES = {"title": 1, "제목": 1, "subtitle": 2, "부제": 2}


@READERS.register
class DocxReader(Reader):
    format = "docx"
    suffixes = (".docx",)

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
                    lines = mark_headings([table_row(row) for row in _rows(item)])  # a one-cell box: a heading
                    if len(lines) == 1 and lines[0].startswith("#"):
                        headings[len(blocks)] = lines[0].lstrip("#").strip()
                    blocks.append("\n".join(lines))
                    listing = False
                    continue
                text = tidy(item.text)
                if not text:
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


def _rows(table) -> list[list[str]]:
    """Cell texts row by row; a merged cell, which python-docx repeats for each column it spans, counts once."""
    rows = []
    for row in table.rows:
        cells, seen = [], None
        for cell in row.cells:
            if cell._tc is seen:
                continue
            seen = cell._tc
            cells.append(cell.text)
        if any(c.strip() for c in cells):
            rows.append(cells)
    return rows
