"""In-memory form of an evaluation set: corpus, queries, graded relevance judgements."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Query:
    query_id: str
    text: str
    answers: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Other top-level fields of the query's line, kept as read (a failure set's `sources`, `request_ids`)."""


Qrels = dict[str, dict[str, int]]
"""query_id -> {doc_id: relevance}."""


@dataclass
class EvalSet:
    """A corpus plus one split of queries and their qrels."""

    name: str
    corpus: list[Document]
    queries: list[Query]
    qrels: Qrels
    split: str = "default"
    path: Path | None = None
    dropped_queries: int = 0
    """Queries of a living corpus (`evolve ingest`) left out because their relevant documents were removed."""

    def __post_init__(self) -> None:
        self._doc_index = {d.doc_id: d for d in self.corpus}

    def document(self, doc_id: str) -> Document:
        return self._doc_index[doc_id]

    def subset(self, query_ids: list[str] | set[str], split: str | None = None) -> "EvalSet":
        """The same corpus with only the given queries (order of the original kept)."""
        wanted = set(query_ids)
        queries = [q for q in self.queries if q.query_id in wanted]
        qrels = {q.query_id: self.qrels[q.query_id] for q in queries}
        return EvalSet(self.name, self.corpus, queries, qrels, split or self.split, self.path, self.dropped_queries)

    def sample(self, n: int, seed: int = 0) -> "EvalSet":
        """A seeded random subset of n queries (all of them when n >= the number of queries)."""
        if n >= len(self.queries):
            return self
        rng = random.Random(seed)
        chosen = rng.sample([q.query_id for q in self.queries], n)
        return self.subset(chosen, split=f"{self.split}[sample{n}@{seed}]")

    def __repr__(self) -> str:
        return (f"EvalSet({self.name!r}, split={self.split!r}, docs={len(self.corpus)}, "
                f"queries={len(self.queries)})")
