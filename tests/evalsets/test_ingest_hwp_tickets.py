"""The HWP 5, HWPX and helpdesk-ticket readers of `evolve ingest`, on real files written here.

HWP 5 files come from two writers: a small compound-file (MS-CFB) writer below, which lays out the streams and
records of the HWP 5.0 spec byte by byte (so flags, uncompressed bodies and long records can be set at will), and
python-hwpx, whose HWP 5 writer is independent of ours. HWPX files come from python-hwpx.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import olefile
import pytest

import evalsets.ingest.formats  # noqa: F401  (registers the readers)
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


# --- a compound file (MS-CFB, version 3) writer -------------------------------------------------------------------

SECTOR = 512
ENDOFCHAIN, FATSECT, FREESECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF, 0xFFFFFFFF
MINI_CUTOFF = 4096


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A compound file holding ``streams`` ("Storage/Stream" paths). Every stream is padded with zeros to the
    mini-stream cutoff so that all of them live in regular sectors and no mini FAT is needed."""
    entries: list[dict] = [{"name": "Root Entry", "type": 5, "children": [], "data": b""}]
    storages = {"": 0}
    for path, data in streams.items():
        parts = path.split("/")
        parent = 0
        for depth in range(1, len(parts)):
            key = "/".join(parts[:depth])
            if key not in storages:
                entries.append({"name": parts[depth - 1], "type": 1, "children": [], "data": b""})
                storages[key] = len(entries) - 1
                entries[parent]["children"].append(storages[key])
            parent = storages[key]
        entries.append({"name": parts[-1], "type": 2, "children": [],
                        "data": data + b"\0" * max(0, MINI_CUTOFF - len(data))})
        entries[parent]["children"].append(len(entries) - 1)

    # siblings as a balanced binary tree in CFB order (shorter names first, then by upper case), all black
    left = [NOSTREAM] * len(entries)
    right = [NOSTREAM] * len(entries)
    child = [NOSTREAM] * len(entries)

    def tree(ids: list[int]) -> int:
        if not ids:
            return NOSTREAM
        middle = len(ids) // 2
        left[ids[middle]] = tree(ids[:middle])
        right[ids[middle]] = tree(ids[middle + 1:])
        return ids[middle]

    for number, entry in enumerate(entries):
        ordered = sorted(entry["children"], key=lambda i: (len(entries[i]["name"]), entries[i]["name"].upper()))
        child[number] = tree(ordered)

    dir_sectors = -(-len(entries) // 4)
    data_sectors = [-(-len(e["data"]) // SECTOR) for e in entries]
    fat_sectors = 1
    while fat_sectors * 128 < fat_sectors + dir_sectors + sum(data_sectors):
        fat_sectors += 1
    fat = [FATSECT] * fat_sectors
    starts = []

    def chain(count: int) -> int:
        start = len(fat)
        fat.extend(range(start + 1, start + count))
        fat.append(ENDOFCHAIN)
        return start

    dir_start = chain(dir_sectors)
    for count in data_sectors:
        starts.append(chain(count) if count else ENDOFCHAIN)
    fat.extend([FREESECT] * (fat_sectors * 128 - len(fat)))

    directory = b""
    for number, entry in enumerate(entries):
        name = entry["name"].encode("utf-16-le") + b"\0\0"
        start = starts[number] if entry["type"] == 2 else (ENDOFCHAIN if entry["type"] == 5 else 0)
        directory += struct.pack("<64sHBBIII16sIQQIQ", name, len(name), entry["type"], 1, left[number],
                                 right[number], child[number], b"\0" * 16, 0, 0, 0, start, len(entry["data"]))
    free = struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, b"\0" * 16, 0, 0, 0, 0, 0)
    directory += free * (dir_sectors * 4 - len(entries))

    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", bytes.fromhex("D0CF11E0A1B11AE1"), b"\0" * 16, 0x3E, 3, 0xFFFE,
                         9, 6, b"\0" * 6, 0, fat_sectors, dir_start, 0, MINI_CUTOFF, ENDOFCHAIN, 0, ENDOFCHAIN, 0)
    header += struct.pack("<109I", *(list(range(fat_sectors)) + [FREESECT] * (109 - fat_sectors)))
    body = struct.pack(f"<{len(fat)}I", *fat) + directory
    for entry in entries:
        if entry["type"] == 2:
            body += entry["data"] + b"\0" * (-len(entry["data"]) % SECTOR)
    return header + body


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


# --- HWP 5 records ----------------------------------------------------------------------------------------------

PARA_SHAPE, PARA_HEADER, PARA_TEXT, CTRL_HEADER, LIST_HEADER, TABLE = 0x19, 0x42, 0x43, 0x47, 0x48, 0x4D


def record(tag: int, level: int, payload: bytes) -> bytes:
    if len(payload) >= 0xFFF:  # the size does not fit 12 bits: 0xFFF, then the size as a DWORD
        return struct.pack("<II", tag | level << 10 | 0xFFF << 20, len(payload)) + payload
    return struct.pack("<I", tag | level << 10 | len(payload) << 20) + payload


def u(text: str) -> bytes:
    return text.encode("utf-16-le")


def control(code: int, ctrl_id: bytes = b"\0\0\0\0") -> bytes:
    """An 8-unit inline or extended control: the code, the control id (a reversed 4-char id) and zeros, the code."""
    return struct.pack("<H", code) + ctrl_id[::-1] + b"\0" * 8 + struct.pack("<H", code)


def paragraph(units: bytes, level: int = 0, shape: int = 0) -> bytes:
    header = struct.pack("<IIHBBHHHI", len(units) // 2 + 1, 0, shape, 0, 0, 1, 0, 1, 0)
    return record(PARA_HEADER, level, header) + record(PARA_TEXT, level + 1, units + u("\r"))


def cell(row: int, col: int, texts: list[str], level: int, colspan: int = 1) -> bytes:
    header = struct.pack("<HHIHHHHII4HHI", len(texts) or 1, 0, 0x20, col, row, colspan, 1, 8000, 1000, 0, 0, 0, 0,
                         1, 0)
    out = record(LIST_HEADER, level, header)
    for text in texts:
        out += paragraph(u(text), level)
    if not texts:  # an empty cell: a paragraph with no text record, as Hangul writes it
        out += record(PARA_HEADER, level, struct.pack("<IIHBBHHHI", 1, 0, 0, 0, 0, 1, 0, 1, 0))
    return out


def section0() -> bytes:
    lead = control(2, b"secd") + control(2, b"cold")  # section and column definitions open a document
    body = record(PARA_HEADER, 0, struct.pack("<IIHBBHHHI", 0, 0, 1, 0, 0, 1, 0, 1, 0))
    body += record(PARA_TEXT, 1, lead + u("VPN 접속 안내 (VPN access guide)") + u("\r"))
    body += record(CTRL_HEADER, 1, b"dces" + b"\0" * 32) + record(CTRL_HEADER, 1, b"dloc" + b"\0" * 12)
    body += paragraph(u("사내 VPN은 Cisco AnyConnect를 사용합니다.") + control(9) + u("Port 443") + struct.pack("<H", 10)
                      + u("두 번째 줄 second line"))
    body += paragraph(u("비밀번호") + struct.pack("<H", 30) + u("재설정은 ") + control(3, b"%hlk") + u("portal.example.com")
                      + control(4) + u(" 에서 합니다."))
    body += paragraph(u("설치 방법"), shape=2)
    # a table anchored in its own paragraph: caption list, TABLE, then one list per cell
    body += paragraph(control(11, b"tbl "))
    body += record(CTRL_HEADER, 1, b" lbt" + b"\0" * 40)
    body += record(LIST_HEADER, 2, struct.pack("<HHI", 1, 0, 0) + b"\0" * 14) + paragraph(u("표 1 연락처 Contacts"), 2)
    body += record(TABLE, 2, struct.pack("<IHH", 0, 3, 3) + b"\0" * 14)
    body += cell(0, 0, ["부서"], 2) + cell(0, 1, ["담당자"], 2) + cell(0, 2, ["연락처"], 2)
    body += cell(1, 0, ["IT 헬프데스크"], 2) + cell(1, 1, ["홍길동", "Gildong Hong"], 2) + cell(1, 2, [], 2)
    body += cell(2, 0, ["야간 문의 (after hours)"], 2, colspan=2) + cell(2, 2, ["02-000-0000"], 2)
    body += paragraph(u("표 다음 문단입니다."))
    body += paragraph(u("긴 문단 " + "가나다라마바사 " * 300))  # 4,800 bytes: a record size past 12 bits
    return body


SECTION0_TEXT = "\n".join([
    "# VPN 접속 안내 (VPN access guide)",
    "사내 VPN은 Cisco AnyConnect를 사용합니다.\tPort 443",
    "두 번째 줄 second line",
    "비밀번호 재설정은 portal.example.com 에서 합니다.",
    "## 설치 방법",
    "표 1 연락처 Contacts",
    "| 부서 | 담당자 | 연락처 |",
    "| IT 헬프데스크 | 홍길동 Gildong Hong |  |",
    "| 야간 문의 (after hours) |  | 02-000-0000 |",
    "표 다음 문단입니다.",
    ("긴 문단 " + "가나다라마바사 " * 300).strip(),
])


def summary(title: str) -> bytes:
    """An MS-OLEPS property set with PIDSI_TITLE as VT_LPWSTR, as HwpSummaryInformation keeps it."""
    value = u(title + "\0")
    value += b"\0" * (-len(value) % 4)
    prop = struct.pack("<II", 31, len(title) + 1) + value
    section = struct.pack("<IIII", 16 + len(prop), 1, 2, 16) + prop
    fmtid = bytes.fromhex("60B6A29F6110D411B4C6006097C09D8C")  # {9FA2B660-1061-11D4-B4C6-006097C09D8C}
    return struct.pack("<HHI16sI", 0xFFFE, 0, 0x20005, b"\0" * 16, 1) + fmtid + struct.pack("<I", 48) + section


def hwp(path: Path, *, compressed: bool = True, flags: int = 0, sections: dict[str, bytes] | None = None,
        title: str = "VPN 가이드") -> Path:
    props = flags | (1 if compressed else 0)
    file_header = b"HWP Document File".ljust(32, b"\0") + struct.pack("<III", 0x05000300, props, 0)
    file_header = file_header.ljust(256, b"\0")
    docinfo = record(PARA_SHAPE, 0, struct.pack("<I", 0) + b"\0" * 50)
    docinfo += record(PARA_SHAPE, 0, struct.pack("<I", 1 << 23) + b"\0" * 50)  # outline level 1
    docinfo += record(PARA_SHAPE, 0, struct.pack("<I", 1 << 23 | 1 << 25) + b"\0" * 50)  # outline level 2

    def pack(data: bytes) -> bytes:
        if not compressed:
            return data
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        return deflater.compress(data) + deflater.flush()

    if sections is None:
        sections = {"Section0": section0(), "Section1": paragraph(u("두 번째 구역 Section two"))}
    streams = {"FileHeader": file_header, "DocInfo": pack(docinfo), "\x05HwpSummaryInformation": summary(title)}
    streams.update({f"BodyText/{name}": pack(data) for name, data in sections.items()})
    path.write_bytes(compound_file(streams))
    return path


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
