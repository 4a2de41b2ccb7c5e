"""A person's verdict on synthesized questions: what an LLM writer kept is read before the loop trusts it.

The checks of :mod:`evalsets.question_checks` drop what is wrong on its face, but what the local 1.5B writer keeps
is still only about 60% acceptable to a reader on Korean (``bench/results/synth_acceptance.md``): its wrong answers
and garbled questions need someone who reads the passage. `evolve evalset review` shows each synthesized question
with the passage it was written from and records the reader's verdict here:

- ``reviews.jsonl`` in the set's folder, one line per verdict, appended and synced before anything else changes, so
  a review stopped at any point loses nothing. A rejected line carries the whole query and its qrels rows.
- A rejected question leaves ``queries.jsonl`` and ``qrels.tsv`` (:func:`apply_rejections`, idempotent, so a crash
  between the verdict and the rewrite is completed by the next command). Accepted questions stay as written.
- A verdict holds for the question and answer it was given on: an item whose text changed since is reviewed again.
- The verdicts measure the writer on the company's own documents: :func:`acceptance` gives the share accepted per
  writer model and prompt, with its 95% Wilson interval.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scipy.stats import binomtest

from evalsets.errors import EvalSetError
from evalsets.ingest.corpus import write_atomically
from evalsets.jsonl import json_line, split_lines
from evalsets.loader import QRELS_HEADER, query_rows

REVIEWS = "reviews.jsonl"
QRELS_HEAD = "\t".join(QRELS_HEADER) + "\n"


def wilson(accepted: int, total: int) -> tuple[float, float]:
    """95% Wilson score interval of a share (sound at small counts and near 0 or 1, unlike p +- 1.96 se)."""
    ci = binomtest(accepted, total).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Acceptance:
    """What a person accepted of one writer's (model and prompt) synthesized questions."""

    generator: str
    writer_prompt: str
    accepted: int
    reviewed: int

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson score interval of the share accepted (sound at the small counts a review gives)."""
        return wilson(self.accepted, self.reviewed)


def is_synthesized(query: dict[str, Any]) -> bool:
    """Written by an LLM writer (`evolve evalset synthesize` records its model as ``generator``)."""
    return bool((query.get("metadata") or {}).get("generator"))


def _key(query_id: str, question: str, answers: list[str]) -> tuple[str, str, str]:
    return query_id, question, "\x1f".join(answers)


def set_lines(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The questions of the set in ``folder`` as written (checked as loading checks them) and its qrels rows
    (header dropped); none when it has no ``queries.jsonl`` yet."""
    if not (folder / "queries.jsonl").is_file():
        return [], []
    qrels = folder / "qrels.tsv"
    rows = split_lines(qrels.read_text(encoding="utf-8"))[1:] if qrels.is_file() else []
    return query_rows(folder / "queries.jsonl"), [row for row in rows if row.strip()]


def read_reviews(folder: Path) -> list[dict[str, Any]]:
    """Every verdict recorded for the set in ``folder``, oldest first."""
    path = folder / REVIEWS
    if not path.is_file():
        return []
    verdicts = []
    for number, line in enumerate(split_lines(path.read_text(encoding="utf-8")), start=1):
        if line.strip():
            try:
                verdicts.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise EvalSetError(f"bad JSON ({err.msg} at column {err.colno})", path, number) from None
    return verdicts


def latest_verdicts(folder: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The last verdict on each (query id, question, answers)."""
    return {_key(r["query_id"], r["question"], r["answers"]): r for r in read_reviews(folder)}


def pending(folder: Path) -> list[dict[str, Any]]:
    """The synthesized questions of the set in ``folder`` that no one has given a verdict on as they now read."""
    decided = latest_verdicts(folder)
    return [q for q in set_lines(folder)[0]
            if is_synthesized(q) and _key(q["query_id"], q["text"], q.get("answers") or []) not in decided]


def record_verdict(folder: Path, query: dict[str, Any], accepted: bool, reviewer: str, reason: str = "") -> None:
    """Append the verdict (synced), then take a rejected question out of the set."""
    verdict = {"query_id": query["query_id"], "question": query["text"], "answers": query.get("answers") or [],
               "verdict": "accept" if accepted else "reject", "reason": reason.strip(), "reviewer": reviewer,
               "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "generator": (query.get("metadata") or {}).get("generator", ""),
               "writer_prompt": (query.get("metadata") or {}).get("writer_prompt", ""),
               **({} if accepted else {"query": query, "qrels": [row for row in set_lines(folder)[1]
                                                                 if row.split("\t")[0] == query["query_id"]]})}
    with open(folder / REVIEWS, "a", encoding="utf-8") as handle:
        handle.write(json_line(verdict))
        handle.flush()
        os.fsync(handle.fileno())
    if not accepted:
        apply_rejections(folder)


def apply_rejections(folder: Path) -> int:
    """Take every question whose last verdict is a rejection out of ``queries.jsonl`` and ``qrels.tsv``; the number
    taken out (0 when the files already agree with the verdicts)."""
    rejected = {key for key, verdict in latest_verdicts(folder).items() if verdict["verdict"] == "reject"}
    queries, qrels = set_lines(folder)
    kept = [q for q in queries if _key(q["query_id"], q["text"], q.get("answers") or []) not in rejected]
    if len(kept) == len(queries):
        return 0
    gone = {q["query_id"] for q in queries} - {q["query_id"] for q in kept}
    rows = [row for row in qrels if row.split("\t")[0] not in gone]
    write_atomically(folder / "qrels.tsv", QRELS_HEAD + "".join(row + "\n" for row in rows))
    write_atomically(folder / "queries.jsonl", "".join(json_line(q) for q in kept))
    return len(gone)


def rejected_questions(folder: Path) -> list[str]:
    """The questions people rejected: synthesis counts a new one that repeats them as a near duplicate."""
    return [r["question"] for r in latest_verdicts(folder).values() if r["verdict"] == "reject"]


def acceptance(folder: Path) -> list[Acceptance]:
    """Share accepted per writer (model and prompt), over the last verdict on each item."""
    groups: dict[tuple[str, str], list[bool]] = {}
    for verdict in latest_verdicts(folder).values():
        groups.setdefault((verdict["generator"], verdict["writer_prompt"]), []).append(verdict["verdict"] == "accept")
    return [Acceptance(model, prompt, sum(marks), len(marks)) for (model, prompt), marks in sorted(groups.items())]


def passage_excerpt(text: str, answer: str, evidence: str = "", width: int = 600) -> str:
    """The part of a document a reviewer needs: around the cited sentence, else around the answer, else the start."""
    for needle in (evidence, answer):
        at = text.find(needle.strip()) if needle.strip() else -1
        if at >= 0:
            start = max(0, at - width // 3)
            end = min(len(text), max(at + len(needle) + width // 3, start + width))
            return ("..." if start else "") + text[start:end].strip() + ("..." if end < len(text) else "")
    return text[:width].strip() + ("..." if len(text) > width else "")
