"""Titles and Korean headings (issue 33, points 4 and 5), on real files written in the test."""

from __future__ import annotations

import zipfile
from pathlib import Path

import evalsets.ingest.formats  # noqa: F401  (registers every reader)
from evalsets.ingest.base import READERS, ReadOptions
from evalsets.ingest.structure import choose_title, heading_level
from pipelines.chunking._markdown import MarkdownChunker
from tests.evalsets.test_ingest_formats import make_pdf


def read_one(path: Path):
    (doc,) = READERS.for_path(path).read(path, ReadOptions())
    return doc


LONG_ITEMS = [
    "1. 계약상대자는 계약 체결일로부터 14일 이내에 착수계와 사업수행계획서를 발주기관에 제출하여야 한다.",
    "2. 계약상대자는 사업 수행 중 알게 된 발주기관의 정보를 외부에 누설하여서는 아니 되며 보안 서약서를 제출한다.",
]
RFP = "\n".join([
    "Ⅰ. 개요",
    "본 문서는 차세대 시스템 구축 사업의 제안요청서이다.",
    "1.1. 일반사항",
    "사업 기간은 계약일로부터 12개월이다.",
    *LONG_ITEMS,
    "가. 목적",
    "업무 처리의 효율을 높인다.",
    "제3조(정의)",
    "이 요청서에서 사용하는 용어의 뜻은 다음과 같다.",
])


def test_korean_rfp_text_is_chunked_into_sections(tmp_path):
    path = tmp_path / "rfp.txt"
    path.write_text(RFP, encoding="utf-8")
    doc = read_one(path)
    assert [h for _, h in doc.metadata["sections"]] == ["Ⅰ. 개요", "1.1. 일반사항", "가. 목적", "제3조(정의)"]
    assert doc.text.startswith("# Ⅰ. 개요\n") and "\n### 1.1. 일반사항\n" in doc.text
    assert "\n#### 가. 목적\n" in doc.text and "\n### 제3조(정의)\n" in doc.text
    for item in LONG_ITEMS:  # a numbered list of sentences stays body text
        assert "\n" + item + "\n" in doc.text
    assert doc.title == "Ⅰ. 개요"
    chunker = MarkdownChunker(1000, include_title=False)
    sections = [doc.text[a:b] for a, b in chunker.spans(doc.text)]
    assert len(sections) == 4
    assert [s.split("\n", 1)[0].lstrip("#").strip() for s in sections] == ["Ⅰ. 개요", "1.1. 일반사항", "가. 목적",
                                                                           "제3조(정의)"]
    assert all(item in sections[1] for item in LONG_ITEMS)


def test_heading_rule_keeps_false_positives_out():
    assert heading_level("Ⅱ.") == 1 and heading_level("I. 사업 개요") == 1 and heading_level("제2장 총칙") == 1
    assert heading_level("1. 목적") == 2 and heading_level("1.1.1 세부 내용") == 4 and heading_level("나) 범위") == 5
    for body in ("가. 일정을 준수함", "1. 제출 서류는 다음과 같습니다.", "가. 목적은 다음과 같다", "3 kg 이하",
                 "2024. 3. 5.", "1. " + "가" * 70, "| 표 | 칸 |"):
        assert heading_level(body) == 0, body


def test_title_rules():
    body = "- 1 -\n2024. 3. 5.\n보안 점검 결과 보고\n본문입니다."
    assert choose_title(body, "stem", "PowerPoint 프레젠테이션") == "보안 점검 결과 보고"
    assert choose_title(body, "stem", "결과보고.hwp", "untitled", "Microsoft Word - 보고.docx") == "보안 점검 결과 보고"
    assert choose_title("# 첫 제목\n" + body, "stem", "문서1") == "첫 제목"
    assert choose_title(body, "stem", "보안  점검\n결과") == "보안 점검 결과"  # found in the body, spaces aside
    assert choose_title(body, "stem", "유류매출인지 운송대행인지 여부") == "보안 점검 결과 보고"  # not in the body
    assert choose_title("- 3 -\n2024-01-05", "stem") == "stem"


def test_pdf_metadata_title_that_is_a_file_name_or_a_default(tmp_path):
    pages = [["Ⅰ. 사업 개요", "본 사업은 민원 시스템을 개선한다."], ["1.1. 추진 배경", "노후 장비를 교체한다."]]
    for name, title in (("a.pdf", "사업계획서_최종.hwp"), ("b.pdf", "PowerPoint 프레젠테이션")):
        doc = read_one(make_pdf(tmp_path / name, pages, title=title))
        assert doc.title == "Ⅰ. 사업 개요"
        assert [h for _, h in doc.metadata["sections"]] == ["Ⅰ. 사업 개요", "1.1. 추진 배경"]
    doc = read_one(make_pdf(tmp_path / "c.pdf", pages, title="추진 배경"))  # occurs in the body: kept
    assert doc.title == "추진 배경"


def test_docx_title_one_cell_table_and_numbering(tmp_path):
    import docx

    document = docx.Document()
    document.core_properties.title = "Document1"
    box = document.add_table(rows=1, cols=1)
    box.cell(0, 0).text = "추진 배경"
    document.add_paragraph("노후 장비를 교체한다.")
    document.add_paragraph("가. 목적")
    document.add_paragraph("업무 효율을 높인다.")
    document.add_paragraph(LONG_ITEMS[0])
    grid = document.add_table(rows=2, cols=2)
    grid.cell(0, 0).text, grid.cell(1, 1).text = "항목", "값"
    document.save(str(tmp_path / "plan.docx"))
    doc = read_one(tmp_path / "plan.docx")
    assert doc.text.startswith("## 추진 배경\n\n노후 장비를 교체한다.\n\n#### 가. 목적\n")
    assert "\n" + LONG_ITEMS[0] + "\n" in doc.text and "| 항목 |  |\n|  | 값 |" in doc.text
    assert [h for _, h in doc.metadata["sections"]] == ["추진 배경", "가. 목적"]
    assert doc.title == "추진 배경"

    document.core_properties.title = "노후 장비를 교체한다."  # in the body: the metadata title stands
    document.save(str(tmp_path / "kept.docx"))
    assert read_one(tmp_path / "kept.docx").title == "노후 장비를 교체한다."


def test_hwpx_one_cell_table_numbered_lines_and_title(tmp_path):
    from hwpx import HwpxDocument

    doc = HwpxDocument.new()
    doc.add_paragraph("보도자료", inherit_style=False)
    box = doc.add_table(1, 1)
    box.set_cell_text(0, 0, "Ⅰ. 추진 배경")
    doc.add_paragraph("노후 장비를 교체한다.", inherit_style=False)
    doc.add_paragraph("1.1. 일반사항", inherit_style=False)
    doc.add_paragraph("사업 기간은 12개월이다.", inherit_style=False)
    source = tmp_path / "source.hwpx"
    doc.save_to_path(source)
    path = tmp_path / "press.hwpx"
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(path, "w") as out:
        for item in archive.infolist():
            data = archive.read(item)
            if item.filename == "Contents/content.hpf":  # Hangul's summary title, found nowhere in the body
                data = data.replace(b"<opf:title/>", "<opf:title>유류매출인지 운송대행인지 여부</opf:title>".encode())
            out.writestr(item, data)
    result = read_one(path)
    assert "\n# Ⅰ. 추진 배경\n" in result.text and "\n### 1.1. 일반사항\n" in result.text
    assert [h for _, h in result.metadata["sections"]] == ["Ⅰ. 추진 배경", "1.1. 일반사항"]
    assert result.title == "Ⅰ. 추진 배경"
