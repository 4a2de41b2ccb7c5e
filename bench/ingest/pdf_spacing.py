"""Korean word spaces in PDFs: word and Hangul recall of `evolve ingest`'s PDF reader against pdftotext, per file.

    nice -n 10 .venv/bin/python -m bench.ingest.pdf_spacing [--extra DIR ...] [--out pdf_spacing]

Files: the real PDFs under tests/data/real/ (origin and licence in its NOTICE.md), one generated PDF that lays
Korean out as HWP's PDF export does (:func:`write_generated`), and every PDF under each ``--extra`` folder (for
instance the documentation of Debian's texlive-lang-korean, unpacked with ``apt-get download texlive-lang-korean &&
dpkg -x texlive-lang-korean_*.deb x``; files with fewer than 20 Hangul syllables are left out).

Per file, "before" is the plain pypdf reading the PDF reader made up to version 2 (runs of spaces collapsed), and
"after" the reader's text now. Against pdftotext's text (poppler-utils, the reference):

- word recall: the words holding Hangul in pdftotext's text (counted with repeats) that the reading has too;
- word recall, shared syllables: the same over pdftotext words made only of syllables the reading has somewhere,
  which leaves out words one of the two decoded differently (pdftotext reads the Latin letters of kotex-doc.pdf
  as Hangul syllables, a wrong /ToUnicode pick), so it measures spacing alone;
- Hangul recall: Hangul syllables of pdftotext's text found in the reading (counted with repeats);
- mean Hangul run: syllables per run of Hangul (2-3 in spaced Korean).

Writes bench/results/<out>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import evalsets.ingest.formats  # noqa: F401  (registers every reader)
from bench import RESULTS, ROOT
from bench.ingest.fonts import korean_font
from evalsets.ingest.base import READERS, ReadOptions
from evalsets.text import HANGUL, hangul_recall, mean_hangul_run
from evalsets.text import word_recall as _word_recall

REAL = ROOT / "tests" / "data" / "real"

# ------------------------------------------------------------------------------------------------------ measures

word_recall = partial(_word_recall, hangul_only=True)
"""The words holding Hangul in the reference that the reading has too (evalsets.text.word_recall)."""


def pdftotext(path: Path) -> str:
    """The reference reading (poppler's pdftotext, reading order, UTF-8)."""
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def plain_pages(path: Path) -> list[str]:
    """The PDF reader's reading up to version 2: pypdf's plain extraction, runs of spaces between words collapsed."""
    from pypdf import PdfReader

    return [re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", page.extract_text() or "") for page in PdfReader(path).pages]


# ---------------------------------------------------------------------------------------------- generated file

RUN_TOGETHER_LINES = [
    "11월 코스피는 10월 미국 물가 지표가 컨센서스를 하회하며 상승 출발했다.",
    "외국인 투자자는 반도체와 자동차 업종을 중심으로 순매수를 이어 갔다.",
    "12월에는 금리 인하 기대와 환율 안정이 지수의 하단을 지지할 전망이다.",
    "보안 점검은 매주 월요일 오후 세 시에 진행되며 결과는 그룹웨어에 공지된다.",
]
LEFT_COLUMN = ["신규 입사자는 입사 후 열흘 이내에", "보안 교육을 이수해야 하며 교육은", "온라인으로 진행된다."]
RIGHT_COLUMN = ["법인카드 사용 내역은 매월 말일까지", "회계 시스템에 등록하고 영수증을", "첨부해야 한다."]
SPACED_LINES = ["연차 휴가는 입사 1년 후 15일이 주어집니다.", "출장 신청서는 매월 20일까지 전자결재로 올립니다.",
                "Passwords must be changed every quarter.", "사내 메일 용량은 1인당 50기가바이트입니다."]
GLYPH_ID_LINES = ["보안 점검은 매주 월요일 오후 3시에 진행됩니다. Backups are kept for 30 days."] * 4
WORD_GAP_EM = 0.3
"""The word gap the generated file leaves (in ems): empty space where a space character would be."""


def write_generated(path: Path, glyph_ids: bool = False) -> Path:
    """A PDF laid out as HWP's PDF export lays Korean out: one text object per syllable, words a gap apart and no
    space character between them, in a font whose space glyph is as wide as a syllable (pypdf then reads no word
    break; pdftotext, measuring gaps, does). Page 1: four such lines; page 2: two such columns, the left one written
    first; page 3: ordinary spaced text. With ``glyph_ids``, a fourth page in a copy of the font without its
    /ToUnicode map, whose text comes out as glyph ids (C0 control characters)."""
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, NameObject, NumberObject

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # fpdf2's subsetting warns on NanumGothic's tables
    size = 11
    gap = WORD_GAP_EM * size * 25.4 / 72  # mm

    pdf = FPDF()
    pdf.add_font("nanum", fname=korean_font())
    pdf.add_font("glyph-ids", fname=korean_font())
    pdf.set_font("nanum", size=size)

    def syllables(line: str, x: float, y: float) -> None:
        for word in line.split(" "):
            for char in word:
                pdf.text(x, y, char)
                x += pdf.get_string_width(char)
            x += gap

    pdf.add_page()
    for number, line in enumerate(RUN_TOGETHER_LINES):
        syllables(line, 20, 30 + 8 * number)
    pdf.add_page()
    for column, lines in ((20, LEFT_COLUMN), (110, RIGHT_COLUMN)):
        for number, line in enumerate(lines):
            syllables(line, column, 30 + 8 * number)
    pdf.add_page()
    for line in SPACED_LINES:
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    if glyph_ids:
        pdf.add_page()
        pdf.set_font("glyph-ids", size=size)
        for line in GLYPH_ID_LINES:
            pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))

    writer = PdfWriter(clone_from=str(path))
    for number, page in enumerate(writer.pages):
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            if number == 3:
                del font["/ToUnicode"]
                continue
            described = font["/DescendantFonts"][0].get_object()
            widths, out, at = list(described["/W"]), [], 0
            while at < len(widths):  # /W: "first [w1 w2 ...]" or "first last w"; the space is CID 32 in fpdf2
                if isinstance(widths[at + 1], ArrayObject):
                    out += widths[at:at + 2]
                    at += 2
                else:
                    wide = widths[at] == widths[at + 1] == 32
                    out += [*widths[at:at + 2], NumberObject(940) if wide else widths[at + 2]]
                    at += 3
            described[NameObject("/W")] = ArrayObject(out)
    writer.write(str(path))
    if (sample := PdfReader(path).pages[0].extract_text()) and " " in sample.strip():
        raise RuntimeError(f"the generated file is read with spaces; fpdf2 changed its font subsets? {sample[:80]!r}")
    return path


