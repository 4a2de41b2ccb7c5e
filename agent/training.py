"""Where a project's training data comes from, for `evolve train` and the loop's train move alike.

Sources are training splits of evaluation sets, sets written by `evolve evalset synthesize`, and the feedback
store (ratings of served requests, with the corpus they were about). Every split but 'train' of every evaluation
set named is guarded: its queries never train (experiments.training.LeakGuard).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalsets import Document
    from experiments.training import TrainingData, TrainingExample
    from pipelines import Components, PipelineConfig, Progress

TRAINING_SQL = """SELECT f.feedback_id, f.rating, f.correct_doc_id, coalesce(f.query, r.query) AS query, r.results
FROM feedback f LEFT JOIN requests r ON f.request_id = r.request_id ORDER BY f.ts"""


@dataclass
class TrainingSources:
    train_splits: list[Path] = field(default_factory=list)
    """Evaluation sets whose 'train' split trains."""
    synthesized: list[Path] = field(default_factory=list)
    feedback_corpus: Path | None = None
    """The corpus served feedback is about (an evaluation set folder or a corpus.jsonl); None: no feedback."""
    guard: list[Path] = field(default_factory=list)
    """More evaluation sets whose queries must never train."""

    def __bool__(self) -> bool:
        return bool(self.train_splits or self.synthesized or self.feedback_corpus)

    def describe(self) -> str:
        parts = [f"train split of {p.name}" for p in self.train_splits] + [f"synthesized {p.name}"
                                                                           for p in self.synthesized]
        return ", ".join(parts + (["feedback"] if self.feedback_corpus else [])) or "none"


def gather(project_dir: Path, sources: TrainingSources) -> TrainingData:
    """The guarded ``TrainingData`` of ``sources`` (no hard negatives yet). Raises EvalSetError for an unreadable
    set and LeakError if a guarded query got through."""
    from experiments.training import LeakGuard, assemble, from_split, from_synthesized

    parts: list[tuple[list[TrainingExample], list[Document]]] = [from_split(path, "train") for path in sources.train_splits]
    parts += [from_synthesized(path) for path in sources.synthesized]
    notes: list[str] = []
    if sources.feedback_corpus is not None:
        examples, docs, note = feedback_part(project_dir, sources.feedback_corpus)
        parts.append((examples, docs))
        notes.append(note)
    guarded = [*sources.train_splits, *sources.guard]
    if sources.feedback_corpus is not None and sources.feedback_corpus.is_dir():
        guarded.append(sources.feedback_corpus)
    guard = LeakGuard.for_evalsets(dict.fromkeys(p for p in guarded if p.is_dir()))
    return assemble(parts, guard, notes)


def feedback_part(project_dir: Path, corpus: Path) -> tuple[list[TrainingExample], list[Document], str]:
    """(examples, the corpus's documents, a note with the counts) from the project's feedback store."""
    from agent.server import corpus_file, feedback_rows, running_server
    from evalsets import read_corpus
    from experiments.training import from_feedback

    docs = read_corpus(corpus_file(corpus))
    rows = feedback_rows(project_dir, running_server(project_dir), None, TRAINING_SQL, missing_ok=True)
    examples, unusable = from_feedback(rows, {d.doc_id for d in docs})
    return examples, docs, f"feedback: {len(rows)} ratings, {len(examples)} usable, {unusable} without a known document"


def mine(data: TrainingData, miner: PipelineConfig, components: Components, per_query: int,
         progress: Progress | None = None) -> TrainingData:
    """``data`` with hard negatives: ``miner``'s (the champion's) top documents that are not positives."""
    from experiments.training import mine_negatives
    from pipelines import Retriever

    searcher = Retriever(miner, components).build(list(data.documents.values()), progress)
    data.examples = mine_negatives(data.examples, searcher, per_query=per_query)
    return data
