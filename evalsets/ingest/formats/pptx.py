"""PPTX: one page per slide (python-pptx), so a passage is cited by slide number: the slide title as a ``## ``
line, then its text frames and tables (rows as ``| a | b |`` lines) in the slide's shape order, grouped shapes
included, then the speaker notes under a ``Notes:`` line, which often say what a terse slide means. A chart gives its
title, its axis titles, and its series and category names (what a reader of the slide sees named), not its values."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from evalsets.ingest.base import READERS, Extracted, Reader, ReadOptions, join_pages, table_row, tidy
from evalsets.ingest.formats._office import check_package, corrupt
from evalsets.ingest.structure import choose_title

EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 1 is 1900-01-01, counting Excel's phantom 1900-02-29
DATE_FORMAT = re.compile(r"(?<![\\\"])[dy]|mmm|yyyy|년|월|일", re.IGNORECASE)  # d, y, mmm: a date; "General" is not


@READERS.register
class PptxReader(Reader):
    format = "pptx"
    suffixes = (".pptx",)
    version = 2  # 2: chart titles, series and category names

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        from pptx import Presentation

        if path.stat().st_size == 0:
            return []
        check_package(path)
        try:
            deck = Presentation(str(path))
            slides = []
            for slide in deck.slides:
                title_shape = slide.shapes.title
                title = _clean(title_shape.text_frame.text) if title_shape is not None else ""
                lines = [f"## {' '.join(title.split())}"] if title else []
                for shape in slide.shapes:
                    if title_shape is None or shape.shape_id != title_shape.shape_id:
                        lines.extend(_shape_lines(shape))
                if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                    notes = _clean(slide.notes_slide.notes_text_frame.text)
                    if notes:
                        lines += ["", "Notes:", notes]
                slides.append("\n".join(lines))
            core_title = (deck.core_properties.title or "").strip()
        except Exception as error:  # python-pptx and lxml on a damaged part
            raise corrupt(path, error) from error

        text, pages = join_pages(slides)
        if not text:
            return []
        return [Extracted(title=choose_title(text, path.stem, core_title), text=text, metadata={"pages": pages})]


def _clean(text: str) -> str:
    return tidy(text.replace("\v", "\n"))  # python-pptx writes a line break inside a paragraph as a vertical tab


def _shape_lines(shape) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [line for inner in shape.shapes for line in _shape_lines(inner)]
    if getattr(shape, "has_table", False):
        rows = [[_clean(cell.text) for cell in row.cells] for row in shape.table.rows]
        return ["", *(table_row(r) for r in rows if any(r)), ""]
    if getattr(shape, "has_chart", False):
        try:
            return _chart_lines(shape.chart)
        except (KeyError, ValueError, AttributeError, IndexError):  # a chart part python-pptx cannot follow
            return []
    if getattr(shape, "has_text_frame", False):
        text = _clean(shape.text_frame.text)
        return [text] if text else []
    return []


def _category(value: object, dates: bool) -> str:
    """A category label as the slide shows it: a number category (python-pptx gives its cached text, "37261.0") in
    a date format is an Excel date serial; a whole number loses its ".0"."""
    label = _clean(str(value))
    try:
        number = float(label)
    except ValueError:
        return label
    if dates and 0 < number < 2958466:  # Excel's dates end at 9999-12-31
        return (EXCEL_EPOCH + timedelta(days=number)).date().isoformat()
    return str(int(number)) if number.is_integer() and "e" not in label.lower() else label


def _chart_lines(chart) -> list[str]:
    """A chart's title and axis titles, then ``series:`` and ``categories:`` lines with their names."""
    lines: list[str] = []
    titles = [chart.chart_title] if chart.has_title else []
    for axis in ("category_axis", "value_axis"):
        try:
            found = getattr(chart, axis)
        except ValueError:  # a pie chart has no axes
            continue
        if found.has_title:
            titles.append(found.axis_title)
    for title in titles:
        text = _clean(title.text_frame.text) if title.has_text_frame else ""
        lines.extend([" ".join(text.split())] if text else [])
    series, categories = [], []
    for plot in chart.plots:
        series.extend(_clean(s.name or "") for s in plot.series)
        codes = plot._element.xpath("./c:ser[1]/c:cat/c:numRef/c:numCache/c:formatCode/text()")
        dates = bool(codes and DATE_FORMAT.search(str(codes[0])))
        categories.extend(_category(c, dates) for c in plot.categories if c is not None)
    series = list(dict.fromkeys(s for s in series if s))
    categories = list(dict.fromkeys(c for c in categories if c))
    lines.extend([f"series: {', '.join(series)}"] if series else [])
    lines.extend([f"categories: {', '.join(categories)}"] if categories else [])
    return lines
