"""Feedback in, evaluation sets out: importing feedback lines, and the failure set from bad ratings."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalsets.errors import EvalSetError
from evalsets.feedback import FeedbackEvent, FeedbackRefused, normalise_query, parse_event
from evalsets.jsonl import json_line
from evalsets.loader import read_corpus, read_lines
from evalsets.model import Document, EvalSet, Query

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


LEFT_OUT = {
    "unknown_doc": "marked documents not in the corpus",
    "nothing_returned": "no returned document in the corpus to judge",
    "not_judged": "not judged",
    "judged_none": "the judge found no returned document answers",
    "judge_invalid": "no valid verdict from the judge",
}
"""Why a query without a known right document is left out, as the report and the command say it."""


@dataclass
class FailureSetReport:
    bad_events: int = 0
    queries: int = 0
    with_correct_doc: int = 0
    judged: int = 0
    """Queries whose right document the judge named (among the documents their requests returned)."""
    judge_model: str = ""
    duplicates_merged: int = 0
    skipped_unknown_doc: list[str] = field(default_factory=list)
    """Marked documents the corpus does not hold (a query whose marks are all unknown is left out)."""
    left_out: dict[str, list[str]] = field(default_factory=lambda: {reason: [] for reason in LEFT_OUT})
    """Reason (see :data:`LEFT_OUT`) -> the texts of the queries left out for it."""
    judge_unavailable: str = ""
    """Why the resolver could not judge at all (no LLM), when it said so."""

    @property
    def skipped_no_answer(self) -> list[str]:
        """Every query left out without a known right document, whatever the reason."""
        return [text for texts in self.left_out.values() for text in texts]


class ChunkVerdictLike(Protocol):
    """Which of the passages a resolver was given answers the question (``experiments.judge.ChunkVerdict``)."""

    index: int | None
    """Into the passages; None = none answers (when ``resolved``)."""
    resolved: bool
    """False when no valid verdict came back (then ``index`` means nothing)."""
    reason: str
    judge_model: str


Resolver = Callable[[str, list[str]], ChunkVerdictLike]
"""(question, the texts of the documents its requests returned, best-ranked first) -> the verdict.
``experiments.Judge(client).answering_chunk`` is one; the CLI wires it in (evalsets knows no LLM)."""


class JudgeUnavailable(Exception):
    """A resolver raises this when it cannot judge at all (no LLM could be had): the query and every one after
    it are left out as not judged, and the message is kept in the report."""


def _returned(rows_results: list[Any], docs: dict[str, Document]) -> list[dict[str, str]]:
    """The distinct corpus documents the query's requests returned, best-ranked first, with the chunk that
    brought each (its first hit)."""
    seen: dict[str, str] = {}
    for results in rows_results:
        if isinstance(results, str):
            results = json.loads(results)
        for hit in sorted((h for h in results or [] if isinstance(h, dict)), key=lambda h: h.get("rank") or 0):
            doc_id = hit.get("doc_id")
            if doc_id in docs and doc_id not in seen:
                seen[doc_id] = str(hit.get("chunk_id") or "")
    return [{"doc_id": doc_id, "chunk_id": chunk_id} for doc_id, chunk_id in seen.items()]


def _passage(doc: Document) -> str:
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def build_failure_set(bad_feedback: list[dict[str, Any]], corpus_path: Path, out: Path,
                      resolve: Resolver | None = None,
                      progress: Callable[[str, int, int], None] | None = None) -> FailureSetReport:
    """Write the standard layout from negative feedback rows (query, correct_doc_id, results, source, request_id).

    A query with a doc the user marked right becomes a qrel (no judge is asked). A query no rating marked a
    document for goes to ``resolve`` with the texts of the corpus documents its requests returned: the document
    it names becomes the qrel, and the query's ``metadata.judge`` records the judge's model, reason and which
    returned document and chunk it named. A query the judge finds unanswered by what was returned, or gets no
    valid verdict for, is left out; so is every such query without ``resolve``. The reasons are counted in
    ``report.left_out``. Same queries merge. Each query line keeps its provenance: ``sources`` (api, import) and
    ``request_ids`` of its ratings, so a policy can say which feedback may gate promotion (see
    :func:`gating_subset`), and ``metadata.relevant_by`` (user or judge). ``progress(stage, done, total)`` is
    called around the judge calls.
    """
    docs = {d.doc_id: d for d in read_corpus(corpus_path)}
    report = FailureSetReport(bad_events=len(bad_feedback))
    merged: dict[str, dict[str, Any]] = {}
    for row in bad_feedback:
        query = (row.get("query") or "").strip()
        if not query:
            continue
        key = normalise_query(query)
        report.duplicates_merged += key in merged
        entry = merged.setdefault(key, {"text": query, "relevant": set(), "marked": False, "results": [],
                                        "sources": set(), "request_ids": set()})
        entry["results"].append(row.get("results"))
        entry["sources"].add(row.get("source") or UNKNOWN_SOURCE)
        if row.get("request_id"):
            entry["request_ids"].add(row["request_id"])
        correct = row.get("correct_doc_id")
        if correct:
            entry["marked"] = True
            if correct in docs:
                entry["relevant"].add(correct)
            else:
                report.skipped_unknown_doc.append(correct)
    entries = sorted(merged.items())
    to_judge = [entry for _, entry in entries if not entry["marked"]]
    for done, entry in enumerate(to_judge, start=1):
        _judge(entry, docs, resolve if not report.judge_unavailable else None, report)
        if progress:
            progress("judging bad ratings without a marked document", done, len(to_judge))
    queries, qrels = [], []
    for number, (key, entry) in enumerate(entries):
        if entry["marked"] and not entry["relevant"]:
            report.left_out["unknown_doc"].append(entry["text"])
        if not entry["relevant"]:
            continue
        report.with_correct_doc += entry["marked"]
        query_id = f"fail-{number:05d}"
        metadata = {"relevant_by": "user"} if entry["marked"] else {"relevant_by": "judge", "judge": entry["judge"]}
        queries.append({"query_id": query_id, "text": entry["text"], "metadata": metadata,
                        "sources": sorted(entry["sources"]), "request_ids": sorted(entry["request_ids"])})
        qrels += [(query_id, doc) for doc in sorted(entry["relevant"])]
    report.queries = len(queries)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus_path, out / "corpus.jsonl")
    (out / "queries.jsonl").write_text("".join(json_line(q) for q in queries), "utf-8")
    (out / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels),
                                   "utf-8")
    judge = f" ({report.judge_model})" if report.judge_model else ""
    (out / "README.md").write_text(
        "# failure set\n\nBuilt by `evolve feedback failures` from negative user feedback: "
        f"{report.bad_events} bad ratings, {report.queries} distinct queries with a known right document "
        f"({report.with_correct_doc} marked by users, {report.judged} named by the LLM judge{judge} among the "
        f"documents that were returned), {len(report.skipped_no_answer)} left out without one"
        + "".join(f"; {len(texts)} {LEFT_OUT[reason]}" for reason, texts in report.left_out.items() if texts)
        + ".\n", "utf-8")
    return report


def _judge(entry: dict[str, Any], docs: dict[str, Document], resolve: Resolver | None,
           report: FailureSetReport) -> None:
    """Ask ``resolve`` which returned document answers an unmarked query; the outcome goes into the entry and
    the report."""
    returned = _returned(entry["results"], docs)
    if not returned:
        report.left_out["nothing_returned"].append(entry["text"])
        return
    if resolve is None:
        report.left_out["not_judged"].append(entry["text"])
        return
    try:
        verdict = resolve(entry["text"], [_passage(docs[hit["doc_id"]]) for hit in returned])
    except JudgeUnavailable as err:
        report.judge_unavailable = str(err) or type(err).__name__
        report.left_out["not_judged"].append(entry["text"])
        return
    report.judge_model = report.judge_model or verdict.judge_model
    if not verdict.resolved or (verdict.index is not None and not 0 <= verdict.index < len(returned)):
        report.left_out["judge_invalid"].append(entry["text"])
        return
    if verdict.index is None:
        report.left_out["judged_none"].append(entry["text"])
        return
    named = returned[verdict.index]
    entry["relevant"].add(named["doc_id"])
    entry["judge"] = {"model": verdict.judge_model, "reason": verdict.reason, "passage": verdict.index + 1,
                      "doc_id": named["doc_id"], "chunk_id": named["chunk_id"]}
    report.judged += 1