# ------------------------------------------------------------------------------------------------------- bench


def measure(path: Path) -> dict[str, Any]:
    reference = pdftotext(path)
    started = time.perf_counter()
    before = "\n".join(plain_pages(path))
    before_s = time.perf_counter() - started
    reader = READERS.for_path(path)
    started = time.perf_counter()
    documents = reader.read(path, ReadOptions())
    after_s = time.perf_counter() - started
    with _without_respacing():
        started = time.perf_counter()
        reader.read(path, ReadOptions())
        v2_s = time.perf_counter() - started
    after = "\n".join(d.text for d in documents)
    meta = documents[0].metadata if documents else {}
    row: dict[str, Any] = {"file": path.name, "pages": len(plain_pages(path)) if not documents else
                           len(meta.get("pages", [])), "respaced_pages": meta.get("respaced_pages", []),
                           "hangul_syllables": len(HANGUL.findall(reference)),
                           "mean_run": {"pdftotext": round(mean_hangul_run(reference), 2),
                                        "before": round(mean_hangul_run(before), 2),
                                        "after": round(mean_hangul_run(after), 2)},
                           "seconds": {"plain pypdf": round(before_s, 3), "reader without re-reading": round(v2_s, 3),
                                       "reader": round(after_s, 3)}}
    for name, text in (("before", before), ("after", after)):
        row[name] = {"word_recall": _round(word_recall(reference, text)),
                     "word_recall_shared": _round(word_recall(reference, text, shared_syllables=True)),
                     "hangul_recall": _round(hangul_recall(reference, text))}
    return row


@contextmanager
def _without_respacing() -> Iterator[None]:
    """The PDF reader as it was before version 3 (no page is re-read), to time what the re-reading costs."""
    from evalsets.ingest.formats import pdf

    kept = pdf.needs_spacing
    pdf.needs_spacing = lambda text: False
    try:
        yield
    finally:
        pdf.needs_spacing = kept


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def markdown(rows: list[dict[str, Any]], sources: dict[str, str]) -> str:
    lines = ["# Korean word spaces in PDFs: the PDF reader against pdftotext", "",
             ("| file | source | pages | re-read | word recall before | after | shared syllables before | after "
              "| Hangul recall before | after | mean run pdftotext | before | after | s without re-read | s with |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        b, a, m, s = r["before"], r["after"], r["mean_run"], r["seconds"]
        lines.append(f"| {r['file']} | {sources[r['file']]} | {r['pages']} | {len(r['respaced_pages'])} | "
                     f"{b['word_recall']} | {a['word_recall']} | {b['word_recall_shared']} | "
                     f"{a['word_recall_shared']} | {b['hangul_recall']} | {a['hangul_recall']} | {m['pdftotext']} | "
                     f"{m['before']} | {m['after']} | {s['reader without re-reading']} | {s['reader']} |")
    lines += ["", ("before: pypdf's plain reading (the PDF reader up to version 2); after: the PDF reader's text; both "
                   "against pdftotext. Shared syllables: only pdftotext words made of syllables the reading has "
                   "(leaves out words decoded differently). Seconds: one read of the file by the reader, without and "
                   "with the re-reading of run-together pages.")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extra", type=Path, action="append", default=[], help="a folder of more PDFs")
    parser.add_argument("--out", default="pdf_spacing", help="bench/results/<out>.json and .md")
    args = parser.parse_args()
    if not shutil.which("pdftotext"):
        sys.exit("pdftotext is missing: apt-get install poppler-utils")
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="bench-pdf-spacing-"))
    files = {p: "real (tests/data/real)" for p in sorted(REAL.glob("*.pdf"))}
    files[write_generated(work / "generated-hwp-layout.pdf")] = "generated"
    for folder in args.extra:
        files.update({p: f"extra ({folder.name})" for p in sorted(folder.rglob("*.pdf"))})
    rows = []
    for path in files:
        row = measure(path)
        if row["hangul_syllables"] < 20:
            continue
        rows.append(row)
        print(f"{row['file']}: word recall {row['before']['word_recall']} -> {row['after']['word_recall']}, "
              f"re-read pages {row['respaced_pages']}", flush=True)
    sources = {p.name: source for p, source in files.items()}
    out = {"pdftotext": subprocess.run(["pdftotext", "-v"], capture_output=True, text=True, check=False).stderr.splitlines()[0],
           "files": rows, "sources": sources}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(rows, sources))
    print()
    print(markdown(rows, sources))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
