"""The format readers of `evolve ingest` on real files written by the libraries that make them (fpdf2 with a Korean
font, python-docx, python-pptx, openpyxl) and on HTML, Markdown and text in the encodings Korean files come in:
text, headings, table rows and page offsets come out, and an encrypted, scanned or damaged file is one
ExtractionError of its kind with a one-line reason."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import evalsets.ingest.formats  # noqa: F401  (registers every reader)
from bench.ingest.fonts import korean_font as font
from evalsets.ingest.base import READERS, ExtractionError, ReadOptions


def read(path: Path):
    reader = READERS.for_path(path)
    assert reader is not None, path
    return reader.read(path, ReadOptions())


def read_one(path: Path):
    documents = read(path)
    assert len(documents) == 1
    return documents[0]


def read_titled(path: Path, title: str, start: str):
    """(the one document read from ``path``, its text), checked for the title found and how the text starts."""
    doc = read_one(path)
    assert doc.title == title
    assert doc.text.startswith(start)
    return doc, doc.text


def assert_sections(doc, headings: list[str]) -> None:
    """The document's sections are ``headings`` in order, each offset at the start of its heading line."""
    sections = doc.metadata["sections"]
    assert [heading for _, heading in sections] == headings
    for offset, heading in sections:
        assert doc.text[offset:].lstrip("#").startswith(" " + heading)


def failure(path: Path, kind: str) -> str:
    with pytest.raises(ExtractionError) as caught:
        read(path)
    error = caught.value
    assert error.kind == kind, (error.kind, error.reason)
    assert error.reason and "\n" not in error.reason and "Traceback" not in error.reason
    assert len(error.reason) < 300
    return error.reason


def truncated(source: Path, suffix: str | None = None) -> Path:
    target = source.with_name("truncated-" + source.stem + (suffix or source.suffix))
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def random_bytes(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(random.Random(7).randrange(256) for _ in range(4000)) + b"\xff\x80\x00")
    return path


# ----------------------------------------------------------------------------------------------------------- PDF

PDF_PAGES = [
    ["보안 정책 안내", "모든 직원은 분기마다 비밀번호를 변경해야 합니다.", "Passwords must be changed every quarter."],
    ["휴가 규정", "연차 휴가는 입사 1년 후 15일이 주어집니다.", "Annual leave is 15 days after the first year."],
    ["문의처", "Contact the HR team at hr@example.com for details."],
]


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("nanum", fname=font())
    pdf.set_font("nanum", size=12)
    if title:
        pdf.set_title(title)
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def test_pdf_pages_korean_and_english(tmp_path):
    doc = read_one(make_pdf(tmp_path / "정책.pdf", PDF_PAGES, title="휴가 규정"))
    assert doc.title == "휴가 규정"  # a metadata title found in the body's start is kept
    for lines in PDF_PAGES:
        for line in lines:
            assert line in doc.text
    assert [number for _, number in doc.metadata["pages"]] == [1, 2, 3]
    for (offset, number), lines in zip(doc.metadata["pages"], PDF_PAGES):
        assert doc.text[offset:].startswith(lines[0]), (number, doc.text[offset:offset + 40])
    assert doc.text.index("Annual leave") < doc.metadata["pages"][2][0]


def test_pdf_title_falls_back_to_stem_and_skips_blank_pages(tmp_path):
    pages = [PDF_PAGES[0], [], PDF_PAGES[2]]
    doc = read_one(make_pdf(tmp_path / "handbook.pdf", pages))
    assert doc.title == "보안 정책 안내"  # no metadata title: the first short line
    assert [number for _, number in doc.metadata["pages"]] == [1, 3]
    assert doc.text[doc.metadata["pages"][1][0]:].startswith("문의처")


def test_pdf_without_text_or_images_is_empty(tmp_path):
    assert read(make_pdf(tmp_path / "blank.pdf", [[], []])) == []


def test_pdf_encrypted(tmp_path):
    from pypdf import PdfReader, PdfWriter

    source = make_pdf(tmp_path / "plain.pdf", PDF_PAGES)
    locked = PdfWriter(clone_from=PdfReader(source))
    locked.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    locked.write(tmp_path / "locked.pdf")
    assert "password" in failure(tmp_path / "locked.pdf", "encrypted")

    # an owner password alone (printing or copying restricted) opens without one: the text is read
    restricted = PdfWriter(clone_from=PdfReader(source))
    restricted.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    restricted.write(tmp_path / "restricted.pdf")
    assert "Annual leave is 15 days" in read_one(tmp_path / "restricted.pdf").text


