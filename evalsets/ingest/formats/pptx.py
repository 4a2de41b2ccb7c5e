"""PPTX: one page per slide (python-pptx), so a passage is cited by slide number: the slide title as a ``## ``
line, then its text frames and tables (rows as ``| a | b |`` lines) in the slide's shape order, grouped shapes
included, then the speaker notes under a ``Notes:`` line, which often say what a terse slide means."""

from __future__ import annotations

from pathlib import Path

from evalsets.ingest.base import READERS, Extracted, Reader, ReadOptions, join_pages, table_row, tidy
from evalsets.ingest.formats._office import check_package, corrupt
from evalsets.ingest.structure import choose_title


@READERS.register
class PptxReader(Reader):
    format = "pptx"
    suffixes = (".pptx",)

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
    if getattr(shape, "has_text_frame", False):
        text = _clean(shape.text_frame.text)
        return [text] if text else []
    return []
