"""Korean PDFs whose words run together (HWP exports, pdfTeX and Quartz PDFs with Hangul subfonts: word gaps but no
space glyphs) come out of `evolve ingest` with their word spaces, measured against pdftotext on real files
(tests/data/real, origin and licence in its NOTICE.md) and on a generated file laid out as HWP exports are; spaced
pages are read as before, two columns stay apart, and pages of glyph ids are kept out and named."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import evalsets.ingest.formats  # noqa: F401  (registers every reader)
from bench.ingest import pdf_spacing  # the recall measures and the generated file's writer, shared with the bench
from evalsets.ingest import CorpusFolder, ExtractionError, ReadOptions, ingest
from evalsets.ingest.base import READERS

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
RUN_TOGETHER = {"kotex-utf-linebreaktest.pdf": [1], "kotex-utf-doc-pages-3-8-61-excerpt.pdf": [1, 2, 3]}
SPACED = "kotex-oblivoir-obchaptertoc-doc.pdf"

needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                     reason="pdftotext (poppler-utils) is the reference reading; not installed")


def ingested(tmp_path: Path, files: list[Path]) -> dict[str, object]:
    """Each file's document after `evolve ingest` of a folder holding them, by file name."""
    source = tmp_path / "company-files"
    source.mkdir()
    for path in files:
        shutil.copy(path, source / path.name)
    report = ingest([source], tmp_path / "corpus", workers=1)
    assert not report.skipped, report.skipped
    return {Path(doc.metadata["path"]).name: doc for doc in CorpusFolder(tmp_path / "corpus").documents()}


def page_texts(doc) -> dict[int, str]:
    """Page number -> that page's text in a PDF document (metadata "pages": [offset, page number] per page)."""
    spans = doc.metadata["pages"]
    ends = [offset - 2 for offset, _ in spans[1:]] + [len(doc.text)]
    return {number: doc.text[offset:end] for (offset, number), end in zip(spans, ends)}


def unmarked(text: str) -> str:
    """Text without the "#" heading marks the reader puts before numbered Korean lines."""
    return re.sub(r"(?m)^#+ ", "", text).strip()


@needs_pdftotext
def test_real_and_generated_korean_pdfs_keep_their_word_spaces(tmp_path):
    b = pdf_spacing
    generated = b.write_generated(tmp_path / "generated-hwp-layout.pdf")
    files = [REAL / name for name in (*RUN_TOGETHER, SPACED)] + [generated]
    docs = ingested(tmp_path, files)
    for path in files:
        reference = b.pdftotext(path)
        before = "\n".join(b.plain_pages(path))
        after = docs[path.name].text
        assert b.word_recall(reference, after) >= 0.95, (path.name, b.word_recall(reference, after))
        assert b.hangul_recall(reference, after) >= 0.99, path.name  # no syllable lost on the way
        if path.name in RUN_TOGETHER or path == generated:
            # the words ran together before: the measure can fail, and these files are the reason for the change
            assert b.word_recall(reference, before) < 0.5, (path.name, b.word_recall(reference, before))
    assert "11월 코스피는 10월 미국 물가 지표가 컨센서스를 하회하며" in docs[generated.name].text
    assert "면주와 페이지 스타일에 대한 부분이다." in docs["kotex-utf-linebreaktest.pdf"].text


def test_only_the_pages_that_run_together_are_read_again(tmp_path):
    """A spaced page keeps the plain reading to the character; a run-together one is re-read and named."""
    b = pdf_spacing
    generated = b.write_generated(tmp_path / "generated.pdf")
    cases = [(REAL / name, pages) for name, pages in RUN_TOGETHER.items()] + [(generated, [1, 2]), (REAL / SPACED, [])]
    for path, respaced in cases:
        doc = READERS.for_path(path).read(path, ReadOptions())[0]
        assert doc.metadata.get("respaced_pages", []) == respaced, path.name
        plain = b.plain_pages(path)
        for number, text in page_texts(doc).items():
            if number not in respaced:
                assert unmarked(text) == unmarked(plain[number - 1]), (path.name, number)


def test_two_columns_stay_apart_when_a_page_is_read_again(tmp_path):
    """The re-read follows the content stream, so the left column's lines come before the right one's (a reading
    sorted by position would interleave them line by line)."""
    b = pdf_spacing
    path = b.write_generated(tmp_path / "generated.pdf")
    doc = READERS.for_path(path).read(path, ReadOptions())[0]
    assert page_texts(doc)[2] == "\n".join(b.LEFT_COLUMN + b.RIGHT_COLUMN)


def test_pages_of_glyph_ids_are_kept_out_and_named(tmp_path):
    """A page in a font without a Unicode map reads as C0 control characters: it is left out of the corpus and named
    in garbled_pages, the other pages are read; a file of nothing else is skipped as garbled with its pages."""
    b = pdf_spacing
    path = b.write_generated(tmp_path / "with-glyph-ids.pdf", glyph_ids=True)
    doc = ingested(tmp_path, [path])[path.name]
    assert doc.metadata["garbled_pages"] == [4]
    assert not any(ord(c) < 32 and c not in "\n\t" for c in doc.text)
    assert "11월 코스피는" in doc.text and "연차 휴가는 입사 1년 후" in doc.text

    from pypdf import PdfReader, PdfWriter

    only = PdfWriter()
    only.add_page(PdfReader(path).pages[3])
    only.add_page(PdfReader(path).pages[3])
    only.write(tmp_path / "only-glyph-ids.pdf")
    with pytest.raises(ExtractionError) as refused:
        READERS.for_path(tmp_path / "only-glyph-ids.pdf").read(tmp_path / "only-glyph-ids.pdf", ReadOptions())
    assert refused.value.kind == "garbled" and "pages 1, 2" in refused.value.reason
    assert "control characters" in refused.value.reason