def scan_page(pdf, shade: int) -> None:
    from PIL import Image

    pdf.add_page()
    pdf.image(Image.new("RGB", (64, 48), (shade, shade, shade)), x=10, y=10, w=120)


def test_pdf_scanned(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    for shade in (40, 200):
        scan_page(pdf, shade)
    pdf.output(str(tmp_path / "scan.pdf"))
    reason = failure(tmp_path / "scan.pdf", "scanned")
    assert reason == "no text layer on any of its 2 pages (a scan? run OCR first)"

    # a scanned page among text pages: the text is read and the image-only page is named
    mixed = FPDF()
    mixed.add_font("nanum", fname=font())
    mixed.set_font("nanum", size=12)
    mixed.add_page()
    mixed.cell(text="첫 페이지 First page")
    scan_page(mixed, 90)
    mixed.output(str(tmp_path / "mixed.pdf"))
    doc = read_one(tmp_path / "mixed.pdf")
    assert doc.text == "첫 페이지 First page"
    assert doc.metadata == {"pages": [[0, 1]], "image_only_pages": [2]}


def test_pdf_corrupt(tmp_path):
    source = make_pdf(tmp_path / "whole.pdf", PDF_PAGES)
    assert failure(truncated(source), "corrupt").startswith("damaged or truncated PDF (")
    assert failure(random_bytes(tmp_path, "noise.pdf"), "corrupt") == "not a PDF (no %PDF- header at its start)"
    (tmp_path / "zero.pdf").write_bytes(b"")
    assert read(tmp_path / "zero.pdf") == []  # a zero-byte file is empty, not damaged


# ---------------------------------------------------------------------------------------------------------- DOCX

def make_docx(path: Path, title: str | None = None) -> Path:
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("출장 규정 Travel policy", level=1)
    document.add_paragraph("출장비는 사전 승인이 필요합니다. Travel costs need approval in advance.")
    table = document.add_table(rows=3, cols=2)
    for row, cells in zip(table.rows, [("항목 Item", "한도 Limit"), ("숙박 Hotel", "150,000원"),
                                       ("식비 Meals", "50,000원")]):
        for cell, value in zip(row.cells, cells):
            cell.text = value
    document.add_paragraph("표 이후의 문단 A paragraph after the table.")
    document.add_heading("정산 Settlement", level=2)
    document.add_paragraph("영수증을 첨부하세요.", style="List Bullet")
    document.add_paragraph("Attach every receipt.", style="List Bullet")
    korean = document.styles.add_style("제목 3", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("예외 사항 Exceptions", style=korean)
    merged = document.add_table(rows=2, cols=2)
    merged.cell(0, 0).merge(merged.cell(0, 1)).text = "병합된 머리글 Merged header"
    merged.cell(1, 0).text, merged.cell(1, 1).text = "왼쪽", "right"
    document.save(str(path))
    return path


def test_docx_body_order_headings_and_tables(tmp_path):
    doc, text = read_titled(make_docx(tmp_path / "travel.docx"), "출장 규정 Travel policy",
                            "# 출장 규정 Travel policy\n\n출장비는 사전 승인이 필요합니다.")
    rows = "| 항목 Item | 한도 Limit |\n| 숙박 Hotel | 150,000원 |\n| 식비 Meals | 50,000원 |"
    assert rows in text
    assert text.index("Travel costs need approval") < text.index(rows) < text.index("A paragraph after the table")
    assert "\n## 정산 Settlement\n" in text
    assert "- 영수증을 첨부하세요.\n- Attach every receipt." in text
    assert "\n### 예외 사항 Exceptions\n" in text
    assert "| 병합된 머리글 Merged header |\n| 왼쪽 | right |" in text
    assert_sections(doc, ["출장 규정 Travel policy", "정산 Settlement", "예외 사항 Exceptions"])


def test_docx_title_from_properties_and_empty_file(tmp_path):
    import docx

    assert read_one(make_docx(tmp_path / "a.docx", title="정산 Settlement")).title == "정산 Settlement"
    assert read_one(make_docx(tmp_path / "b.docx", title="문서 제목 Document title")).title == "출장 규정 Travel policy"
    docx.Document().save(str(tmp_path / "empty.docx"))
    assert read(tmp_path / "empty.docx") == []


def test_docx_corrupt_encrypted_and_legacy(tmp_path):
    import zipfile

    failure(truncated(make_docx(tmp_path / "whole.docx")), "corrupt")
    assert "not a ZIP package" in failure(random_bytes(tmp_path, "noise.docx"), "corrupt")
    with zipfile.ZipFile(tmp_path / "other.docx", "w") as package:
        package.writestr("readme.txt", "a ZIP, but no Word document in it")
    assert failure(tmp_path / "other.docx", "corrupt").startswith("damaged .docx package (")
    (tmp_path / "zero.docx").write_bytes(b"")
    assert read(tmp_path / "zero.docx") == []
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    (tmp_path / "locked.docx").write_bytes(ole + "EncryptedPackage".encode("utf-16-le") + bytes(512))
    assert "password" in failure(tmp_path / "locked.docx", "encrypted")
    (tmp_path / "old.docx").write_bytes(ole + bytes(1024))
    assert ".doc " in failure(tmp_path / "old.docx", "unsupported")


# ---------------------------------------------------------------------------------------------------------- PPTX

def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "2024년 실적 Results"
    first.placeholders[1].text_frame.text = "매출이 20% 늘었습니다.\nRevenue grew by 20%."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "지역별 매출 Sales by region"
    table = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, cells in enumerate([("지역 Region", "매출 Sales"), ("서울 Seoul", "120"), ("부산 Busan", "80")]):
        for c, value in enumerate(cells):
            table.cell(r, c).text = value
    second.notes_slide.notes_text_frame.text = "부산은 신규 지점입니다. Busan is a new branch."
    deck.slides.add_slide(deck.slide_layouts[6])  # a blank slide: no page of its own
    last = deck.slides.add_slide(deck.slide_layouts[6])
    group = last.shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "감사합니다. Thank you."
    deck.save(str(path))
    return path


def test_pptx_slides_tables_and_notes(tmp_path):
    doc, text = read_titled(make_pptx(tmp_path / "실적.pptx"), "2024년 실적 Results",
                            "## 2024년 실적 Results\n매출이 20% 늘었습니다.\nRevenue grew by 20%.")
    assert "| 지역 Region | 매출 Sales |\n| 서울 Seoul | 120 |\n| 부산 Busan | 80 |" in text
    assert "Notes:\n부산은 신규 지점입니다. Busan is a new branch." in text
    pages = doc.metadata["pages"]
    assert [number for _, number in pages] == [1, 2, 4]
    starts = ["## 2024년 실적 Results", "## 지역별 매출 Sales by region", "감사합니다. Thank you."]
    for (offset, _), start in zip(pages, starts):
        assert text[offset:].startswith(start)
    assert text.index("Busan is a new branch") < pages[2][0]


def test_pptx_corrupt(tmp_path):
    failure(truncated(make_pptx(tmp_path / "whole.pptx")), "corrupt")
    failure(random_bytes(tmp_path, "noise.pptx"), "corrupt")


# ---------------------------------------------------------------------------------------------------------- XLSX

def make_xlsx(path: Path, extra_rows: int = 0) -> Path:
    import datetime as dt

    import openpyxl

    workbook = openpyxl.Workbook()
    sales = workbook.active
    sales.title = "매출 Sales"
    sales.append(["제품 Product", "수량 Quantity", "날짜 Date"])
    sales.append(["노트북 Laptop", 3, dt.datetime(2024, 5, 1)])
    sales.append([])
    sales.append(["모니터 Monitor", 2.0, dt.datetime(2024, 5, 2, 9, 30)])
    sales.append([None, None, None, "비고 note"])
    for n in range(extra_rows):
        sales.append([f"item {n}", n])
    workbook.create_sheet("빈 시트 Empty")
    staff = workbook.create_sheet("Staff")
    staff["A1"], staff["B1"] = "이름 Name", "부서 Team"
    staff["A2"], staff["B2"] = "김민수", "영업 Sales"
    staff["C2"] = "=1+1"
    workbook.save(str(path))
    return path


def test_xlsx_sheets_and_rows(tmp_path):
    doc, text = read_titled(make_xlsx(tmp_path / "sales.xlsx"), "sales",
                            "## 매출 Sales\n| 제품 Product | 수량 Quantity | 날짜 Date |\n| 노트북 Laptop | 3 | 2024-05-01 |\n"
                            "| 모니터 Monitor | 2 | 2024-05-02 09:30:00 |\n|  |  |  | 비고 note |")
    assert "## Staff\n| 이름 Name | 부서 Team |\n| 김민수 | 영업 Sales |" in text
    assert "Empty" not in text
    assert doc.metadata["sheets"] == ["매출 Sales", "Staff"]
    for offset, name in doc.metadata["sections"]:
        assert text[offset:].startswith(f"## {name}\n")
    assert "truncated_rows" not in doc.metadata


def test_xlsx_row_cap_and_xlsm(tmp_path, monkeypatch):
    from evalsets.ingest.formats import xlsx

    monkeypatch.setattr(xlsx, "MAX_ROWS", 5)
    path = make_xlsx(tmp_path / "big.xlsx", extra_rows=10)
    doc = read_one(path)
    assert doc.metadata["truncated_rows"] == {"매출 Sales": 9}
    assert "| item 0 | 0 |" in doc.text and "item 1 " not in doc.text
    macro = tmp_path / "macro.xlsm"
    macro.write_bytes(make_xlsx(tmp_path / "m.xlsx").read_bytes())
    assert "| 김민수 | 영업 Sales |" in read_one(macro).text


def test_xlsx_corrupt_and_empty(tmp_path):
    import openpyxl

    failure(truncated(make_xlsx(tmp_path / "whole.xlsx")), "corrupt")
    failure(random_bytes(tmp_path, "noise.xlsx"), "corrupt")
    openpyxl.Workbook().save(str(tmp_path / "empty.xlsx"))
    assert read(tmp_path / "empty.xlsx") == []


# ---------------------------------------------------------------------------------------------------------- HTML

HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>고객 지원 Customer support</title>
<style>body { color: red }</style><script>var hidden = "스크립트 script";</script></head>
<body>
<nav><a href="/">홈 Home</a> | <a href="/about">메뉴 Menu</a></nav>
<h1>환불 정책 Refund policy</h1>
<p>구매 후 14일 이내에   환불할 수 있습니다.
 Refunds are possible within 14 days.</p>
<div><p>첫 문단 First</p><p>둘째 문단 Second<br>다음 줄 next line</p></div>
<h2>조건 Conditions</h2>
<ul><li>미개봉 상품 Unopened items</li><li>영수증 필요 Receipt required
  <ul><li>원본 Original</li></ul></li></ul>
<table><tr><th>상품 Item</th><th>기간 Period</th></tr><tr><td>전자제품 Electronics</td><td>7일</td></tr></table>
<footer>저작권 Copyright 2024</footer>
</body></html>"""


def test_html_structure(tmp_path):
    path = tmp_path / "refund.html"
    path.write_text(HTML, encoding="utf-8")
    doc, text = read_titled(path, "고객 지원 Customer support",
                            "# 환불 정책 Refund policy\n\n구매 후 14일 이내에 환불할 수 있습니다. Refunds are possible")
    assert "\n\n첫 문단 First\n\n둘째 문단 Second\n다음 줄 next line\n\n" in text
    assert "\n## 조건 Conditions\n\n- 미개봉 상품 Unopened items\n- 영수증 필요 Receipt required\n  - 원본 Original\n" in text
    assert "| 상품 Item | 기간 Period |\n| 전자제품 Electronics | 7일 |" in text
    for dropped in ("스크립트", "color", "홈 Home", "Copyright"):
        assert dropped not in text
    assert_sections(doc, ["환불 정책 Refund policy", "조건 Conditions"])


def test_html_euc_kr_declared(tmp_path):
    page = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=euc-kr"></head><body>'
            "<h1>공지사항 Notice</h1><p>똠방각하 서버 점검은 토요일입니다. Maintenance is on Saturday.</p></body></html>")
    path = tmp_path / "notice.htm"
    path.write_bytes(page.encode("cp949"))  # EUC-KR as Korean Windows writes it: CP949, whose 똠 EUC-KR lacks
    doc = read_one(path)
    assert doc.title == "공지사항 Notice"
    assert "똠방각하 서버 점검은 토요일입니다. Maintenance is on Saturday." in doc.text

    undeclared = tmp_path / "undeclared.html"
    undeclared.write_bytes("<p>선언 없는 한국어 페이지 No charset</p>".encode("cp949"))
    assert read_one(undeclared).text == "선언 없는 한국어 페이지 No charset"


def test_html_empty_and_corrupt(tmp_path):
    (tmp_path / "empty.html").write_text("<html><head><title>t</title></head><body><script>x()</script></body></html>")
    assert read(tmp_path / "empty.html") == []
    failure(random_bytes(tmp_path, "noise.html"), "corrupt")


# ---------------------------------------------------------------------------------------------------- Markdown, text

MARKDOWN = """# 온보딩 가이드 Onboarding guide

첫 주에는 노트북을 받습니다. You get a laptop in the first week.

## 계정 Accounts

| 시스템 System | 담당 Owner |
|---|---|
| 메일 Mail | IT |

```
# 코드 안의 주석 not a heading
```

### 문의 Contact ###
"""


def test_markdown_notion_export(tmp_path):
    path = tmp_path / "Meeting notes 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = read_one(path)
    assert doc.title == "온보딩 가이드 Onboarding guide"
    assert doc.metadata["notion_id"] == "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
    assert "| 메일 Mail | IT |" in doc.text and "You get a laptop in the first week." in doc.text
    assert_sections(doc, ["온보딩 가이드 Onboarding guide", "계정 Accounts", "문의 Contact"])

    untitled = tmp_path / "회의록 Minutes 0123456789abcdef0123456789abcdef.md"
    untitled.write_text("\ufeff## 안건 Agenda\n\n예산 Budget\n", encoding="utf-8")
    read_titled(untitled, "회의록 Minutes", "## 안건 Agenda")  # the BOM is gone


def test_text_encodings(tmp_path):
    body = "공지: 사무실 이전 안내\r\nThe office moves on 3 June.\r\n\r\n\r\n\r\n감사합니다.  \r\n"
    expected = "공지: 사무실 이전 안내\nThe office moves on 3 June.\n\n감사합니다."
    for name, encoding in (("utf8.txt", "utf-8"), ("bom.txt", "utf-8-sig"), ("windows.txt", "cp949"),
                           ("notepad.txt", "utf-16")):
        path = tmp_path / name
        path.write_bytes(body.encode(encoding))
        doc = read_one(path)
        assert doc.text == expected, name
        assert doc.title == "공지: 사무실 이전 안내"  # plain text: its first short line
    (tmp_path / "blank.txt").write_text(" \n\n\t\n")
    assert read(tmp_path / "blank.txt") == []


def test_text_and_markdown_corrupt(tmp_path):
    for name in ("noise.txt", "noise.md"):
        assert failure(random_bytes(tmp_path, name), "corrupt") in ("not UTF-8 or CP949 text", "binary data, not text")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01\x02\x03 ELF" * 50)
    assert failure(binary, "corrupt") == "binary data, not text"


def test_every_suffix_has_its_reader():
    formats = {suffix: READERS.for_path(Path("x" + suffix)).format for suffix in READERS.suffixes}
    for suffix, format in {".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".xlsm": "xlsx",
                           ".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown",
                           ".txt": "text"}.items():
        assert formats[suffix] == format
    for legacy in (".doc", ".ppt", ".xls"):
        assert READERS.for_path(Path("x" + legacy)) is None


MOJIBAKE = "ɹɐǝɯ ΘΣΨ ЖЩЮ ɹɐǝɯ ΘΣΨ ЖЩЮ ʃʒʔ ΔΞΠ ЯБГ ɹɐǝɯ ΘΣΨ"


def test_pdf_pages_of_mojibake_are_kept_out_and_a_file_of_nothing_else_is_garbled(tmp_path):
    """Garbage is not indexed: a page of letters mixed from scripts no language mixes is dropped and named in the
    metadata (the rest of the file is read); a file whose every text page is such is reported garbled, with pages."""
    doc = read_one(make_pdf(tmp_path / "mixed.pdf", [PDF_PAGES[0], [MOJIBAKE] * 4, PDF_PAGES[1]]))
    assert doc.metadata["garbled_pages"] == [2]
    assert "ΘΣΨ" not in doc.text and "비밀번호를 변경해야" in doc.text and "연차 휴가는" in doc.text
    with pytest.raises(ExtractionError) as refused:
        read(make_pdf(tmp_path / "all.pdf", [[MOJIBAKE] * 3, [MOJIBAKE] * 2]))
    assert refused.value.kind == "garbled" and "pages 1, 2" in refused.value.reason


def test_garbage_is_told_from_real_text_of_other_languages():
    from evalsets.text import garbled

    assert garbled(MOJIBAKE * 2) and garbled("a\x01b\x02c\x03d\x04 " * 10)
    for real in ("연차 휴가는 입사 1년 후 15일이 주어집니다. Annual leave is 15 days after the first year.",
                 "Η Ελλάδα είναι μια χώρα στη νοτιοανατολική Ευρώπη με πλούσια ιστορία και πολιτισμό.",
                 "Москва — столица России, крупнейший по численности населения город страны.",
                 "東京の本社は日本の首都にあります。カタカナとひらがなを使います。会議室は三階です。",
                 "Tab\tand newline\nare text, not controls; naïve café façade Zürich São Paulo."):
        assert garbled(real) is None, real
