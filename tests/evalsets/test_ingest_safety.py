"""`evolve ingest` that no file, name, link or unmounted share can break or empty: each a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from evalsets import read_corpus
from helpers import REPO, evolve

PLUGIN = '''
import os, time
from pathlib import Path
from evalsets.ingest.base import READERS, Extracted, Reader

@READERS.register
class CrashReader(Reader):
    format = "crash-test"
    suffixes = (".crash",)

    def read(self, path, options):
        os.kill(os.getpid(), 9)  # as the OOM killer would

@READERS.register
class SlowReader(Reader):
    format = "slow-test"
    suffixes = (".slow",)

    def read(self, path, options):
        time.sleep(60)
        return [Extracted("slow", "never")]
'''


def ingest_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`evolve ingest ARGS` as a user runs it."""
    return evolve("ingest", *args, cwd=REPO, timeout=300, env=env)


def notes(root: Path, count: int, prefix: str) -> Path:
    root.mkdir(parents=True)
    for number in range(count):
        (root / f"{prefix}-{number}.md").write_text(f"# {prefix} {number}\n\n내용 {prefix} {number}.\n", "utf-8")
    return root


def test_a_run_that_would_empty_the_corpus_refuses_unless_allowed(tmp_path: Path) -> None:
    sa, sb, corpus = notes(tmp_path / "sa", 3, "a"), notes(tmp_path / "sb", 1, "b"), tmp_path / "cs"
    assert ingest_cli(str(sa), str(sb), "--corpus", str(corpus)).returncode == 0
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["sources"] == [str(sa.resolve()), str(sb.resolve())]
    before = (corpus / "corpus.jsonl").read_bytes()

    left_out = ingest_cli(str(sb), "--corpus", str(corpus))
    assert left_out.returncode == 2 and "would remove 3 of the corpus's 4 documents" in left_out.stderr
    assert str(sa.resolve()) in left_out.stderr and len(left_out.stderr.strip().splitlines()) == 1
    assert (corpus / "corpus.jsonl").read_bytes() == before

    unmounted = tmp_path / "share"
    unmounted.mkdir()
    empty = ingest_cli(str(unmounted), "--corpus", str(corpus))
    assert empty.returncode == 2 and "source folder is empty" in empty.stderr
    assert (corpus / "corpus.jsonl").read_bytes() == before

    allowed = ingest_cli(str(sb), "--corpus", str(corpus), "--allow-removals")
    assert allowed.returncode == 0, allowed.stderr
    assert [d.doc_id for d in read_corpus(corpus / "corpus.jsonl")] == ["sb/b-0.md"]


def test_corpus_refuses_a_folder_that_is_not_an_ingest_corpus(tmp_path: Path) -> None:
    evalset = tmp_path / "claude-docs-qa"
    shutil.copytree(REPO / "evalsets" / "data" / "claude-docs-qa", evalset)
    before = {p.name: p.read_bytes() for p in evalset.iterdir()}
    source = notes(tmp_path / "src", 1, "n")
    refused = ingest_cli(str(source), "--corpus", str(evalset))
    assert refused.returncode == 2 and "not an ingest corpus" in refused.stderr
    assert {p.name: p.read_bytes() for p in evalset.iterdir()} == before
    empty = tmp_path / "new"
    empty.mkdir()
    assert ingest_cli(str(source), "--corpus", str(empty)).returncode == 0


