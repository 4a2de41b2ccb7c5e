"""The HWP 5, HWPX and helpdesk-ticket readers of `evolve ingest`, on real files written here.

HWP 5 files come from two writers: a small compound-file (MS-CFB) writer (bench/ingest/hwp_writer.py, shared with
the ingest bench), which lays out the streams and records of the HWP 5.0 spec byte by byte (so flags, uncompressed
bodies and long records can be set at will), and python-hwpx, whose HWP 5 writer is independent of ours. HWPX
files come from python-hwpx.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import olefile
import pytest

import evalsets.ingest.formats  # noqa: F401  (registers the readers)
from bench.ingest.hwp_writer import SECTION0_TEXT, compound_file, hwp, paragraph, u
from evalsets.ingest.base import READERS, ExtractionError, ReadOptions, TicketFields

OPTIONS = ReadOptions()


def read(path: Path, options: ReadOptions = OPTIONS):
    reader = READERS.for_path(path)
    assert reader is not None, path
    return reader.read(path, options)


def failure(path: Path, options: ReadOptions = OPTIONS) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        read(path, options)
    return caught.value


def test_compound_file_writer_is_read_by_olefile(tmp_path):
    path = tmp_path / "x.cfb"
    path.write_bytes(compound_file({"FileHeader": b"a" * 300, "BodyText/Section0": b"b" * 5000,
                                    "BodyText/Section1": b"c", "DocInfo": b"d"}))
    assert olefile.isOleFile(str(path))
    with olefile.OleFileIO(str(path)) as ole:
        assert sorted(ole.listdir()) == [["BodyText", "Section0"], ["BodyText", "Section1"], ["DocInfo"],
                                         ["FileHeader"]]
        assert ole.openstream("BodyText/Section0").read()[:5000] == b"b" * 5000
        assert ole.openstream("FileHeader").read()[:300] == b"a" * 300


@pytest.mark.parametrize("compressed", [True, False])
def test_hwp_text_tables_and_headings(tmp_path, compressed):
    path = hwp(tmp_path / "guide.hwp", compressed=compressed)
    (doc,) = read(path)
    assert doc.title == "VPN 접속 안내 (VPN access guide)"  # the summary title is not in the body
    assert doc.text == SECTION0_TEXT + "\n\n두 번째 구역 Section two"
    assert doc.metadata["hwp_version"] == "5.0.3.0"
    assert doc.metadata["sections"] == [[0, "VPN 접속 안내 (VPN access guide)"],
                                        [doc.text.index("## 설치 방법"), "설치 방법"]]


def test_hwp_sections_in_numeric_order_and_title_fallback(tmp_path):
    sections = {f"Section{n}": paragraph(u(f"구역 {n}")) for n in (10, 2, 0, 1)}
    path = hwp(tmp_path / "순서.hwp", sections=sections, title="1.")  # a title with no letter names nothing
    (doc,) = read(path)
    assert doc.text == "구역 0\n\n구역 1\n\n구역 2\n\n구역 10"
    assert doc.title == "구역 0"  # no usable summary title, no heading: the first short line


def test_hwp_password_and_distribution_documents_are_encrypted(tmp_path):
    error = failure(hwp(tmp_path / "secret.hwp", flags=2))
    assert error.kind == "encrypted" and "password" in error.reason
    path = tmp_path / "배포.hwp"
    hwp(path, flags=4, sections={"Section0": paragraph(u("이 문서는 상위 버전의 배포용 문서입니다."))})
    error = failure(path)  # distribution documents are read from ViewText (test_ingest_hwp_distribution.py)
    assert error.kind == "corrupt" and "without ViewText/Section streams" in error.reason


def test_hwp_corrupt_files(tmp_path):
    junk = tmp_path / "junk.hwp"
    junk.write_bytes(os.urandom(4096))
    assert failure(junk).kind == "corrupt"
    no_body = tmp_path / "nobody.hwp"
    no_body.write_bytes(compound_file({"FileHeader": b"HWP Document File".ljust(256, b"\0"), "DocInfo": b""}))
    error = failure(no_body)
    assert error.kind == "corrupt" and "BodyText" in error.reason
    not_hwp = tmp_path / "other.hwp"
    not_hwp.write_bytes(compound_file({"WordDocument": b"x"}))
    assert failure(not_hwp).kind == "corrupt"
    broken = tmp_path / "broken.hwp"
    hwp(broken, compressed=False, flags=1)  # says compressed, is not
    assert failure(broken).kind == "corrupt"


# --- files from python-hwpx: HWPX, and HWP 5 from its own writer -----------------------------------------------

def hancom_document():
    from hwpx import HwpxDocument

    doc = HwpxDocument.new()
    doc.add_heading("장애 대응 절차 Incident response", level=1)
    doc.add_paragraph("서비스 장애가 발생하면 먼저 상태 페이지를 확인하세요.", inherit_style=False, para_pr_id_ref=0,
                      style_id_ref=0)
    doc.add_paragraph("Escalate to the on-call engineer after 15 minutes.", inherit_style=False)
    table = doc.add_table(3, 3)
    for row, values in enumerate([["등급", "설명", "응답 시간"], ["P1", "전체 서비스 중단", "15분"],
                                  ["P2", "일부 기능 장애 partial outage", "1시간"]]):
        for col, value in enumerate(values):
            table.set_cell_text(row, col, value)
    table.set_caption("표 1 장애 등급")
    doc.add_paragraph("표 다음 문단 after the table.", inherit_style=False)
    return doc


HANCOM_LINES = [
    "# 장애 대응 절차 Incident response",
    "서비스 장애가 발생하면 먼저 상태 페이지를 확인하세요.",
    "Escalate to the on-call engineer after 15 minutes.",
    "표 1 장애 등급",
    "| 등급 | 설명 | 응답 시간 |",
    "| P1 | 전체 서비스 중단 | 15분 |",
    "| P2 | 일부 기능 장애 partial outage | 1시간 |",
    "표 다음 문단 after the table.",
]


@pytest.fixture(scope="module")
def hancom_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hancom")
    doc = hancom_document()
    doc.save_to_path(folder / "절차.hwpx")
    doc.save_to_path(folder / "절차.hwp")
    return folder


def test_hwpx_paragraphs_tables_and_headings(hancom_files):
    (doc,) = read(hancom_files / "절차.hwpx")
    assert doc.title == "장애 대응 절차 Incident response"
    assert doc.text.split("\n") == HANCOM_LINES
    assert doc.text.count("전체 서비스 중단") == 1  # cell paragraphs are not repeated as body lines
    assert doc.metadata["sections"] == [[0, "장애 대응 절차 Incident response"]]


def test_hwp_written_by_python_hwpx(hancom_files):
    path = hancom_files / "절차.hwp"
    assert olefile.isOleFile(str(path))
    (doc,) = read(path)
    assert doc.text.split("\n") == HANCOM_LINES
    assert doc.metadata["sections"] == [[0, "장애 대응 절차 Incident response"]]


def test_hwpx_saved_as_hwp_is_read_as_hwpx(hancom_files, tmp_path):
    path = tmp_path / "renamed.hwp"
    path.write_bytes((hancom_files / "절차.hwpx").read_bytes())
    (doc,) = read(path)
    assert doc.text.split("\n") == HANCOM_LINES


def test_hwp_saved_as_hwpx_is_read_as_hwp(hancom_files, tmp_path):
    """The reader follows the first bytes, not the name: an HWP 5 (OLE2) file named .hwpx was `corrupt: not a ZIP`."""
    path = tmp_path / "renamed.hwpx"
    path.write_bytes((hancom_files / "절차.hwp").read_bytes())
    assert READERS.for_path(path).format == "hwp"
    (doc,) = read(path)
    assert doc.text.split("\n") == HANCOM_LINES


def test_hwpx_title_and_section_order(hancom_files, tmp_path):
    import zipfile

    source = zipfile.ZipFile(hancom_files / "절차.hwpx")
    path = tmp_path / "two.hwpx"
    with zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "Contents/content.hpf":
                data = data.replace(b"<opf:title/>", "<opf:title>장애 대응 매뉴얼</opf:title>".encode())
                data = data.replace(b'<opf:item id="section0"', b'<opf:item id="section1" href="Contents/section1.xml"'
                                    b' media-type="application/xml"/><opf:item id="section0"')
                data = data.replace(b'<opf:itemref idref="section0" linear="yes"/>',
                                    b'<opf:itemref idref="section1" linear="yes"/>'
                                    b'<opf:itemref idref="section0" linear="yes"/>')
            out.writestr(item, data)
        section = ('<hs:sec xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section" '
                   'xmlns:hp="http://www.hancom.co.kr/hwpml/2011/paragraph"><hp:p><hp:run><hp:t>먼저 읽는 구역'
                   '<hp:tab/>first</hp:t></hp:run></hp:p></hs:sec>')
        out.writestr("Contents/section1.xml", section)
    (doc,) = read(path)
    assert doc.title == "장애 대응 절차 Incident response"  # "장애 대응 매뉴얼" occurs nowhere in the body
    assert doc.text.split("\n\n")[0] == "먼저 읽는 구역\tfirst"
    assert doc.text.split("\n\n")[1].split("\n") == HANCOM_LINES


def test_hwpx_corrupt(tmp_path):
    import zipfile

    junk = tmp_path / "junk.hwpx"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    assert failure(junk).kind == "corrupt"
    empty = tmp_path / "empty.hwpx"
    with zipfile.ZipFile(empty, "w") as out:
        out.writestr("mimetype", "application/hwp+zip")
    assert failure(empty).kind == "corrupt"
    bad_xml = tmp_path / "bad.hwpx"
    with zipfile.ZipFile(bad_xml, "w") as out:
        out.writestr("Contents/section0.xml", "<hs:sec><hp:p>")
    assert failure(bad_xml).kind == "corrupt"


# --- ticket exports ---------------------------------------------------------------------------------------------

ZENDESK = {
    "tickets": [
        {"id": 1001, "subject": "VPN 접속 불가", "description": "재택근무 중 VPN이 연결되지 않습니다. Error 809.",
         "status": "solved", "priority": "high", "tags": ["vpn", "재택"], "requester": {"name": "김민수"},
         "comments": [{"author": {"name": "김민수"}, "body": "오늘 아침부터 안 됩니다."},
                      {"author": {"name": "IT 지원"}, "body": "방화벽 설정을 변경했습니다. Please retry."}],
         "via": {"channel": "email"}},
        {"id": 1002, "subject": "Password reset", "description": "비밀번호 초기화 요청", "status": "open"},
        {"id": 1002, "subject": "Password reset (again)", "description": "다시 요청합니다", "status": "open"},
        {"id": 1003, "subject": "", "description": "", "status": "closed"},
    ],
    "count": 4,
    "next_page": None,
}


def test_zendesk_json_export(tmp_path):
    path = tmp_path / "zendesk.json"
    path.write_text(json.dumps(ZENDESK, ensure_ascii=False), encoding="utf-8")
    docs = read(path)
    assert [d.key for d in docs] == ["1001", "1002", "1002#2"]  # 1003 has neither title nor body
    first = docs[0]
    assert first.title == "VPN 접속 불가"
    assert first.text == ("description: 재택근무 중 VPN이 연결되지 않습니다. Error 809.\n\n"
                          "comments:\n김민수: 오늘 아침부터 안 됩니다.\nIT 지원: 방화벽 설정을 변경했습니다. Please retry.")
    assert first.metadata == {"ticket_id": "1001", "status": "solved", "priority": "high", "tags": ["vpn", "재택"],
                              "requester": "김민수"}
    assert docs[1].text == "비밀번호 초기화 요청" and docs[1].metadata["ticket_id"] == "1002"


def test_jira_csv_in_cp949_with_semicolons(tmp_path):
    path = tmp_path / "jira.csv"
    rows = ['Issue key;Summary;Description;Status;Comment;Comment',
            'OPS-1;"메일 발송 지연";"메일이 30분 늦게 도착합니다;\n대량 발송 시 발생";진행 중;"큐 확인 중";"해결됨"',
            'OPS-2;Printer offline;"3층 프린터가 오프라인입니다";완료;;']
    path.write_bytes("\r\n".join(rows).encode("cp949"))
    docs = read(path)
    assert [d.key for d in docs] == ["OPS-1", "OPS-2"]
    assert docs[0].title == "메일 발송 지연"
    assert docs[0].text == "Description:\n메일이 30분 늦게 도착합니다;\n대량 발송 시 발생\n\nComment:\n큐 확인 중\n해결됨"
    assert docs[0].metadata == {"ticket_id": "OPS-1", "status": "진행 중"}
    assert docs[1].text == "3층 프린터가 오프라인입니다"


def test_jsonl_export_and_custom_fields(tmp_path):
    path = tmp_path / "desk.jsonl"
    lines = [{"번호": "T-1", "제목": "급여 명세서 조회", "문의내용": "급여 명세서가 보이지 않습니다.", "답변": "HR 포털에서 확인하세요.",
              "상태": "완료", "body": "ignored: not a mapped field"},
             {"번호": "T-2", "제목": "출장비 정산", "문의내용": "영수증 첨부 방법?", "답변": "", "상태": "접수"}]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n\n", encoding="utf-8")
    fields = TicketFields(id=("번호",), title=("제목",), text=("문의내용", "답변"), metadata=("상태",))
    docs = read(path, ReadOptions(tickets=fields))
    assert [d.key for d in docs] == ["T-1", "T-2"]
    assert docs[0].text == "문의내용: 급여 명세서가 보이지 않습니다.\n\n답변: HR 포털에서 확인하세요."
    assert docs[0].metadata == {"ticket_id": "T-1", "상태": "완료"}
    assert docs[1].text == "영수증 첨부 방법?" and docs[1].title == "출장비 정산"
    default = read(path)  # the default mapping finds only "body"
    assert [d.text for d in default] == ["ignored: not a mapped field"]


def test_plain_csv_is_one_table_document(tmp_path):
    path = tmp_path / "재고.csv"
    path.write_text("품목,수량,창고\n노트북,12,서울\n모니터,30,부산\n\n", encoding="utf-8-sig")
    (doc,) = read(path)
    assert doc.key == "" and doc.title == "재고"
    assert doc.text == "| 품목 | 수량 | 창고 |\n| 노트북 | 12 | 서울 |\n| 모니터 | 30 | 부산 |"


def test_json_records_without_text_fields_are_a_table(tmp_path):
    path = tmp_path / "servers.json"
    path.write_text(json.dumps([{"host": "a", "cpu": 4}, {"host": "b", "cpu": 8, "tags": ["db"]}]), encoding="utf-8")
    (doc,) = read(path)
    assert doc.text == '| host | cpu | tags |\n| a | 4 |  |\n| b | 8 | ["db"] |'


def test_notion_database_index_is_skipped(tmp_path):
    stem = "업무 요청 0123456789abcdef0123456789abcdef"
    (tmp_path / stem).mkdir()
    path = tmp_path / f"{stem}.csv"
    path.write_text("Name,Description,Status\n요청 1,내용,Done\n", encoding="utf-8")
    error = failure(path)
    assert error.kind == "skipped" and f"{stem}/" in error.reason
    lone = tmp_path / "기타 0123456789abcdef0123456789abcdee.csv"  # no folder beside it: read as tickets
    lone.write_text("Name,Description,Status\n요청 1,내용,Done\n", encoding="utf-8")
    assert [d.text for d in read(lone)] == ["내용"]


def test_json_that_is_not_an_export(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"tickets": [{"id": 1,\n "subject": }]}', encoding="utf-8")
    error = failure(broken)
    assert error.kind == "corrupt" and "line 2" in error.reason
    settings = tmp_path / "settings.json"
    settings.write_text('{"theme": "dark", "fontSize": 12}', encoding="utf-8")
    error = failure(settings)
    assert error.kind == "unsupported" and "theme, fontSize" in error.reason
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"id": 1, "body": "ok"}\n{"id": 2,\n', encoding="utf-8")
    error = failure(bad_line)
    assert error.kind == "corrupt" and "line 2" in error.reason


def test_huge_csv_field(tmp_path):
    path = tmp_path / "big.csv"
    body = "긴 내용 " * 40_000  # past csv's default 131,072-character field limit
    path.write_text(f'id,subject,body\n1,big,"{body}"\n', encoding="utf-8")
    (doc,) = read(path)
    assert doc.text == body.strip()
