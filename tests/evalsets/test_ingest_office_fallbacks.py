"""DOCX and PPTX content the readers used to drop or refuse, read through `evolve ingest`: text boxes (once, though
Word stores each twice), nested tables, a table whose grid python-docx cannot follow, chart titles and the names of
chart series and categories; real Office-saved files from tests/data/real (see NOTICE.md there) and the ingest
command's one-line option errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docx
import pytest
from docx.oxml import parse_xml

from evalsets import read_corpus
from evalsets.ingest import ingest

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
      'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
      'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
      'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
      'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
      'xmlns:v="urn:schemas-microsoft-com:vml"')


def box_content(*paragraphs: str) -> str:
    return "<w:txbxContent>" + "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs) + \
        "</w:txbxContent>"


def drawing_box(*paragraphs: str) -> str:
    """A text box as Word 2010+ writes it: a DrawingML shape, and a VML copy for older readers."""
    shape = ("<w:drawing><wp:anchor><wp:docPr id='1' name='Text Box 1'/><a:graphic><a:graphicData "
             "uri='http://schemas.microsoft.com/office/word/2010/wordprocessingShape'><wps:wsp><wps:txbx>"
             + box_content(*paragraphs) + "</wps:txbx><wps:bodyPr/></wps:wsp></a:graphicData></a:graphic>"
             "</wp:anchor></w:drawing>")
    vml = "<w:pict><v:shape><v:textbox>" + box_content(*paragraphs) + "</v:textbox></v:shape></w:pict>"
    return (f"<w:r {NS}><mc:AlternateContent><mc:Choice Requires='wps'>{shape}</mc:Choice>"
            f"<mc:Fallback>{vml}</mc:Fallback></mc:AlternateContent></w:r>")


def vml_box(*paragraphs: str) -> str:
    """A text box as Word 2003-2007 wrote it: VML only."""
    return f"<w:r {NS}><w:pict><v:shape><v:textbox>{box_content(*paragraphs)}</v:textbox></v:shape></w:pict></w:r>"


def office_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("보안 점검 안내 Security check", level=1)
    anchor = document.add_paragraph("점검 일정은 아래와 같습니다.")
    anchor._p.append(parse_xml(drawing_box("주의: 점검 중에는 VPN이 끊깁니다.", "Note: the VPN drops during the check.")))
    boxed = document.add_paragraph()  # a paragraph that holds only a box
    boxed._p.append(parse_xml(vml_box("문의: 정보보안팀 내선 1234")))

    outer = document.add_table(rows=2, cols=2)
    outer.cell(0, 0).text, outer.cell(0, 1).text = "항목", "내용"
    outer.cell(1, 0).text = "점검 대상"
    target = outer.cell(1, 1)
    target.text = "다음 서버:"
    inner = target.add_table(rows=2, cols=2)
    for row, values in enumerate([("web-01", "10.0.0.1"), ("db-01", "10.0.0.2")]):
        for col, value in enumerate(values):
            inner.cell(row, col).text = value

    irregular = document.add_table(rows=2, cols=2)
    for row, values in enumerate([("단계", "담당"), ("백업", "인프라팀")]):
        for col, value in enumerate(values):
            irregular.cell(row, col).text = value
    # a third cell in the second row that continues a vertical merge from a cell the first row does not have:
    # Word opens this; python-docx raises "no `tc` element at grid_offset=2"
    irregular.rows[1]._tr.append(parse_xml(f"<w:tc {NS}><w:tcPr><w:vMerge/></w:tcPr><w:p><w:r><w:t>야간</w:t>"
                                           "</w:r></w:p></w:tc>"))
    document.add_paragraph("점검 후 결과를 공지합니다.")
    document.save(path)
    return path


EXPECTED = [
    "# 보안 점검 안내 Security check",
    "점검 일정은 아래와 같습니다.",
    "주의: 점검 중에는 VPN이 끊깁니다.",
    "Note: the VPN drops during the check.",
    "문의: 정보보안팀 내선 1234",
    "| 항목 | 내용 |",
    "| 점검 대상 | 다음 서버: web-01 10.0.0.1 db-01 10.0.0.2 |",
    "| 단계 | 담당 |",
    "| 백업 | 인프라팀 | 야간 |",
    "점검 후 결과를 공지합니다.",
]


def corpus_docs(folder: Path) -> dict[str, object]:
    return {d.doc_id: d for d in read_corpus(folder / "corpus.jsonl")}


def test_text_boxes_nested_tables_and_an_irregular_table(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    path = office_docx(drive / "점검.docx")
    with pytest.raises(ValueError, match="grid_offset"):  # what refused the whole file before
        [row.cells for row in docx.Document(str(path)).tables[-1].rows]
    report = ingest([drive], tmp_path / "corpus", workers=1)
    assert report.skipped == [] and report.partial == []
    doc = corpus_docs(tmp_path / "corpus")["drive/점검.docx"]
    blocks = [line for line in doc.text.split("\n") if line]
    assert blocks == EXPECTED
    assert doc.text.count("VPN이 끊깁니다") == 1  # the VML fallback copy of the box is not read again


def test_real_word_file_with_a_nested_table():
    from evalsets.ingest.base import READERS, ReadOptions

    path = REAL / "blk-paras-and-tables.docx"
    (doc,) = READERS.for_path(path).read(path, ReadOptions())
    # the one-cell outer table holds "Text before", a two-row table ("Table", "Between"), "Text after"
    assert "Text before Table Between Text after" in doc.text
    assert doc.text.startswith("Lorem ipsum dolor sit amet") and doc.text.endswith("finibus malesuada.")


def test_real_powerpoint_charts_give_titles_series_and_categories(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "charts.pptx").write_bytes((REAL / "cht-chart-props.pptx").read_bytes())
    ingest([drive], tmp_path / "corpus", workers=1)
    doc = corpus_docs(tmp_path / "corpus")["drive/charts.pptx"]
    dates = "categories: 2002-01-05, 2002-01-06, 2002-01-07, 2002-01-08, 2002-01-09"  # m/d/yy serials 37261-5
    named = "categories: Category 1, Category 2, Category 3, Category 4"
    # two slides of two charts each; one chart on each has a title, the others an automatic one (not stored)
    assert [slide.split("\n") for slide in doc.text.split("\n\n")] == [
        ["series: Series 1, Series 2", dates, "On The Radar", "series: Series 1, Series 2", dates],
        ["series: Series 1, Series 2, Series 3", named, "Explicit Chart Title", "series: Series 1, Series 2, Series 3",
         named]]
    assert doc.metadata["pages"] == [[0, 1], [doc.text.index("series: Series 1, Series 2, Series 3"), 2]]


def test_a_chart_written_by_python_pptx(tmp_path):
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "분기 실적"
    data = CategoryChartData()
    data.categories = ["1분기", "2분기", "3분기"]
    data.add_series("매출 Revenue", (10, 20, 30))
    data.add_series("비용", (5, 6, 7))
    chart = slide.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(1), Inches(6), Inches(4),
                                   data).chart
    chart.has_title = True
    chart.chart_title.text_frame.text = "지역별 매출 추이"
    chart.value_axis.has_title = True
    chart.value_axis.axis_title.text_frame.text = "억 원"
    drive = tmp_path / "drive"
    drive.mkdir()
    deck.save(drive / "실적.pptx")
    ingest([drive], tmp_path / "corpus", workers=1)
    doc = corpus_docs(tmp_path / "corpus")["drive/실적.pptx"]
    assert doc.text.split("\n") == ["## 분기 실적", "지역별 매출 추이", "억 원", "series: 매출 Revenue, 비용",
                                    "categories: 1분기, 2분기, 3분기"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--workers", "0", "error: --workers must be at least 1, not 0"),
    ("--max-file-mb", "-5", "error: --max-file-mb must be more than 0, not -5"),
    ("--max-file-mb", "nan", "error: --max-file-mb must be a number, not nan"),
    ("--max-removal-share", "1.5", ("error: --max-removal-share is a share of the corpus's documents, from 0 to 1, "
                                    "not 1.5")),
    ("--file-timeout", "0.5", "error: --file-timeout must be at least 1, not 0.5"),
    ("--max-inflated-mb", "0", "error: --max-inflated-mb must be at least 1, not 0"),
])
def test_ingest_option_mistakes_are_one_line(tmp_path, option, value, message):
    (tmp_path / "a.txt").write_text("본문", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "agent.cli", "ingest", str(tmp_path / "a.txt"), "--corpus",
                           str(tmp_path / "corpus"), option, value], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 2
    assert done.stderr.strip() == message
    assert not (tmp_path / "corpus").exists()  # refused before anything was read or written
