"""HWP 5 and HWPX files saved by Hangul (Hangul 2010, 2014 and Hangul for Mac; tests/data/real, origin and licence in
its NOTICE.md) read through `evolve ingest`, measured against reference extractors rather than expected strings: an
HWPX file's raw ``hp:t`` text, the HWPX twin of an HWP file (the same document saved in both formats), and the text
preview Hangul writes into an HWP file (``PrvText``). Tables come out as rows in the document's order, a
password-protected file is reported as encrypted, and an uncompressed file is read."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import olefile
import pytest

from bench.ingest import real_files  # the reference extractors the bench measures the readers against
from evalsets.ingest import CorpusFolder, ingest
from evalsets.text import hangul_recall, word_recall

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
HWP = sorted(REAL.glob("*.hwp"))
HWPX = sorted(REAL.glob("*.hwpx"))
TWINS = [path for path in HWP if path.with_suffix(".hwpx").exists()]
PASSWORD, UNCOMPRESSED = "protected_document.hwp", "sample-1.hwp"
HP = "{http://www.hancom.co.kr/hwpml/2011/paragraph}"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """`evolve ingest` of a folder holding every real HWP and HWPX file: (its report, documents by file name)."""
    work = tmp_path_factory.mktemp("real-hwp")
    source = work / "company-files"
    source.mkdir()
    for path in HWP + HWPX:
        shutil.copy(path, source / path.name)
    report = ingest([source], work / "corpus", workers=1)
    docs = {Path(doc.metadata["path"]).name: doc for doc in CorpusFolder(work / "corpus").documents()}
    return report, docs


def header_flags(path: Path) -> int:
    """The properties of an HWP file's FileHeader (offset 36): bit 0 compressed, bit 1 password."""
    with olefile.OleFileIO(str(path)) as ole:
        return int.from_bytes(ole.openstream("FileHeader").read()[36:40], "little")


