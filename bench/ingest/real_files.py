"""Real files: word and Hangul recall of `evolve ingest`'s readers against a reference extractor, per file.

    nice -n 10 .venv/bin/python -m bench.ingest.real_files [--out real_files]

Files: every file under tests/data/real/ (origin and licence of each in its NOTICE.md). The reference reading:

- PDF: pdftotext (poppler-utils), as in bench/ingest/pdf_spacing.py;
- DOCX: the raw text nodes (``w:t``) of word/document.xml, Word's fallback copies (``mc:Fallback``) left out;
- PPTX: the raw ``a:t`` nodes of the slides and their notes, and of each chart the ``a:t`` of its titles and the
  names (``c:v`` under ``c:tx`` and ``c:cat``, each once) of its series and categories, which the reader reads
  (a chart's values it does not);
- HWPX: the raw ``hp:t`` nodes of Contents/section*.xml;
- HWP: the raw ``hp:t`` nodes of its HWPX twin (the same document saved as HWPX, same name), where there is one;
  without a twin, the text preview Hangul wrote into the file on save (``PrvText``, its first 1,024 characters),
  and without that either no reference: the reader's word count alone is reported.

Per file, against the reference (words: runs of letters and digits, counted with repeats; evalsets.text):
word recall (the reference's words the reader has), Hangul word recall (the same over words holding Hangul),
Hangul recall (syllables), and word precision (the reader's words the reference has: text the reader made up or
read twice lowers it). A file the reader refuses (a password) is reported with its refusal.

Writes bench/results/<out>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import evalsets.ingest.formats  # noqa: F401  (registers every reader)
from bench import RESULTS, ROOT
from bench.ingest.pdf_spacing import pdftotext  # the same PDF reference
from evalsets.ingest.base import READERS, ExtractionError, ReadOptions
from evalsets.text import hangul_recall, word_recall, words

REAL = ROOT / "tests" / "data" / "real"
FORMATS = (".pdf", ".docx", ".pptx", ".hwpx", ".hwp")
"""The kinds of file under tests/data/real/ (its NOTICE.md is not one of them)."""
BREAKS = {"tab", "br", "lineBreak", "cr"}
"""Elements that stand for white space inside a paragraph (Word's w:tab and w:br, HWPX's hp:tab and hp:lineBreak)."""

# ------------------------------------------------------------------------------------------- reference readings


def local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def element_text(element: ElementTree.Element, text_tag: str = "t") -> str:
    """The raw text of the ``text_tag`` nodes under ``element`` in document order: each paragraph (``p``) on its own
    line, tabs and line breaks as spaces, fallback copies (``mc:Fallback``) left out. Nothing a reader decides
    (tables, headings, which parts count) goes into it, which makes it the reference."""
    out: list[str] = []

    def walk(node: ElementTree.Element, in_text: bool) -> None:
        name = local(node.tag)
        if name == "Fallback":
            return
        if name == "p":
            out.append("\n")
        elif name in BREAKS:
            out.append(" ")
        if name == text_tag:
            out.append(node.text or "")
        elif in_text and node.text:
            out.append(node.text)
        for child in node:
            walk(child, in_text or name == text_tag)
            if in_text or name == text_tag:
                out.append(child.tail or "")
        if name == "p":  # a paragraph inside another (a memo, a cell) ends before the outer one goes on
            out.append("\n")

    walk(element, False)
    return re.sub(r"\n\s*\n+", "\n", "".join(out)).strip()


def _parts(path: Path, pattern: str) -> Iterator[ElementTree.Element]:
    """The XML parts of a zip package whose names match ``pattern``, in numeric order (slide2 before slide10)."""
    with zipfile.ZipFile(path) as package:
        names = [n for n in package.namelist() if re.fullmatch(pattern, n)]
        for name in sorted(names, key=lambda n: [int(d) if d.isdigit() else d for d in re.split(r"(\d+)", n)]):
            yield ElementTree.fromstring(package.read(name))


def chart_text(chart: ElementTree.Element) -> str:
    """A chart's titles (``a:t``) and the names of its series and categories (``c:v`` under ``c:tx`` and ``c:cat``),
    each name once: what the slide shows named, not its values. A number category in a date format is shown as the
    date (openpyxl's reading of the Excel serial), as PowerPoint shows it."""
    from openpyxl.styles.numbers import is_date_format
    from openpyxl.utils.datetime import from_excel

    names: dict[str, None] = {}
    for holder in chart.iter():
        if local(holder.tag) not in ("tx", "cat"):
            continue
        code = next((c.text or "" for c in holder.iter() if local(c.tag) == "formatCode"), "")
        for value in (v.text or "" for v in holder.iter() if local(v.tag) == "v"):
            names[from_excel(float(value)).date().isoformat() if is_date_format(code) else value] = None
    return element_text(chart) + "\n" + "\n".join(names)


def docx_reference(path: Path) -> str:
    return "\n".join(element_text(part) for part in _parts(path, r"word/document\.xml"))


def pptx_reference(path: Path) -> str:
    slides = [element_text(p) for p in _parts(path, r"ppt/(slides/slide|notesSlides/notesSlide)\d+\.xml")]
    return "\n".join(slides + [chart_text(c) for c in _parts(path, r"ppt/charts/chart\d+\.xml")])


def hwpx_reference(path: Path) -> str:
    return "\n".join(element_text(part) for part in _parts(path, r"Contents/section\d+\.xml"))


def hwpx_sections(path: Path) -> list[ElementTree.Element]:
    """The parsed Contents/section*.xml parts of an HWPX file, in order."""
    return list(_parts(path, r"Contents/section\d+\.xml"))


def twin(path: Path) -> Path | None:
    """The HWPX file saved from the same document as the HWP file ``path`` (same name beside it), if any."""
    other = path.with_suffix(".hwpx")
    return other if other.exists() else None


PREVIEW_BYTES = 2048
"""Hangul keeps the first 1,024 characters of a document in its PrvText stream (UTF-16)."""


def hwp_preview(path: Path) -> str | None:
    """Hangul's own text preview of an HWP file (the ``PrvText`` stream it writes on save: paragraphs on lines,
    table cells in ``<>``), the last word left out when the preview is cut at its size; None without one."""
    import olefile

    with olefile.OleFileIO(str(path)) as ole:
        if not ole.exists("PrvText"):
            return None
        data = ole.openstream("PrvText").read()
    text = data.decode("utf-16-le", errors="ignore").replace("<", " ").replace(">", " ")
    return text.rsplit(None, 1)[0] if len(data) >= PREVIEW_BYTES else text


def reference(path: Path) -> tuple[str, str] | None:
    """(the reference's name, its text) for ``path``, or None when there is none (an HWP without a twin or a
    preview)."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return "pdftotext", pdftotext(path)
    if suffix == ".docx":
        return "raw w:t", docx_reference(path)
    if suffix == ".pptx":
        return "raw a:t + chart names", pptx_reference(path)
    if suffix == ".hwpx":
        return "raw hp:t", hwpx_reference(path)
    if suffix == ".hwp" and (other := twin(path)):
        return f"raw hp:t of {other.name}", hwpx_reference(other)
    if suffix == ".hwp" and (preview := hwp_preview(path)) is not None:
        return "Hangul's PrvText preview", preview
    return None


# ------------------------------------------------------------------------------------------------------- bench


def read(path: Path) -> str:
    """The reader's text for ``path`` (all its documents), as `evolve ingest` reads it."""
    return "\n\n".join(d.text for d in READERS.for_path(path).read(path, ReadOptions()))


def measure(path: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"file": path.name, "format": path.suffix.lower().lstrip(".")}
    try:
        text = read(path)
    except ExtractionError as refused:
        return row | {"refused": f"{refused.kind}: {refused.reason}"}
    row["reader_words"] = sum(words(text).values())
    found = reference(path)
    if found is None:
        return row | {"reference": None}
    name, ref = found
    row |= {"reference": name, "reference_words": sum(words(ref).values()),
            "word_recall": _round(word_recall(ref, text)),
            "hangul_word_recall": _round(word_recall(ref, text, hangul_only=True)),
            "hangul_recall": _round(hangul_recall(ref, text)),
            "word_precision": _round(word_recall(text, ref))}
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["# Real files: the readers against reference extractors", "",
             ("| file | reference | reference words | reader words | word recall | Hangul word recall | "
              "Hangul recall | word precision |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['file']} | refused: {r['refused']} | | | | | | |")
        elif r["reference"] is None:
            lines.append(f"| {r['file']} | no reference | | {r['reader_words']} | | | | |")
        else:
            lines.append(f"| {r['file']} | {r['reference']} | {r['reference_words']} | {r['reader_words']} | "
                         f"{_cell(r['word_recall'])} | {_cell(r['hangul_word_recall'])} | "
                         f"{_cell(r['hangul_recall'])} | {_cell(r['word_precision'])} |")
    lines += ["", ("Words: runs of letters and digits, counted with repeats. Recall: the reference's words (Hangul words, "
                   "Hangul syllables) the reader's text has too; precision: the reader's words the reference has. "
                   "Files, origin and licence: tests/data/real/NOTICE.md. Measured by bench/ingest/real_files.py.")]
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "n/a" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="real_files", help="bench/results/<out>.json and .md")
    args = parser.parse_args()
    if not shutil.which("pdftotext"):
        sys.exit("pdftotext is missing: apt-get install poppler-utils")
    rows = [measure(path) for path in sorted(REAL.iterdir()) if path.suffix.lower() in FORMATS]
    out = {"pdftotext": subprocess.run(["pdftotext", "-v"], capture_output=True, text=True,
                                       check=False).stderr.splitlines()[0], "files": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
