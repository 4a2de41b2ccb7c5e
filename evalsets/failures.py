"""Feedback in, evaluation sets out: importing feedback lines, and the failure set from bad ratings."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsets.errors import EvalSetError
from evalsets.feedback import FeedbackEvent, FeedbackRefused, normalise_query, parse_event
from evalsets.loader import read_corpus, read_lines
from evalsets.model import EvalSet, Query

MAX_ERRORS_SHOWN = 10
UNKNOWN_SOURCE = "unknown"
"""The source of a failure query written without provenance (before `sources` existed, or by hand)."""


def bad_lines(path: Path, errors: list[tuple[int, str]], what: str = "bad") -> EvalSetError:
    """One error for a file taken whole or not at all: how many lines were refused, the first few as file:line."""
    more = f" (first {MAX_ERRORS_SHOWN} shown)" if len(errors) > MAX_ERRORS_SHOWN else ""
    shown = "\n".join(f"{path}:{number}: {message}" for number, message in errors[:MAX_ERRORS_SHOWN])
    return EvalSetError(f"{len(errors)} line(s) {what}, nothing imported{more}:\n{shown}")


def read_feedback_file(path: Path) -> list[tuple[int, FeedbackEvent]]:
    """Every line of a feedback export (JSONL), validated before anything is stored: (line number, event).

    The file is taken whole or not at all: any bad line raises one EvalSetError listing the bad lines
    as file:line; a file that is not UTF-8 is a one-line error naming it."""
    events, errors = [], []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            events.append((number, parse_event(json.loads(line))))
        except json.JSONDecodeError as err:
            errors.append((number, f"bad JSON ({err.msg} at column {err.colno})"))
        except FeedbackRefused as err:
            errors.append((number, str(err)))
    if errors:
        raise bad_lines(path, errors)
    if not events:
        raise EvalSetError("no feedback lines", path)
    return events


def query_sources(query: Query) -> set[str]:
    """The feedback sources behind a failure query (``unknown`` when it carries no provenance)."""
    sources = query.extra.get("sources")
    if not isinstance(sources, list) or not sources:
        return {UNKNOWN_SOURCE}
    return {str(s) for s in sources}


def gating_subset(evalset: EvalSet, allowed_sources: Collection[str]) -> EvalSet:
    """The failure queries that may gate promotion: those with at least one allowed feedback source."""
    allowed = set(allowed_sources)
    keep = [q.query_id for q in evalset.queries if query_sources(q) & allowed]
    return evalset.subset(keep)


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
    """Write the standard layout from negative feedback rows (query, correct_doc_id, results, source, request_id).

    A query with a doc the user marked right becomes a qrel; without one, the judge (if any) picks the
    relevant docs among what was returned; otherwise it is skipped and counted. Same queries merge.
    Each query line keeps its provenance: ``sources`` (api, import) and ``request_ids`` of its ratings,
    so a policy can say which feedback may gate promotion (see :func:`gating_subset`).
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
        entry = merged.setdefault(key, {"text": query, "relevant": set(), "results": row.get("results") or [],
                                        "sources": set(), "request_ids": set()})
        entry["sources"].add(row.get("source") or UNKNOWN_SOURCE)
        if row.get("request_id"):
            entry["request_ids"].add(row["request_id"])
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
        queries.append({"query_id": query_id, "text": entry["text"], "sources": sorted(entry["sources"]),
                        "request_ids": sorted(entry["request_ids"])})
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
