"""Load and validate an evaluation set folder (corpus.jsonl, queries[.split].jsonl, qrels[.split].tsv).

Every user mistake raises :class:`EvalSetError` naming the file and line, never a bare traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalsets.errors import EvalSetError
from evalsets.jsonl import split_lines
from evalsets.model import Document, EvalSet, Qrels, Query

QRELS_HEADER = ["query_id", "doc_id", "relevance"]
QUERY_FIELDS = {"query_id", "text", "answers", "metadata"}
_SPLIT_FILE = re.compile(r"^queries\.(?P<split>[^.]+)\.jsonl$")


def available_splits(path: Path | str) -> list[str]:
    """Split names in a folder: 'default' for queries.jsonl, plus every queries.<split>.jsonl."""
    folder = Path(path)
    splits = ["default"] if (folder / "queries.jsonl").exists() else []
    for child in sorted(folder.glob("queries.*.jsonl")):
        match = _SPLIT_FILE.match(child.name)
        if match:
            splits.append(match.group("split"))
    return splits


def _split_files(folder: Path, split: str) -> tuple[Path, Path]:
    if split in ("default", "test", ""):
        default = (folder / "queries.jsonl", folder / "qrels.tsv")
        if split != "test" or not (folder / "queries.test.jsonl").exists():
            return default
    return folder / f"queries.{split}.jsonl", folder / f"qrels.{split}.tsv"


def read_lines(path: Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file; a missing or non-UTF-8 file is one EvalSetError naming it (and
    ``what`` it is, when missing)."""
    if not path.is_file():
        raise EvalSetError(f"{what} not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise EvalSetError(f"not valid UTF-8 ({err.reason} at byte {err.start})", path) from None
    for number, line in enumerate(split_lines(text), start=1):  # '\n' only: a U+2028 in a text is no line break
        yield number, line


def _read_jsonl(path: Path, id_field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    seen: set[str] = set()
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalSetError(f"bad JSON ({err.msg} at column {err.colno})", path, number) from None
        if not isinstance(row, dict):
            raise EvalSetError("each line must be a JSON object", path, number)
        for name in (id_field, "text"):
            if not isinstance(row.get(name), str):
                raise EvalSetError(f"field '{name}' missing or not a string", path, number)
        if not row[id_field]:
            raise EvalSetError(f"field '{id_field}' is empty", path, number)
        if row[id_field] in seen:
            raise EvalSetError(f"duplicate {id_field} {row[id_field]!r}", path, number)
        seen.add(row[id_field])
        metadata = row.get("metadata", {})
        if not isinstance(metadata, dict):
            raise EvalSetError("field 'metadata' must be an object", path, number)
        yield number, row


def query_rows(path: Path) -> list[dict[str, Any]]:
    """A queries file's lines as written (JSON objects), each checked as :func:`load_evalset` checks it."""
    return [row for _, row in _read_jsonl(path, "query_id")]


def read_corpus(path: Path) -> list[Document]:
    docs = []
    for number, row in _read_jsonl(path, "doc_id"):
        title = row.get("title", "")
        if not isinstance(title, str):
            raise EvalSetError("field 'title' must be a string", path, number)
        docs.append(Document(row["doc_id"], title, row["text"], row.get("metadata", {})))
    if not docs:
        raise EvalSetError("corpus is empty", path)
    return docs


def read_queries(path: Path) -> list[Query]:
    queries = []
    for number, row in _read_jsonl(path, "query_id"):
        answers = row.get("answers", [])
        if not (isinstance(answers, list) and all(isinstance(a, str) for a in answers)):
            raise EvalSetError("field 'answers' must be a list of strings", path, number)
        extra = {k: v for k, v in row.items() if k not in QUERY_FIELDS}  # e.g. a failure set's provenance
        queries.append(Query(row["query_id"], row["text"], tuple(answers), row.get("metadata", {}), extra))
    if not queries:
        raise EvalSetError("no queries", path)
    return queries


def read_qrels(path: Path, doc_ids: set[str], query_ids: set[str], drop_missing_docs: bool = False) -> Qrels:
    """``drop_missing_docs``: a judgement of a document the corpus no longer has is left out (a living corpus,
    where documents get removed), instead of being an error (a fixed set, where it is a mistake)."""
    qrels: Qrels = {}
    lines = read_lines(path)
    header = next(lines, None)
    if header is None or header[1].strip().split("\t") != QRELS_HEADER:
        raise EvalSetError("first line must be the header 'query_id<TAB>doc_id<TAB>relevance'", path, 1)
    for number, line in lines:
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise EvalSetError(f"expected 3 tab-separated columns, got {len(parts)}", path, number)
        query_id, doc_id, relevance = parts
        try:
            grade = int(relevance)
        except ValueError:
            raise EvalSetError(f"relevance {relevance!r} is not an integer", path, number) from None
        if doc_id not in doc_ids:
            if drop_missing_docs:
                continue
            raise EvalSetError(f"doc_id {doc_id!r} is not in the corpus", path, number)
        if query_id not in query_ids:
            raise EvalSetError(f"query_id {query_id!r} is not in the queries file", path, number)
        qrels.setdefault(query_id, {})[doc_id] = grade
    return qrels


def load_evalset(path: Path | str, split: str = "default", name: str | None = None) -> EvalSet:
    """Read and validate one split of an evaluation set folder.

    ``split`` is ``default`` (queries.jsonl + qrels.tsv) or the name of an extra split such as
    ``train`` (queries.train.jsonl + qrels.train.tsv). ``test`` is an alias of the default files.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise EvalSetError("evaluation set folder not found", folder)
    queries_path, qrels_path = _split_files(folder, split)
    if not queries_path.exists():
        if (folder / "manifest.json").is_file() and not available_splits(folder):
            raise EvalSetError("this corpus (`evolve ingest`) has no questions yet: write some with `evolve evalset "
                               f"synthesize --corpus {folder}`", queries_path)
        known = ", ".join(available_splits(folder)) or "none"
        raise EvalSetError(f"no split {split!r} here (splits found: {known})", queries_path)
    corpus = read_corpus(folder / "corpus.jsonl")
    queries = read_queries(queries_path)
    living = (folder / "manifest.json").is_file()  # written by `evolve ingest`: documents come and go
    qrels = read_qrels(qrels_path, {d.doc_id for d in corpus}, {q.query_id for q in queries}, living)
    dropped = 0
    if living:
        judged = [q for q in queries if any(g > 0 for g in qrels.get(q.query_id, {}).values())]
        dropped, queries = len(queries) - len(judged), judged
        if not queries:
            raise EvalSetError(f"all {dropped} queries lost their relevant documents: the corpus no longer has "
                               "them (`evolve evalset synthesize` writes questions for it)", queries_path)
    unjudged = [q.query_id for q in queries if not any(g > 0 for g in qrels.get(q.query_id, {}).values())]
    if unjudged:
        shown = ", ".join(unjudged[:5]) + (" ..." if len(unjudged) > 5 else "")
        raise EvalSetError(f"{len(unjudged)} queries have no relevant document in {qrels_path.name}: {shown}",
                           queries_path)
    return EvalSet(name or folder.name, corpus, queries, qrels, split=split, path=folder, dropped_queries=dropped)