def reader_rows(text: str) -> list[list[str]]:
    """The non-empty cells of each ``| a | b |`` line of a reading, lines without any left out."""
    rows = [[" ".join(c.split()) for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    return [cells for cells in ([c for c in row if c] for row in rows) if cells]


def xml_rows(path: Path) -> list[list[str]]:
    """The reference rows of an HWPX file's tables: the non-empty cells of each ``hp:tr``, from the raw XML (one-cell
    tables left out: the readers make a heading of their text, like a title box)."""
    b = real_files
    rows = []
    for section in b.hwpx_sections(path):
        for table in section.iter(f"{HP}tbl"):
            if len(list(table.iter(f"{HP}tc"))) < 2:
                continue
            for tr in table.findall(f"{HP}tr"):
                cells = [" ".join(b.element_text(tc).split()) for tc in tr.findall(f"{HP}tc")]
                rows.extend([[c for c in cells if c]] if any(cells) else [])
    return rows


def preview_cells(path: Path) -> list[str]:
    """The non-empty table cells of Hangul's own preview of an HWP file (``<cell>`` marks), in its order."""
    with olefile.OleFileIO(str(path)) as ole:
        data = ole.openstream("PrvText").read()
    cells = [" ".join(c.split()) for c in re.findall(r"<([^<>]*)>", data.decode("utf-16-le", errors="ignore"))]
    return [c for c in cells if c][:-1 if len(data) >= real_files.PREVIEW_BYTES else None]


def test_the_real_files_are_there():
    """The files NOTICE.md lists (a missing one would let the loops below pass over nothing)."""
    assert {p.name for p in HWPX} == {"field-mix.hwpx", "sample_document.hwpx"}
    assert {p.name for p in TWINS} == {"field-mix.hwp", "sample_document.hwp"}
    assert len(HWP) == 7


def test_hwpx_files_read_every_word_of_their_xml(ingested):
    _, docs = ingested
    for path in HWPX:
        reference, text = real_files.hwpx_reference(path), docs[path.name].text
        assert word_recall(reference, text) >= 0.99, (path.name, word_recall(reference, text))
        assert hangul_recall(reference, text) >= 0.99, path.name
        assert word_recall(text, reference) >= 0.99, path.name  # nothing read twice or made up


def test_an_hwp_file_reads_as_its_hwpx_twin(ingested):
    """The same document saved as HWP 5 and as HWPX: the HWP reader's words are the twin's raw XML words, both
    ways round."""
    _, docs = ingested
    for path in TWINS:
        reference, text = real_files.hwpx_reference(path.with_suffix(".hwpx")), docs[path.name].text
        assert word_recall(reference, text) >= 0.99, (path.name, word_recall(reference, text))
        assert word_recall(text, reference) >= 0.99, (path.name, word_recall(text, reference))
        assert hangul_recall(reference, text) >= 0.99, path.name


def test_an_hwp_file_without_a_twin_reads_hangul_s_own_preview(ingested):
    """Hangul writes the start of the text into the file (PrvText) on save: every word of it is in the reading."""
    b, (_, docs) = real_files, ingested
    previewed = [p for p in HWP if p not in TWINS and p.name != PASSWORD and b.hwp_preview(p) is not None]
    assert {p.name for p in previewed} == {"empty-step2-p.hwp", "table-simple-1.hwp", "text-1.hwp"}
    for path in previewed:
        preview, text = b.hwp_preview(path), docs[path.name].text
        assert word_recall(preview, text) >= 0.99, (path.name, word_recall(preview, text))
        assert hangul_recall(preview, text) >= 0.99, path.name


def test_tables_come_out_as_rows_in_the_document_order(ingested):
    """An HWPX table and its HWP twin's: one ``| a | b |`` line per row of the XML, cells in order; an HWP table
    without a twin: its cells in the order of Hangul's preview (merged cells leave empty cells, not moved ones)."""
    _, docs = ingested
    assert len(xml_rows(REAL / "field-mix.hwpx")) == 2  # sample_document's only table has one cell
    for path in HWPX + TWINS:
        assert reader_rows(docs[path.name].text) == xml_rows(path.with_suffix(".hwpx")), path.name
    for name in ("table-simple-1.hwp", "empty-step2-p.hwp"):
        cells = [c for row in reader_rows(docs[name].text) for c in row]
        expected = preview_cells(REAL / name)
        assert len(expected) >= 10 and cells[:len(expected)] == expected, name


def test_a_password_protected_hwp_is_reported_encrypted(ingested):
    report, docs = ingested
    assert header_flags(REAL / PASSWORD) & 2  # the file says it has a password
    assert PASSWORD not in docs
    (skipped,) = [s for s in report.skipped if Path(s.path).name == PASSWORD]
    assert skipped.kind == "encrypted" and "password" in skipped.reason
    assert [Path(s.path).name for s in report.skipped] == [PASSWORD]  # the other files are all read


def test_an_uncompressed_hwp_is_read(ingested):
    """Hangul can save without compressing the sections (an option): the streams are read as they are."""
    _, docs = ingested
    assert not header_flags(REAL / UNCOMPRESSED) & 1
    text = docs[UNCOMPRESSED].text
    assert text.startswith("한글 문서 테스트 Testing")
    rows = reader_rows(text)
    assert rows[0] == ["1,1", "1,2", "1,3", "1,4", "1,5"] and len(rows) == 4
    assert [row[0] for row in rows] == ["1,1", "2,1", "3,1", "4,1"]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is the PDFs' reference")
def test_every_real_file_reads_its_reference_as_the_bench_measures_it():
    """bench/ingest/real_files.py's table (all of tests/data/real: PDFs, Office files, HWP and HWPX) holds: each file with a
    reference reads at least 98% of its words and 99% of its Hangul syllables, and only the password is refused."""
    b = real_files
    rows = {p.name: b.measure(p) for p in sorted(REAL.iterdir()) if p.suffix in b.FORMATS}
    assert {name for name, row in rows.items() if "refused" in row} == {PASSWORD}
    measured = [row for row in rows.values() if row.get("reference")]
    assert len(measured) == len(rows) - 2  # all but the password and sample-1.hwp, which has no preview
    for row in measured:
        assert row["word_recall"] >= 0.98 and (row["hangul_recall"] or 1.0) >= 0.99, row
