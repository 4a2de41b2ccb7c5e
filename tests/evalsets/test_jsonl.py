"""A corpus file no text can break (issue 33, point 1): every JSONL file evolve writes is one record a line,
whatever characters the records hold, and reads back unchanged.

hypothesis is not installed in this project, so the round trip is a seeded randomized test over arbitrary Unicode
(every character str.splitlines() breaks at, C0/C1 controls, quotes, backslashes, Hangul, astral characters)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from evalsets import Document, json_line, load_evalset, read_corpus, split_lines
from evalsets.ingest import CorpusFolder
from evalsets.ingest.base import tidy
from evalsets.ingest.corpus import read_versioned
from helpers import evolve

# Every character str.splitlines() breaks at, and the ones that made `corpus.jsonl:21: bad JSON`
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
SPECIAL = LINE_BREAKS + "\x00\x01\x1b\x7f\x9f\t \"\\/{}[]:,\ufeff\ufffe\u200b\u00a0"


def random_text(rng: random.Random, low: int = 0, high: int = 40, exclude: str = "") -> str:
    def char() -> str:
        pick = rng.random()
        if pick < 0.35:
            return rng.choice(SPECIAL)
        if pick < 0.55:
            return chr(rng.randint(0xAC00, 0xD7A3))  # Hangul syllables
        if pick < 0.7:
            return chr(rng.randint(0x20, 0x7E))
        while True:  # any code point but a surrogate (not encodable as UTF-8, in a file or anywhere)
            code = rng.randint(0, 0x10FFFF)
            if not 0xD800 <= code <= 0xDFFF:
                return chr(code)
    return "".join(c for c in (char() for _ in range(rng.randint(low, high))) if c not in exclude)


def random_documents(rng: random.Random, count: int, exclude: str = "") -> list[Document]:
    docs: dict[str, Document] = {}
    while len(docs) < count:
        doc_id = random_text(rng, 1, 12, exclude) or "x"
        if doc_id.strip() and doc_id not in docs:
            metadata = {random_text(rng, 0, 6): random_text(rng), "n": rng.randint(-5, 5),
                        "list": [random_text(rng, 0, 5) for _ in range(rng.randint(0, 3))]}
            docs[doc_id] = Document(doc_id, random_text(rng), random_text(rng, 0, 400), metadata)
    return list(docs.values())


@pytest.mark.parametrize("seed", range(5))
def test_any_documents_go_through_the_corpus_writer_and_come_back_unchanged(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    docs = random_documents(rng, 60)
    folder = CorpusFolder(tmp_path / "corpus")
    folder.write(docs, files={}, sources=["s"], counts={"added": len(docs)})
    raw = folder.corpus_file.read_text(encoding="utf-8")
    # one line a document, even for a reader that splits where str.splitlines() does
    assert len(raw.splitlines()) == len(docs) == raw.count("\n")
    assert not set("\u2028\u2029\x85") & set(raw)
    back, version = read_versioned(folder.root)
    assert version == folder.version()
    expected = sorted(docs, key=lambda d: d.doc_id)
    assert [(d.doc_id, d.title, d.text, d.metadata) for d in back] == \
           [(d.doc_id, d.title, d.text, d.metadata) for d in expected]


@pytest.mark.parametrize("seed", range(3))
def test_queries_and_qrels_with_any_text_load_as_an_evaluation_set(tmp_path: Path, seed: int) -> None:
    rng = random.Random(100 + seed)
    docs = random_documents(rng, 20, exclude="\t\n\r")  # a TSV id cannot hold a tab or a newline
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(json_line({"doc_id": d.doc_id, "title": d.title, "text": d.text,
                                                            "metadata": d.metadata}) for d in docs), "utf-8")
    queries = [{"query_id": f"q{n}-{random_text(rng, 0, 4, exclude=chr(9) + chr(10) + chr(13))}",
                "text": random_text(rng, 1, 60), "answers": [random_text(rng)]} for n in range(15)]
    (folder / "queries.jsonl").write_text("".join(json_line(q) for q in queries), "utf-8")
    (folder / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\n" + "".join(
        f"{q['query_id']}\t{rng.choice(docs).doc_id}\t1\n" for q in queries), "utf-8")
    evalset = load_evalset(folder)
    assert [(q.query_id, q.text, list(q.answers)) for q in evalset.queries] == \
           [(q["query_id"], q["text"], q["answers"]) for q in queries]
    assert [(d.doc_id, d.text) for d in evalset.corpus] == [(d.doc_id, d.text) for d in docs]


def test_json_line_escapes_only_what_breaks_a_line_and_keeps_korean_as_utf8() -> None:
    line = json_line({"text": "가나다" + LINE_BREAKS, "번호": 1})
    assert line.endswith("\n") and line.count("\n") == 1 and len(line.splitlines()) == 1
    assert "가나다" in line and "번호" in line  # not \uXXXX: Korean text stays 3 bytes a character
    assert "\\u2028" in line and "\\u2029" in line and "\\u0085" in line
    assert json.loads(line) == {"text": "가나다" + LINE_BREAKS, "번호": 1}


def test_split_lines_breaks_at_newline_only_and_tolerates_crlf() -> None:
    assert split_lines("a\u2028b\x85c\r\nd\fe\n\nf") == ["a\u2028b\x85c", "d\fe", "", "f"]
    assert split_lines("") == [] and split_lines("a\n") == ["a"] and split_lines("a\r\n") == ["a"]


def test_a_corpus_written_before_the_fix_with_raw_line_separators_reads_again(tmp_path: Path) -> None:
    """The corpora that said `corpus.jsonl:21: bad JSON`: raw U+2028/U+0085 inside strings, CRLF line ends."""
    path = tmp_path / "corpus.jsonl"
    rows = [{"doc_id": "a", "title": "t\u2028", "text": "x\u2028y\x85z\u2029"}, {"doc_id": "b", "text": "둘"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows), "utf-8")
    assert [(d.doc_id, d.title, d.text) for d in read_corpus(path)] == \
           [("a", "t\u2028", "x\u2028y\x85z\u2029"), ("b", "", "둘")]


def test_the_ingest_clean_up_turns_line_separators_into_newlines_and_drops_controls() -> None:
    assert tidy("a\u2028b\u2029c\x85d\ve\ff\x1cg") == "a\nb\nc\nd\ne\nf\ng"
    assert tidy("가\x00나\x01다\x1b라\x7f마\x9c바\t사\r\n아") == "가나다라마바\t사\n아"


def test_ingest_of_files_with_line_separators_runs_twice_and_the_corpus_loads(tmp_path: Path) -> None:
    source = tmp_path / "docs"
    source.mkdir()
    (source / "notice.txt").write_text("공지\u2028첫 줄\x85둘째 줄\u2029셋째 줄\n끝\n", "utf-8")
    (source / "memo\u2028two\x85.txt").write_text("메모 본문\u2028다음 줄\n", "utf-8")  # the raw characters in the id
    corpus = tmp_path / "corpus"

    def ingest_cli() -> subprocess.CompletedProcess:
        return evolve("ingest", str(source), "--corpus", str(corpus), timeout=300)

    first = ingest_cli()
    assert first.returncode == 0, first.stdout + first.stderr
    second = ingest_cli()  # the run that used to fail with `corpus.jsonl:N: bad JSON`
    assert second.returncode == 0, second.stdout + second.stderr
    docs = {d.doc_id: d for d in read_corpus(corpus / "corpus.jsonl")}
    assert set(docs) == {"docs/notice.txt", "docs/memo\u2028two\x85.txt"}
    assert docs["docs/notice.txt"].text == "공지\n첫 줄\n둘째 줄\n셋째 줄\n끝"
    assert docs["docs/memo\u2028two\x85.txt"].text == "메모 본문\n다음 줄"
    raw = (corpus / "corpus.jsonl").read_text(encoding="utf-8")
    assert len(raw.splitlines()) == 2
    (corpus / "queries.jsonl").write_text(json_line({"query_id": "q1", "text": "공지\u2028"}), "utf-8")
    (corpus / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq1\tdocs/memo\u2028two\x85.txt\t1\n", "utf-8")
    evalset = load_evalset(corpus)
    assert len(evalset.corpus) == 2 and evalset.queries[0].text == "공지\u2028"
