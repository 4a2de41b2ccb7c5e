"""Training examples for evolve's own models, from three sources, and the guard that keeps evaluation out of them.

Sources:

- ``train-split``: the ``train`` split of an evaluation set (SciFact's ``queries.train.jsonl``);
- ``synthesized``: a set written by ``evolve evalset synthesize`` (questions the judge found answerable);
- ``feedback``: a bad rating with the right document gives (query, that document, the returned documents as hard
  negatives); a good rating gives (query, the document rated, else the top one returned).

The :class:`LeakGuard` holds every query that may ever score a decision: all splits but ``train`` of every
evaluation set it is given (a set without a train split is held back in folds, or split tune/held-back, so none of
its labelled queries may train). It matches by query id *and* by normalised text, drops what matches before
training, and :meth:`LeakGuard.check` refuses a training run that still contains one.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalsets import Document, EvalSet, available_splits, load_evalset, normalise_query
from pipelines.chunking import WholeChunking, make_chunker

SOURCES = ("train-split", "synthesized", "feedback")


@dataclass(frozen=True)
class TrainingExample:
    """One query with the documents that answer it and, once mined, documents that look right but are not."""

    query_id: str
    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    source: str = "train-split"


class LeakError(ValueError):
    """A training run would see a query that scores decisions."""


class LeakGuard:
    """The queries training must never see, by id and by normalised text."""

    def __init__(self, ids: Iterable[str] = (), texts: Iterable[str] = (), origin: Sequence[str] = ()):
        self.ids = set(ids)
        self.texts = {normalise_query(t) for t in texts}
        self.origin = list(origin)
        """What was guarded ("scifact/default", ...), for the training summary."""

    @classmethod
    def for_evalsets(cls, paths: Iterable[Path | str]) -> "LeakGuard":
        """Every split but ``train`` of each evaluation set folder."""
        ids, texts, origin = set(), set(), []
        for path in paths:
            for split in available_splits(path):
                if split == "train":
                    continue
                evalset = load_evalset(path, split)
                ids |= {_qualified(evalset, q.query_id) for q in evalset.queries} | {q.query_id for q in evalset.queries}
                texts |= {q.text for q in evalset.queries}
                origin.append(f"{Path(path).name}/{split} ({len(evalset.queries)} queries)")
        return cls(ids, texts, origin)

    def leaks(self, example: TrainingExample) -> bool:
        return example.query_id in self.ids or normalise_query(example.query) in self.texts

    def filter(self, examples: Sequence[TrainingExample]) -> tuple[list[TrainingExample], int]:
        """(examples that may train, how many were dropped as evaluation queries)."""
        kept = [e for e in examples if not self.leaks(e)]
        return kept, len(examples) - len(kept)

    def check(self, examples: Iterable[TrainingExample]) -> None:
        """Raises LeakError naming the first evaluation queries found among ``examples``."""
        leaked = [e for e in examples if self.leaks(e)]
        if leaked:
            shown = ", ".join(f"{e.query_id} ({e.source}): {e.query[:60]!r}" for e in leaked[:3])
            raise LeakError(f"{len(leaked)} training example(s) are evaluation queries (held-back or test splits of "
                            f"{', '.join(self.origin) or 'the guarded sets'}): {shown}")


def _qualified(evalset: EvalSet, query_id: str) -> str:
    return f"{evalset.name}:{query_id}"


def from_split(path: Path | str, split: str = "train", source: str = "train-split") -> tuple[list[TrainingExample],
                                                                                               list[Document]]:
    """Examples from one labelled split (positives: documents with relevance > 0) and the set's corpus."""
    evalset = load_evalset(path, split)
    examples = [TrainingExample(_qualified(evalset, q.query_id), q.text,
                                tuple(d for d, rel in evalset.qrels.get(q.query_id, {}).items() if rel > 0),
                                source=source)
                for q in evalset.queries]
    return [e for e in examples if e.positives], evalset.corpus


def from_synthesized(path: Path | str) -> tuple[list[TrainingExample], list[Document]]:
    """A synthesized set (``evolve evalset synthesize``): each question and the passage it was written from."""
    return from_split(path, "default", source="synthesized")


