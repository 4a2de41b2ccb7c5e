"""HWP 5 files written byte by byte, for the ingest tests and benches: a small compound-file (MS-CFB, version 3)
writer and the records of the HWP 5.0 spec, so flags, uncompressed bodies and long records can be set at will
(python-hwpx's HWP 5 writer is independent of this one). ``hwp()`` writes a file; with no ``sections`` it holds
``section0()``, whose text as the reader gives it is ``SECTION0_TEXT``."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

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
