"""HWP 5 files that the reader used to refuse or misreport: distribution (배포용) documents, 덧말 (ruby) in HWP and
HWPX, and files cut short, read through `evolve ingest` itself.

The HWP files come from python-hwpx's HWP 5 writer (a writer independent of the reader). A distribution document
is made from one the way Hangul makes it, per the spec: the FileHeader's distribution bit set and each section moved
to ``ViewText`` behind its 256-byte key record, AES-128-ECB encrypted (``encrypt_section``, the spec's scheme run
backwards). The scheme's two fixed parts are checked against values worked out by hand: the MSVC ``rand()``
sequence and where the key sits in the descrambled record.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import olefile
import pytest

from evalsets import read_corpus
from evalsets.ingest import ingest
from evalsets.ingest.formats._hwp_distribution import decrypt_section, encrypt_section, msvc_rand, scramble, section_key

SECTOR = 512
ENDOFCHAIN, FREESECT = 0xFFFFFFFE, 0xFFFFFFFF
PASSWORD, DISTRIBUTION = 2, 4


def hwpx_document(paragraphs: list[str]):
    from hwpx import HwpxDocument

    document = HwpxDocument.new()
    document.add_heading("배포 문서 Distributed notice", level=1)
    for text in paragraphs:
        document.add_paragraph(text, inherit_style=False)
    return document


def streams_of(path: Path) -> dict[str, bytes]:
    from hwpx.hwp5.cfb import CompoundFile, read_all_streams

    return dict(read_all_streams(CompoundFile(path.read_bytes())))


def compound(streams: dict[str, bytes]) -> bytes:
    from hwpx.hwp5.cfb import build_compound_file

    return build_compound_file(list(streams.items()))


def with_flags(header: bytes, flags: int) -> bytes:
    (props,) = struct.unpack_from("<I", header, 36)
    return header[:36] + struct.pack("<I", props | flags) + header[40:]


def distribution_copy(source: Path, target: Path, *, flags: int = DISTRIBUTION, seed: int = 0x5EED1234) -> Path:
    """``source`` as Hangul saves it for distribution: each BodyText section encrypted into ViewText, BodyText left
    with a stand-in that says the document is for distribution (what an older viewer shows)."""
    streams = streams_of(source)
    streams["FileHeader"] = with_flags(streams["FileHeader"], flags)
    for name in [n for n in streams if n.startswith("BodyText/")]:
        view = "ViewText/" + name.split("/", 1)[1]
        streams[view] = encrypt_section(streams[name], seed, os.urandom(252))
        stand_in = "이 문서는 상위 버전의 배포용 문서입니다.".encode("utf-16-le")
        streams[name] = struct.pack("<I", 0x43 | 1 << 10 | len(stand_in) << 20) + stand_in
    target.write_bytes(compound(streams))
    return target


def past_the_end(data: bytes, stream: str, kept_sectors: int) -> bytes:
    """``data`` with ``stream``'s sectors after the first ``kept_sectors`` moved past the end of the file, as a copy
    cut short leaves them: the directory and FAT still name them, the file no longer holds them."""
    sectors = len(data) // SECTOR - 1
    (fat_count,) = struct.unpack_from("<I", data, 44)
    (dir_start,) = struct.unpack_from("<I", data, 48)
    (fat_sector,) = struct.unpack_from("<I", data, 76)
    assert fat_count == 1, "one FAT sector is all this needs"
    out = bytearray(data)
    fat_at = SECTOR + fat_sector * SECTOR
    fat = list(struct.unpack_from("<128I", out, fat_at))
    with olefile.OleFileIO(data) as ole:
        index = ole._find(stream)
        entry = ole.direntries[index]
    assert entry.size >= 4096, "a stream in regular sectors"
    chain, sect = [], entry.isectStart
    while sect != ENDOFCHAIN:
        chain.append(sect)
        sect = fat[sect]
    moved = list(range(sectors, sectors + len(chain) - kept_sectors))
    assert moved[-1] < 128 and all(fat[s] == FREESECT for s in moved)
    new_chain = chain[:kept_sectors] + moved
    for here, after in zip(new_chain, new_chain[1:] + [ENDOFCHAIN]):
        fat[here] = after
    for old in chain[kept_sectors:]:
        fat[old] = FREESECT
    struct.pack_into("<128I", out, fat_at, *fat)
    if kept_sectors == 0:  # the stream's directory entry names its first sector, 116 bytes into the entry
        directory, sect = [], dir_start
        while sect != ENDOFCHAIN:
            directory.append(sect)
            sect = fat[sect]
        at = SECTOR + directory[index // 4] * SECTOR + 128 * (index % 4)
        struct.pack_into("<I", out, at + 116, new_chain[0])
    return bytes(out)


# --- the scheme's fixed parts, worked out by hand -----------------------------------------------------------------

def test_msvc_rand_sequence():
    """MSVC's rand() after srand(1) (the C runtime's documented LCG: x = x * 214013 + 2531011, bits 16-30)."""
    rand = msvc_rand(1)
    assert [next(rand) for _ in range(6)] == [41, 18467, 6334, 26500, 19169, 15724]


def test_key_sits_at_four_plus_the_seeds_low_nibble():
    # seed 1: rand() gives 41 (value), 18467 (run (0x4823 & 0xF) + 1 = 4: bytes 0-3, left as they are), then
    # 6334 & 0xFF = 0xBE for (26500 & 0xF) + 1 = 5 bytes (4-8), then 19169 & 0xFF = 0xE1 for (15724 & 0xF) + 1 = 13
    record = struct.pack("<I", 1) + bytes(252)
    clear = scramble(record)
    assert clear[:4] == record[:4] and clear[4:9] == b"\xbe" * 5 and clear[9:22] == b"\xe1" * 13
    assert section_key(record) == b"\xbe" * 4 + b"\xe1" * 12  # 16 bytes from offset 4 + (1 & 0xF) = 5
    assert scramble(clear) == record  # XOR: its own inverse


def test_encrypt_then_decrypt_is_the_section():
    section = os.urandom(1000)
    stream = encrypt_section(section, 0xCAFEBABE, os.urandom(252))
    assert len(stream) == 4 + 256 + 1008 and section not in stream
    plain, short = decrypt_section(stream, "ViewText/Section0")
    assert plain[:1000] == section and plain[1000:] == bytes(8) and not short
    plain, short = decrypt_section(stream[:-5], "ViewText/Section0")  # cut inside the last block
    assert plain == section[:992] and short


# --- through `evolve ingest` --------------------------------------------------------------------------------------

PARAGRAPHS = ["출장 신청은 3일 전까지 전자결재로 올립니다.", "Travel requests go through e-approval three days ahead.",
              "숙박비 상한은 1박 12만 원입니다."]


@pytest.fixture(scope="module")
def normal_hwp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hwp") / "출장 규정.hwp"
    hwpx_document(PARAGRAPHS).save_to_path(path)
    return path


def test_a_distribution_hwp_reads_as_the_normal_one(normal_hwp, tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    distribution_copy(normal_hwp, drive / "배포용.hwp")
    (drive / "일반.hwp").write_bytes(normal_hwp.read_bytes())
    report = ingest([drive], tmp_path / "corpus", workers=1)
    assert report.skipped == [] and report.partial == []
    docs = {d.doc_id: d for d in read_corpus(tmp_path / "corpus" / "corpus.jsonl")}
    normal, distributed = docs["drive/일반.hwp"], docs["drive/배포용.hwp"]
    assert distributed.text == normal.text
    assert distributed.text.split("\n") == ["# 배포 문서 Distributed notice", *PARAGRAPHS]
    assert "상위 버전의 배포용" not in distributed.text  # the BodyText stand-in is not the document
    assert distributed.metadata["hwp_distribution"] is True and "hwp_distribution" not in normal.metadata


def test_a_distribution_hwp_with_a_password_is_refused_with_the_reason(normal_hwp, tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    distribution_copy(normal_hwp, drive / "잠금.hwp", flags=DISTRIBUTION | PASSWORD)
    (drive / "readme.txt").write_text("다른 문서", encoding="utf-8")
    report = ingest([drive], tmp_path / "corpus", workers=1)
    [skipped] = report.skipped
    assert skipped.kind == "encrypted" and "password" in skipped.reason and "distribution" in skipped.reason


def test_a_distribution_hwp_whose_record_is_damaged_is_corrupt(normal_hwp, tmp_path):
    path = distribution_copy(normal_hwp, tmp_path / "d.hwp")
    streams = streams_of(path)
    streams["ViewText/Section0"] = b"\x00" * 300
    path.write_bytes(compound(streams))
    (tmp_path / "other.txt").write_text("다른 문서", encoding="utf-8")
    report = ingest([path, tmp_path / "other.txt"], tmp_path / "corpus", workers=1)
    [skipped] = report.skipped
    assert skipped.kind == "corrupt" and "key record" in skipped.reason


def test_dutmal_main_text_is_read_in_hwp_and_hwpx(tmp_path):
    document = hwpx_document([])
    paragraph = document.add_paragraph("회의 장소는 ", inherit_style=False)
    document.shapes.add_dutmal("本館", "본관", paragraph=paragraph)
    paragraph.add_run(" 3층입니다.")
    drive = tmp_path / "drive"
    drive.mkdir()
    document.save_to_path(drive / "회의.hwpx")
    document.save_to_path(drive / "회의.hwp")
    assert olefile.isOleFile(str(drive / "회의.hwp"))
    ingest([drive], tmp_path / "corpus", workers=1)
    docs = {d.doc_id: d for d in read_corpus(tmp_path / "corpus" / "corpus.jsonl")}
    for name in ("drive/회의.hwpx", "drive/회의.hwp"):
        assert docs[name].text.split("\n")[-1] == "회의 장소는 本館 3층입니다.", name
        assert "본관" not in docs[name].text  # the ruby is an annotation of the line, not part of it


# --- files cut short ----------------------------------------------------------------------------------------------

def long_hwp(path: Path, preview: str) -> dict[str, bytes]:
    """An HWP whose one section is large enough for regular sectors, with ``preview`` as its PrvText."""
    lines = [f"{n}번 항목: {hashlib.sha256(str(n).encode()).hexdigest()}" for n in range(400)]
    hwpx_document(lines).save_to_path(path)
    streams = streams_of(path)
    streams["PrvText"] = preview.encode("utf-16-le")
    return streams


PREVIEW = "배포 문서 Distributed notice\r\n" + "미리보기 본문 preview text " * 40


def test_a_truncated_hwp_keeps_its_preview_marked_partial(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    streams = long_hwp(tmp_path / "whole.hwp", PREVIEW)
    data = compound(streams)
    (drive / "잘림.hwp").write_bytes(past_the_end(data, "BodyText/Section0", kept_sectors=0))
    report = ingest([drive], tmp_path / "corpus", workers=1)
    assert report.skipped == []
    [partial] = report.partial
    assert partial.path == "drive/잘림.hwp" and partial.kind == "corrupt"
    assert partial.reason.startswith("truncated: BodyText/Section0 holds 0 of its ")
    assert "preview text (PrvText" in partial.reason
    [doc] = read_corpus(tmp_path / "corpus" / "corpus.jsonl")
    assert doc.metadata["partial"] == "preview"
    assert doc.text == "배포 문서 Distributed notice\n" + ("미리보기 본문 preview text " * 40).strip()

    again = ingest([drive], tmp_path / "corpus", workers=1)  # unchanged: still reported as read in part
    assert again.unchanged == 1 and [p.reason for p in again.partial] == [partial.reason]


def test_a_truncated_hwp_keeps_the_text_before_the_cut_when_it_is_longer(tmp_path):
    streams = long_hwp(tmp_path / "whole.hwp", "짧은 미리보기")
    path = tmp_path / "cut.hwp"
    path.write_bytes(past_the_end(compound(streams), "BodyText/Section0", kept_sectors=20))
    report = ingest([path], tmp_path / "corpus", workers=1)
    [partial] = report.partial
    assert "ends before its compressed data does" in partial.reason or "holds" in partial.reason
    assert "the text before the cut" in partial.reason
    [doc] = read_corpus(tmp_path / "corpus" / "corpus.jsonl")
    assert doc.metadata["partial"] == "before-cut"
    lines = doc.text.split("\n")
    assert lines[0] == "# 배포 문서 Distributed notice" and lines[1].startswith("0번 항목: ")
    assert 10 < len(lines) < 400  # some of the body, not all of it


def test_a_truncated_hwp_without_preview_is_corrupt_not_empty(tmp_path):
    streams = long_hwp(tmp_path / "whole.hwp", "")
    path = tmp_path / "cut.hwp"
    path.write_bytes(past_the_end(compound(streams), "BodyText/Section0", kept_sectors=0))
    (tmp_path / "other.txt").write_text("다른 문서", encoding="utf-8")
    report = ingest([path, tmp_path / "other.txt"], tmp_path / "corpus", workers=1)
    [skipped] = report.skipped
    assert skipped.kind == "corrupt" and skipped.reason.startswith("truncated: ")
    assert "no preview text" in skipped.reason


def test_the_cli_says_which_files_were_read_in_part(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    streams = long_hwp(tmp_path / "whole.hwp", PREVIEW)
    (drive / "잘림.hwp").write_bytes(past_the_end(compound(streams), "BodyText/Section0", kept_sectors=0))
    done = subprocess.run([sys.executable, "-m", "agent.cli", "ingest", str(drive), "--corpus", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    assert "read in part 1 files" in done.stdout
    assert "drive/잘림.hwp: corrupt: truncated: BodyText/Section0 holds 0 of its" in done.stdout
