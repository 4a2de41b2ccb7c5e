"""`evolve ingest` on a real folder: versions, incremental re-reads, removals, reasons for every skipped file."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import docx
import pytest

from evalsets import load_evalset, read_corpus
from evalsets.ingest import CorpusFolder, ingest
from helpers import evolve


def write_docx(path: Path, heading: str, body: str) -> None:
    document = docx.Document()
    document.add_heading(heading, level=1)
    document.add_paragraph(body)
    table = document.add_table(rows=2, cols=2)
    for row, cells in enumerate([("항목", "값"), ("VPN 포트", "443")]):
        for column, text in enumerate(cells):
            table.cell(row, column).text = text
    document.save(path)


@pytest.fixture
def drive(tmp_path: Path) -> Path:
    root = tmp_path / "drive"
    (root / "hr").mkdir(parents=True)
    (root / "it").mkdir()
    (root / ".git").mkdir()
    (root / "hr" / "leave.md").write_text("# 휴가 규정\n\n연차는 매년 15일입니다. Annual leave is 15 days.\n\n"
                                          "## 신청 방법\n\n팀장 승인 후 인사 시스템에서 신청합니다.\n", "utf-8")
    (root / "hr" / "payroll.txt").write_text("급여는 매월 25일에 지급됩니다. Salaries are paid on the 25th.\n", "utf-8")
    write_docx(root / "it" / "vpn.docx", "VPN 설정", "사내 VPN은 443 포트를 사용합니다. The VPN uses port 443.")
    (root / "it" / "wifi.html").write_text("<html><head><title>와이파이</title></head><body><h1>Wi-Fi</h1>"
                                           "<p>게스트 와이파이 비밀번호는 안내 데스크에 있습니다.</p></body></html>", "utf-8")
    (root / "it" / "old-manual.doc").write_bytes(b"\xd0\xcf\x11\xe0 legacy")
    (root / "it" / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
    (root / "it" / "diagram.svg").write_text("<svg/>")
    (root / ".git" / "config").write_text("[core]")
    (root / "~$vpn.docx").write_bytes(b"lock")
    return root


def test_first_ingest_writes_the_corpus_layout_with_metadata_and_reasons(drive: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    report = ingest([drive], corpus, workers=1)
    docs = {d.doc_id: d for d in read_corpus(corpus / "corpus.jsonl")}
    assert set(docs) == {"drive/hr/leave.md", "drive/hr/payroll.txt", "drive/it/vpn.docx", "drive/it/wifi.html"}
    leave = docs["drive/hr/leave.md"]
    assert leave.title == "휴가 규정" and "## 신청 방법" in leave.text
    assert leave.metadata["format"] == "markdown" and leave.metadata["source"] == "drive/hr/leave.md"
    assert len(leave.metadata["sha256"]) == 64 and leave.metadata["modified"].startswith("20")
    assert "| VPN 포트 | 443 |" in docs["drive/it/vpn.docx"].text
    skipped = {s.path: (s.kind, s.reason) for s in report.skipped}
    assert skipped["drive/it/old-manual.doc"][0] == "unsupported" and ".docx" in skipped["drive/it/old-manual.doc"][1]
    assert skipped["drive/it/broken.pdf"][0] == "corrupt"
    assert skipped["drive/it/diagram.svg"][0] == "unsupported"
    assert report.ignored == 2  # .git/config and the Office lock file: counted, not read
    assert report.read == 4 and report.added_documents == 4 and report.previous_version is None
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["version"] == report.version and manifest["documents"] == 4
    assert (corpus / "versions" / f"{report.version}.json").is_file()
    saved = json.loads((corpus / "ingest-report.json").read_text())
    assert {s["path"] for s in saved["skipped"]} == set(skipped)


def test_second_run_reads_only_new_and_changed_files_and_drops_removed_ones(drive: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    first = ingest([drive], corpus, workers=1)
    again = ingest([drive], corpus, workers=1)
    assert again.version == first.version and again.read == 0 and again.unchanged == 4

    os.utime(drive / "hr" / "payroll.txt", (1, 1))  # touched, same bytes: hashed, found unchanged
    (drive / "hr" / "leave.md").write_text("# 휴가 규정\n\n연차는 매년 20일로 늘었습니다.\n", "utf-8")
    (drive / "it" / "wifi.html").unlink()
    (drive / "hr" / "remote.md").write_text("# 재택 근무\n\n주 2회 재택 근무가 가능합니다.\n", "utf-8")
    second = ingest([drive], corpus, workers=1, allow_removals=True)  # 1 of 4 documents: over the 0.2 share
    assert second.previous_version == first.version and second.version != first.version
    assert (second.read, second.unchanged, second.changed_files, second.added_files, second.removed_files) == \
        (2, 2, 1, 1, 1)
    assert (second.added_documents, second.changed_documents, second.removed_documents) == (1, 1, 1)
    docs = {d.doc_id: d for d in read_corpus(corpus / "corpus.jsonl")}
    assert "drive/it/wifi.html" not in docs and "20일" in docs["drive/hr/leave.md"].text
    folder = CorpusFolder(corpus)
    assert folder.changed_since(first.version) == ["drive/hr/leave.md", "drive/hr/remote.md"]
    assert [row["version"] for row in folder.history()] == [first.version, second.version]
    with pytest.raises(Exception, match="no corpus version 'nope'"):
        folder.changed_since("nope")


def test_workers_in_parallel_give_the_same_version(drive: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsets.ingest import run

    monkeypatch.setattr(run, "POOL_MIN_FILES", 2)  # worker processes even for these few files
    for number in range(10):
        (drive / "hr" / f"memo-{number}.md").write_text(f"# 메모 {number}\n\n회의 내용 {number}: 예산 검토.\n", "utf-8")
    serial = ingest([drive], tmp_path / "one", workers=1)
    parallel = ingest([drive], tmp_path / "two", workers=2)
    assert parallel.version == serial.version and parallel.read == serial.read == 14
    assert sorted((s.path, s.kind) for s in parallel.skipped) == sorted((s.path, s.kind) for s in serial.skipped)


def test_queries_whose_documents_were_removed_are_dropped_with_a_count(drive: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    ingest([drive], corpus, workers=1)
    (corpus / "queries.jsonl").write_text(
        json.dumps({"query_id": "q1", "text": "연차는 며칠?"}, ensure_ascii=False) + "\n"
        + json.dumps({"query_id": "q2", "text": "게스트 와이파이 비밀번호"}, ensure_ascii=False) + "\n", "utf-8")
    (corpus / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq1\tdrive/hr/leave.md\t1\n"
                                      "q2\tdrive/it/wifi.html\t1\n", "utf-8")
    assert load_evalset(corpus).dropped_queries == 0
    with pytest.raises(Exception, match="has no questions yet: write some with `evolve evalset synthesize"):
        load_evalset(tmp_path / "fresh") if ingest([drive], tmp_path / "fresh", workers=1) else None
    (drive / "it" / "wifi.html").unlink()
    ingest([drive], corpus, workers=1, allow_removals=True)
    evalset = load_evalset(corpus)
    assert [q.query_id for q in evalset.queries] == ["q1"] and evalset.dropped_queries == 1


def test_cli_reports_and_refuses_bad_input(drive: Path, tmp_path: Path) -> None:
    def ingest_cli(*args: str) -> subprocess.CompletedProcess:
        return evolve("ingest", *args, timeout=300)

    done = ingest_cli(str(drive), "--corpus", str(tmp_path / "corpus"))
    assert done.returncode == 0, done.stderr
    assert "skipped 3 files" in done.stdout and "broken.pdf: corrupt" in done.stdout and "version" in done.stdout
    missing = ingest_cli(str(tmp_path / "nowhere"), "--corpus", str(tmp_path / "corpus"))
    assert missing.returncode == 2 and "source not found" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.bin").write_bytes(b"\x00")
    nothing = ingest_cli(str(empty), "--corpus", str(tmp_path / "c2"))
    assert nothing.returncode == 2 and "no documents in 1 files" in nothing.stderr and "a.bin" in nothing.stderr
    mapping = tmp_path / "fields.yaml"
    mapping.write_text("ticket_id: [x]\n")
    bad = ingest_cli(str(drive), "--corpus", str(tmp_path / "c3"), "--ticket-fields", str(mapping))
    assert bad.returncode == 2 and "takes only id, metadata, text, title" in bad.stderr


def test_a_notion_export_folder_gives_pages_with_clean_titles_and_skips_database_indexes(tmp_path: Path) -> None:
    ids = [f"{n:x}" * 32 for n in range(1, 6)]
    export = tmp_path / "notion-export"
    wiki = export / f"Team Wiki {ids[0]}"
    tasks = wiki / f"Tasks {ids[2]}"
    tasks.mkdir(parents=True)
    (export / f"Team Wiki {ids[0]}.md").write_text("# Team Wiki\n\n팀 위키의 첫 페이지입니다.\n", "utf-8")
    (wiki / f"Onboarding {ids[1]}.md").write_text("# Onboarding\n\n첫 주에는 노트북을 받습니다. You get a laptop.\n",
                                                  "utf-8")
    (wiki / f"Tasks {ids[2]}.csv").write_text("Name,Status,Assignee\nFix VPN,Done,민지\nOrder laptops,Open,Joon\n",
                                              "utf-8")
    (tasks / f"Fix VPN {ids[3]}.md").write_text("# Fix VPN\n\nStatus: Done\nAssignee: 민지\n\n인증서를 갱신했습니다.\n",
                                                "utf-8")
    (tasks / f"Order laptops {ids[4]}.md").write_text("# Order laptops\n\nStatus: Open\n", "utf-8")
    report = ingest([export], tmp_path / "corpus", workers=1)
    docs = {d.title: d for d in read_corpus(tmp_path / "corpus" / "corpus.jsonl")}
    assert set(docs) == {"Team Wiki", "Onboarding", "Fix VPN", "Order laptops"}
    assert docs["Onboarding"].metadata["notion_id"] == ids[1]
    assert "인증서를 갱신했습니다." in docs["Fix VPN"].text
    [skipped] = report.skipped
    assert skipped.kind == "skipped" and "Notion database index" in skipped.reason and skipped.path.endswith(".csv")


def test_a_file_that_gave_no_document_is_not_read_again_until_it_changes(drive: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsets.ingest import run

    corpus = tmp_path / "corpus"
    ingest([drive], corpus, workers=1)
    read = []
    original = run.read_file
    monkeypatch.setattr(run, "read_file", lambda path, options: read.append(Path(path).name) or original(path, options))
    again = ingest([drive], corpus, workers=1)
    assert read == [] and {s.path: s.kind for s in again.skipped}["drive/it/broken.pdf"] == "corrupt"
    (drive / "it" / "broken.pdf").write_bytes(b"%PDF-1.7\n2 0 obj <<")
    third = ingest([drive], corpus, workers=1)
    assert read == ["broken.pdf"] and third.removed_files == 0 and third.version == again.version


def test_files_the_file_system_refuses_are_reported_not_fatal(drive: Path, tmp_path: Path) -> None:
    (drive / "hr" / "gone.md").symlink_to(drive / "hr" / "nowhere.md")
    locked = drive / "hr" / "locked.md"
    locked.write_text("# 비밀\n\n잠긴 파일입니다.\n", "utf-8")
    locked.chmod(0)
    try:
        report = ingest([drive], tmp_path / "corpus", workers=1)
    finally:
        locked.chmod(0o644)
    skipped = {s.path: s.kind for s in report.skipped}
    assert skipped["drive/hr/gone.md"] == "unreadable"
    if os.geteuid() != 0:  # root reads any file
        assert skipped["drive/hr/locked.md"] == "unreadable"
    assert report.documents >= 4


def test_a_new_reader_version_reads_its_files_again_and_only_those(tmp_path, monkeypatch):
    """A reader fix reaches an existing corpus: the manifest keeps each file's reader@version, and a file whose
    reader changed is read again even though its bytes did not (files of other readers are left as they were)."""
    from evalsets.ingest.formats.text import MarkdownReader, TextReader

    source = tmp_path / "notes"
    source.mkdir()
    (source / "a.txt").write_text("급여는 매월 25일에 지급됩니다.\n", "utf-8")
    (source / "b.md").write_text("# 휴가\n\n연차는 15일입니다.\n", "utf-8")
    corpus = tmp_path / "corpus"
    first = ingest([source], corpus, workers=1)
    files = CorpusFolder(corpus).manifest()["files"]
    assert {f["reader"] for f in files.values()} == {f"text@{TextReader.version}", f"markdown@{MarkdownReader.version}"}
    assert ingest([source], corpus, workers=1).unchanged == 2
    monkeypatch.setattr(TextReader, "version", TextReader.version + 1)
    again = ingest([source], corpus, workers=1)
    assert (again.read, again.unchanged) == (1, 1)
    assert CorpusFolder(corpus).manifest()["files"][next(k for k in files if k.endswith("a.txt"))]["reader"] == \
        f"text@{TextReader.version}"
    assert ingest([source], corpus, workers=1).unchanged == 2 and again.documents == first.documents
