"""Synthesize an evaluation set from raw documents with an LLM: a question + reference answer per
sampled passage, kept only if it passes the checks of :mod:`evalsets.question_checks` (a question a person would
ask, not its own answer, grounded in the passage, no near duplicate) and a second LLM call finds it answerable.

The LLM is passed in (anything with ``structured(messages, schema)`` and ``model``), so this module
stays below the pipelines layer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from evalsets.answer_text import compact
from evalsets.errors import EvalSetError
from evalsets.jsonl import json_line
from evalsets.loader import read_corpus
from evalsets.model import Document
from evalsets.question_checks import CHECKS, failed_check, is_grounded, trigrams
from evalsets.review import QRELS_HEAD, read_reviews, rejected_questions, set_lines
from evalsets.text import language_of
from evalsets.writer_prompts import DEFAULT_PROMPT, PROMPTS, QA, WriterPrompt, Written

EVIDENCE_SHARE = 0.9
"""Share of the evidence's character trigrams the passage must hold when it is not copied verbatim (a model may
drop a bracket or a space)."""


class StructuredLLM(Protocol):
    model: str

    def structured(self, messages: list[dict[str, Any]], schema: type[BaseModel], **params: Any) -> Any: ...


class Answerable(BaseModel):
    reason: str
    answerable: Literal[0, 1]


@dataclass
class SynthesisReport:
    sampled: int = 0
    generated: int = 0
    invalid: int = 0
    unanswerable: int = 0
    duplicates: int = 0
    kept: int = 0
    model: str = ""
    rejected: list[dict[str, str]] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    """Items dropped by each check of :mod:`evalsets.question_checks` (each under the first it fails)."""

    def checks_line(self) -> str:
        return ", ".join(f"{count} {name}" for name, count in self.failed.items())


def corpus_language(corpus_path: Path) -> Literal["ko", "en"]:
    """The language of a corpus (folder or corpus.jsonl), from the start of its first 50 documents."""
    corpus_file = corpus_path / "corpus.jsonl" if corpus_path.is_dir() else corpus_path
    return language_of([d.text[:2000] for d in read_corpus(corpus_file)[:50]])


def sample_passage(doc: Document, rng: random.Random, max_chars: int = 1200) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc.text) if len(p.strip()) > 80] or [doc.text.strip()]
    passage = rng.choice(paragraphs)
    return passage[:max_chars]


def _question_messages(doc: Document, passage: str, prompt: WriterPrompt) -> list[dict[str, str]]:
    instruction = prompt.korean if language_of(passage) == "ko" else prompt.english
    return [{"role": "system", "content": "You write evaluation questions for a search system. Reply as JSON."},
            {"role": "user", "content": f"{instruction}\n\nTitle: {doc.title}\nPassage:\n{passage}"}]


def evidence_holds(evidence: str, answer: str, passage: str) -> bool:
    """The evidence is the passage's (verbatim after normalisation, or nearly: :data:`EVIDENCE_SHARE` of its
    character trigrams) and the answer is in the evidence: an answer the model took from nowhere fails."""
    grams = trigrams(evidence)
    text = compact(passage)
    copied = compact(evidence) in text or (
        bool(grams) and sum(g in text for g in grams) / len(grams) >= EVIDENCE_SHARE)
    return copied and is_grounded(answer, evidence)


def failed_written_check(written: Written, passage: str, kept: Iterable[set[str]] = ()) -> str | None:
    """The first check a written item fails: :func:`failed_check` on its question and answer, then, for a prompt
    that cites the passage's sentence, :func:`evidence_holds` (counted as ``ungrounded``)."""
    why = failed_check(written.question, written.answer, passage, kept)
    evidence = getattr(written, "evidence", None)
    if why is None and evidence is not None and not evidence_holds(evidence, written.answer, passage):
        return "ungrounded"
    return why


def _answerable_messages(passage: str, qa: QA) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Score 1 if the question can be answered from the passage and the given "
                                          "answer is what the passage says; else 0. Reply as JSON."},
            {"role": "user", "content": f"Passage:\n{passage}\n\nQuestion: {qa.question}\nAnswer: {qa.answer}"}]


def _one(doc: Document, passage: str, llm: StructuredLLM, check_answerable: bool, seen: list[set[str]],
         report: SynthesisReport, prompt: WriterPrompt) -> Written | str:
    """One passage's item, or why it was dropped (counted in ``report``)."""
    try:
        written = llm.structured(_question_messages(doc, passage, prompt), prompt.schema, max_tokens=500)
    except Exception as err:  # a small model that cannot produce the JSON: count it, go on
        report.invalid += 1
        report.rejected.append({"doc_id": doc.doc_id, "why": f"invalid: {err}"[:200]})
        return "invalid"
    report.generated += 1
    qa = QA(question=written.question, answer=written.answer)
    why = failed_written_check(written, passage, seen)
    if why:
        report.failed[why] += 1
        report.duplicates += why == "near duplicate"
        report.rejected.append({"doc_id": doc.doc_id, "question": qa.question, "answer": qa.answer, "why": why})
        return why
    if check_answerable:
        try:
            verdict = llm.structured(_answerable_messages(passage, qa), Answerable, max_tokens=200)
        except Exception:
            verdict = Answerable(reason="no valid verdict", answerable=0)
        if verdict.answerable != 1:
            report.unanswerable += 1
            report.rejected.append({"doc_id": doc.doc_id, "question": qa.question, "why": verdict.reason})
            return "unanswerable"
    return written


