"""Feedback in, evaluation sets out: importing feedback lines, and the failure set from bad ratings."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsets.errors import EvalSetError
from evalsets.feedback import FeedbackEvent
from evalsets.loader import read_corpus

IMPORT_FIELDS = {"rating", "query", "request_id", "comment", "correct_doc_id", "config_version"}


def read_feedback_file(path: Path) -> Iterator[FeedbackEvent]:
    """Validate every line of a feedback export (JSONL) before anything is stored; errors name the line."""
    if not path.is_file():
        raise EvalSetError("file not found", path)
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalSetError(f"bad JSON ({err.msg} at column {err.colno})", path, number) from None
        if not isinstance(row, dict):
            raise EvalSetError("each line must be a JSON object", path, number)
        unknown = set(row) - IMPORT_FIELDS
        if unknown:
            raise EvalSetError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(IMPORT_FIELDS)}", path, number)
        if row.get("rating") not in ("good", "bad"):
            raise EvalSetError(f"rating must be 'good' or 'bad', got {row.get('rating')!r}", path, number)
        if not (isinstance(row.get("query"), str) and row["query"].strip()) and not row.get("request_id"):
            raise EvalSetError("needs a non-empty 'query' (or the 'request_id' of a served request)", path, number)
        for name in IMPORT_FIELDS - {"rating"}:
            if name in row and row[name] is not None and not isinstance(row[name], str):
                raise EvalSetError(f"field '{name}' must be a string", path, number)
        events.append(FeedbackEvent(rating=row["rating"], request_id=row.get("request_id"), query=row.get("query"),
                                    comment=row.get("comment"), correct_doc_id=row.get("correct_doc_id"),
                                    config_version=row.get("config_version"), source="import"))
    if not events:
        raise EvalSetError("no feedback lines", path)
    return iter(events)


def normalise_query(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


@dataclass
class FailureSetReport:
    bad_events: int = 0
    queries: int = 0
    with_correct_doc: int = 0
    judged: int = 0
    skipped_no_answer: list[str] = field(default_factory=list)
    skipped_unknown_doc: list[str] = field(default_factory=list)
    duplicates_merged: int = 0


Judge = Callable[[str, list[dict[str, Any]]], list[str]]
"""(query, the documents that were returned) -> the doc ids that answer it (LLM-judged)."""


def build_failure_set(bad_feedback: list[dict[str, Any]], corpus_path: Path, out: Path,
                      judge: Judge | None = None) -> FailureSetReport:
    """Write the standard layout from negative feedback rows (query, correct_doc_id, results).

    A query with a doc the user marked right becomes a qrel; without one, the judge (if any) picks the
    relevant docs among what was returned; otherwise it is skipped and counted. Same queries merge.
    """
    docs = {d.doc_id for d in read_corpus(corpus_path)}
    report = FailureSetReport(bad_events=len(bad_feedback))
    merged: dict[str, dict[str, Any]] = {}
    for row in bad_feedback:
        query = (row.get("query") or "").strip()
        if not query:
            continue
        key = normalise_query(query)
        report.duplicates_merged += key in merged
        entry = merged.setdefault(key, {"text": query, "relevant": set(), "results": row.get("results") or []})
        correct = row.get("correct_doc_id")
        if correct:
            if correct in docs:
                entry["relevant"].add(correct)
            else:
                report.skipped_unknown_doc.append(correct)
    queries, qrels = [], []
    for number, (key, entry) in enumerate(sorted(merged.items())):
        relevant = set(entry["relevant"])
        if relevant:
            report.with_correct_doc += 1
        elif judge is not None:
            results = entry["results"] if isinstance(entry["results"], list) else json.loads(entry["results"])
            relevant = {d for d in judge(entry["text"], results) if d in docs}
            report.judged += bool(relevant)
        if not relevant:
            report.skipped_no_answer.append(entry["text"])
            continue
        query_id = f"fail-{number:05d}"
        queries.append({"query_id": query_id, "text": entry["text"]})
        qrels += [(query_id, doc) for doc in sorted(relevant)]
    report.queries = len(queries)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus_path, out / "corpus.jsonl")
    (out / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), "utf-8")
    (out / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels),
                                   "utf-8")
    (out / "README.md").write_text(
        "# failure set\n\nBuilt by `evolve feedback failures` from negative user feedback: "
        f"{report.bad_events} bad ratings, {report.queries} distinct queries with a known right document "
        f"({report.with_correct_doc} marked by users, {report.judged} judged by the LLM), "
        f"{len(report.skipped_no_answer)} skipped without one.\n", "utf-8")
    return report
