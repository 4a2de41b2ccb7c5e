"""A corpus's documents and its version are read together: a reader waits while `evolve ingest` (another process)
writes a version, so the version it reports names exactly the documents it read."""

from __future__ import annotations

import subprocess
import sys
import threading

from evalsets.ingest import ingest, read_versioned
from evalsets.ingest.corpus import corpus_version_of, document_hash

WRITER = """
import sys
from pathlib import Path
from evalsets.ingest import CorpusFolder
from evalsets.ingest.corpus import write_atomically

folder = CorpusFolder(Path(sys.argv[1]))
with folder.locked(exclusive=True):  # as CorpusFolder.write holds it: the documents first, the manifest last
    write_atomically(folder.corpus_file, Path(sys.argv[2]).read_text("utf-8"))
    print("documents written", flush=True)
    sys.stdin.readline()
    write_atomically(folder.manifest_file, Path(sys.argv[3]).read_text("utf-8"))
"""


def test_a_reader_never_pairs_a_version_with_other_documents(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "a.md").write_text("# A\n\nThe first note.\n", "utf-8")
    corpus = tmp_path / "corpus"
    first = ingest([drive], corpus, workers=1)
    (drive / "b.md").write_text("# B\n\nA note ingested while serve was reading.\n", "utf-8")
    staged = tmp_path / "staged"  # the next version, written elsewhere so that the writer can replay it slowly
    second = ingest([drive], staged, workers=1)
    assert second.version != first.version

    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(corpus), str(staged / "corpus.jsonl"),
                               str(staged / "manifest.json")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout.readline() == "documents written\n"  # new documents, the old manifest, under the lock
        read = {}
        reader = threading.Thread(target=lambda: read.update(zip(("docs", "version"), read_versioned(corpus))))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()  # waiting for the writer's lock, not reading half of each version
        writer.stdin.write("go on\n")
        writer.stdin.flush()
        reader.join(30)
    finally:
        writer.stdin.close()
        writer.wait(30)
    assert writer.returncode == 0
    assert read["version"] == second.version and {d.doc_id for d in read["docs"]} == {"drive/a.md", "drive/b.md"}
    assert corpus_version_of({d.doc_id: document_hash(d) for d in read["docs"]}) == read["version"]
    assert read_versioned(corpus / "corpus.jsonl")[1] == second.version  # the file's path reads the same way


def test_a_hand_written_corpus_has_no_version(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"doc_id": "d1", "title": "", "text": "hello"}\n', "utf-8")
    docs, version = read_versioned(tmp_path)
    assert [d.doc_id for d in docs] == ["d1"] and version is None
    assert not (tmp_path / ".lock").exists()  # nothing is written beside a corpus evolve does not keep