def from_feedback(rows: Iterable[dict[str, Any]], corpus_ids: set[str]) -> tuple[list[TrainingExample], int]:
    """Examples from feedback rows (``feedback`` joined with the rated request's ``results``), and how many rows had
    no usable document (a bad rating without a marked document, or documents no longer in the corpus)."""
    examples, unusable = [], 0
    for row in rows:
        results = row.get("results") or []
        if isinstance(results, str):
            results = json.loads(results)
        returned = [str(r["doc_id"]) for r in results if isinstance(r, dict) and "doc_id" in r]
        marked = row.get("correct_doc_id")
        if row.get("rating") == "bad":
            if not marked or marked not in corpus_ids:
                unusable += 1
                continue
            positive, negatives = marked, tuple(dict.fromkeys(d for d in returned if d != marked and d in corpus_ids))
        else:
            positive = marked or (returned[0] if returned else None)
            negatives = ()
            if not positive or positive not in corpus_ids:
                unusable += 1
                continue
        query_id = f"feedback:{row.get('feedback_id') or hashlib.sha256(str(row).encode()).hexdigest()[:12]}"
        examples.append(TrainingExample(query_id, str(row.get("query") or ""), (positive,), negatives, "feedback"))
    return [e for e in examples if e.query.strip()], unusable


class Searcher(Protocol):
    def search(self, queries: list[str]) -> list[list[tuple[str, float]]]: ...


def mine_negatives(examples: list[TrainingExample], searcher: Searcher, per_query: int = 7,
                   skip_top: int = 0) -> list[TrainingExample]:
    """Hard negatives from a ranking (the champion's): its top documents that are not positives, after any the
    example already has. ``skip_top`` leaves out the very top ranks (often unlabelled positives)."""
    rankings = searcher.search([e.query for e in examples]) if examples else []
    mined = []
    for example, ranking in zip(examples, rankings):
        have = list(example.negatives)
        for doc_id, _ in ranking[skip_top:]:
            if len(have) >= per_query:
                break
            if doc_id not in example.positives and doc_id not in have:
                have.append(doc_id)
        mined.append(TrainingExample(example.query_id, example.query, example.positives, tuple(have[:per_query]),
                                     example.source))
    return mined


def validation_split(examples: Sequence[TrainingExample], share: float, seed: int = 0, minimum: int = 20
                     ) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """(examples to train on, validation examples) where no validation positive is a positive of any other example.

    A random split would reward a model for learning which documents get cited (a validation query whose answer is
    also a train query's answer); cutting only examples whose positives are their own mirrors queries about
    documents training never saw. ``share`` of all examples are taken, at most as many as qualify; fewer than
    ``minimum`` gives no validation (``([...all], [])``): its scores would be noise.
    """
    counts = Counter(d for e in examples for d in e.positives)
    own = [e for e in examples if all(counts[d] == 1 for d in e.positives)]
    random.Random(seed).shuffle(own)
    chosen = own[:int(share * len(examples))]
    if len(chosen) < minimum:
        return list(examples), []
    held = {e.query_id for e in chosen}
    return [e for e in examples if e.query_id not in held], sorted(chosen, key=lambda e: e.query_id)


def passage_text(doc: Document) -> str:
    """A document as training sees it: exactly the text the ``whole`` chunker indexes (title, newline, body), so a
    base model's cached passage vectors serve training too."""
    return _WHOLE.chunk(doc)[0].text


_WHOLE = make_chunker(WholeChunking())


@dataclass
class TrainingData:
    """Examples ready to train on, the documents they name, and where they came from."""

    examples: list[TrainingExample]
    documents: dict[str, Document]
    dropped_leaks: int = 0
    notes: list[str] = field(default_factory=list)

    def text(self, doc_id: str) -> str:
        return passage_text(self.documents[doc_id])

    def summary(self) -> dict[str, Any]:
        """What the manifest and MLflow record: counts per source, negatives, what the guard dropped."""
        return {"examples": len(self.examples), "per_source": dict(Counter(e.source for e in self.examples)),
                "with_negatives": sum(1 for e in self.examples if e.negatives),
                "negatives": sum(len(e.negatives) for e in self.examples),
                "dropped_as_evaluation_queries": self.dropped_leaks, "notes": self.notes,
                "sha256": self.sha256()}

    def sha256(self) -> str:
        """The data's identity (resumable checkpoints belong to one dataset)."""
        digest = hashlib.sha256()
        for e in self.examples:
            digest.update(json.dumps([e.query_id, e.query, e.positives, e.negatives, e.source],
                                     ensure_ascii=False).encode("utf-8"))
        return digest.hexdigest()


def assemble(parts: Iterable[tuple[list[TrainingExample], list[Document]]], guard: LeakGuard,
             notes: Iterable[str] = ()) -> TrainingData:
    """Every source's examples, with evaluation queries dropped and the result checked once more."""
    examples: list[TrainingExample] = []
    documents: dict[str, Document] = {}
    for part_examples, corpus in parts:
        examples += part_examples
        documents.update((d.doc_id, d) for d in corpus)
    kept, dropped = guard.filter(examples)
    guard.check(kept)
    kept = [e for e in kept if all(p in documents for p in e.positives)]
    return TrainingData(kept, documents, dropped, list(notes))