def test_symlinks_out_of_the_source_are_reported_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2\n")
    outside = notes(tmp_path / "elsewhere", 1, "o")
    source = notes(tmp_path / "src", 1, "n")
    (source / "pw.txt").symlink_to(secret)
    (source / "linked").symlink_to(outside, target_is_directory=True)
    done = ingest_cli(str(source), "--corpus", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert "pw.txt: link-outside" in done.stdout and "linked: link: a symlinked folder" in done.stdout
    texts = [d.text for d in read_corpus(tmp_path / "c" / "corpus.jsonl")]
    assert not any("hunter2" in t for t in texts) and len(texts) == 1
    followed = ingest_cli(str(source), "--corpus", str(tmp_path / "f"), "--follow-links")
    assert followed.returncode == 0, followed.stderr
    ids = {d.doc_id for d in read_corpus(tmp_path / "f" / "corpus.jsonl")}
    assert ids == {"src/n-0.md", "src/pw.txt", "src/linked/o-0.md"}


def test_a_file_name_that_is_not_utf8_is_read_and_reported_escaped(tmp_path: Path) -> None:
    source = notes(tmp_path / "src", 1, "n")
    name = "휴가규정".encode("cp949") + b".txt"  # bytes from an old Windows share: not UTF-8
    descriptor = os.open(os.fsencode(source) + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(descriptor, "연차는 15일입니다.\n".encode("utf-8"))
    os.close(descriptor)
    (source / "bad.pdf").write_bytes(b"%PDF-1.7 broken")
    descriptor = os.open(os.fsencode(source) + b"/" + "손상".encode("cp949") + b".pdf", os.O_WRONLY | os.O_CREAT)
    os.write(descriptor, b"%PDF-1.7 broken")
    os.close(descriptor)
    done = ingest_cli(str(source), "--corpus", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    raw = (tmp_path / "c" / "corpus.jsonl").read_bytes()
    raw.decode("utf-8")  # valid UTF-8, no surrogates
    escaped = "src/" + name.decode("utf-8", "surrogateescape").encode("utf-8", "surrogateescape").decode(
        "utf-8", "backslashreplace")
    docs = {d.doc_id: d for d in read_corpus(tmp_path / "c" / "corpus.jsonl")}
    assert "\\xc8" in escaped and escaped in docs and "15일" in docs[escaped].text
    assert "src/\\xbc\u057b\\xf3.pdf: corrupt" in done.stdout  # D5 BB happens to be UTF-8 (U+057B)
    json.loads((tmp_path / "c" / "manifest.json").read_text(encoding="utf-8"))
    again = ingest_cli(str(source), "--corpus", str(tmp_path / "c"))  # the escaped name is found again: unchanged
    assert again.returncode == 0 and json.loads((tmp_path / "c" / "ingest-report.json").read_text())["unchanged"] == 2


def test_a_dead_or_slow_reader_costs_its_file_not_the_run(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "test_readers.py").write_text(PLUGIN)
    env = {"PYTHONPATH": f"{plugins}{os.pathsep}{REPO}", "EVOLVE_INGEST_READERS": "test_readers"}
    source = notes(tmp_path / "src", 3, "n")
    (source / "oom.crash").write_text("x")
    (source / "stuck.slow").write_text("x")
    started = time.perf_counter()
    done = ingest_cli(str(source), "--corpus", str(tmp_path / "c"), "--file-timeout", "3", "--workers", "2", env=env)
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - started < 40
    assert "oom.crash: crashed: the reader process died" in done.stdout
    assert "stuck.slow: timeout: still reading after 3 s" in done.stdout
    assert len(read_corpus(tmp_path / "c" / "corpus.jsonl")) == 3


def test_a_zip_bomb_docx_is_too_large_before_it_is_read(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.md").write_text("# ok\n\nfine.\n")
    with zipfile.ZipFile(source / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"<w:t>a</w:t>" * 100_000
            for _ in range(25):  # 30 MB of XML, a few KB on disk
                member.write(block)
    assert (source / "bomb.docx").stat().st_size < 1_000_000
    started = time.perf_counter()
    done = ingest_cli(str(source), "--corpus", str(tmp_path / "c"), "--max-inflated-mb", "10")
    assert done.returncode == 0, done.stderr
    assert "bomb.docx: too-large: word/document.xml inflates to 30 MB" in done.stdout
    assert time.perf_counter() - started < 60


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