def synthesize(corpus_path: Path, out: Path, llm: StructuredLLM, n: int, seed: int = 0,
               check_answerable: bool = True, only: set[str] | None = None,
               corpus_version: str | None = None,
               progress: Callable[[int, int, str], None] | None = None,
               prompt: str = DEFAULT_PROMPT) -> SynthesisReport:
    """Questions for ``n`` sampled documents (of ``only``, when given: the new and changed documents of a living
    corpus), added to the set in ``out``. When ``out`` holds the corpus (a folder `evolve ingest` keeps), the set
    lives beside it and follows it; otherwise the corpus is copied in and the set is fixed. ``progress(done,
    total, outcome)`` after each passage ('kept', or why the item was dropped). ``prompt`` names one of
    :data:`evalsets.writer_prompts.PROMPTS`."""
    writer = PROMPTS[prompt]
    corpus_file = corpus_path / "corpus.jsonl" if corpus_path.is_dir() else corpus_path
    docs = read_corpus(corpus_file)
    if only is not None:
        docs = [d for d in docs if d.doc_id in only]
        if not docs:
            raise EvalSetError("no new or changed documents to write questions for", corpus_file)
        n = min(n, len(docs))  # one question per new or changed document at most
    rng = random.Random(seed)
    chosen = rng.sample(docs, min(n, len(docs))) if n <= len(docs) else [rng.choice(docs) for _ in range(n)]
    report = SynthesisReport(sampled=len(chosen), model=llm.model)
    old_queries, old_qrels = set_lines(out)  # a living corpus's set grows with `--since`: lines kept as written
    # a question a person rejected (`evolve evalset review`) is not written again, nor is its id given out again
    seen = [trigrams(q["text"]) for q in old_queries] + [trigrams(q) for q in rejected_questions(out)]
    taken = {q["query_id"] for q in old_queries} | {r["query_id"] for r in read_reviews(out)}
    queries, qrels = [], []
    for done, doc in enumerate(chosen, start=1):
        outcome = _one(doc, sample_passage(doc, rng), llm, check_answerable, seen, report, writer)
        if not isinstance(outcome, str):
            seen.append(trigrams(outcome.question))
            number = len(taken)
            while f"syn-{number:05d}" in taken:
                number += 1
            query_id = f"syn-{number:05d}"
            taken.add(query_id)
            metadata = {"source_doc": doc.doc_id, "generator": llm.model, "writer_prompt": writer.name}
            if getattr(outcome, "evidence", None):
                metadata["evidence"] = outcome.evidence
            if corpus_version:
                metadata["corpus_version"] = corpus_version
            queries.append({"query_id": query_id, "text": outcome.question, "answers": [outcome.answer],
                            "metadata": metadata})
            qrels.append((query_id, doc.doc_id))
        if progress:
            progress(done, len(chosen), "kept" if not isinstance(outcome, str) else outcome)
    report.kept = len(queries)
    if not queries:
        raise EvalSetError(f"no synthesized question passed the filters ({report.invalid} invalid, "
                           f"{report.unanswerable} unanswerable; checks: {report.checks_line()}) with {llm.model}",
                           corpus_path)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "corpus.jsonl").resolve() != corpus_file.resolve():
        (out / "corpus.jsonl").write_text(corpus_file.read_text(encoding="utf-8"), encoding="utf-8")
    (out / "queries.jsonl").write_text("".join(json_line(q) for q in old_queries + queries), "utf-8")
    (out / "qrels.tsv").write_text(QRELS_HEAD + "".join(row + "\n" for row in old_qrels)
                                   + "".join(f"{q}\t{d}\t1\n" for q, d in qrels), "utf-8")
    scope = f"{len(docs)} new or changed documents" if only is not None else f"`{corpus_file}`"
    line = (f"{report.kept} questions written by {llm.model} from {report.sampled} sampled passages of {scope} "
            f"(seed {seed}{f', corpus version {corpus_version}' if corpus_version else ''}); "
            f"{report.unanswerable} judged unanswerable, {report.invalid} invalid replies dropped; "
            f"dropped by the checks: {report.checks_line()}.\n")
    readme = out / "README.md"
    if old_queries and readme.is_file():
        readme.write_text(readme.read_text(encoding="utf-8") + "\n" + line, "utf-8")
    else:
        readme.write_text("# synthesized evaluation set\n\n" + line, "utf-8")
    return report
