"""Re-scoring by a memory of past questions (a trained model of kind ``memory``, see experiments.training).

A candidate document answered a remembered question whose vector is within ``threshold`` cosine of the query's:
it gains ``(similarity - threshold) / (1 - threshold)`` (the closest such question counts), blended with the
first-stage score. Documents no close question names keep their first-stage order, so queries about documents
nobody asked for before lose nothing (measured on SciFact, bench/training/memory.py). A remembered answer the first
stage did not return at all is added to the candidates (its first chunk, at the lowest first-stage score).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from pipelines.rerankers.base import RERANKERS, Embedders, Reranker, RerankerConfig, min_max
from pipelines.catalog import ModelCatalog, catalog_or_env

VECTORS = "queries.npy"
ANSWERS = "answers.json"
CALIBRATION = "calibration.json"
FALLBACK_THRESHOLD = 0.8
"""For a memory written without a calibration, or from too few questions to calibrate (SciFact's MiniLM validation
cuts chose it)."""


def memory_calibration(model: str, catalog: ModelCatalog | None = None) -> dict:
    """The calibration a trained memory of ``catalog`` was written with (its ``threshold`` and how it was
    measured)."""
    path = catalog_or_env(catalog).trained().get(model).weights / CALIBRATION
    if not path.is_file():
        return {"threshold": FALLBACK_THRESHOLD, "skipped": "not calibrated"}
    return json.loads(path.read_text(encoding="utf-8"))


def save_memory(folder: Path, vectors: np.ndarray, answers: list[list[str]], calibration: dict | None = None
                ) -> None:
    """Writes a memory: unit query vectors (one row per remembered question), each one's document ids, and the
    calibration its threshold comes from (see experiments.training._memory.calibrate)."""
    if len(vectors) != len(answers):
        raise ValueError(f"{len(vectors)} query vectors for {len(answers)} answer lists")
    folder.mkdir(parents=True, exist_ok=True)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(folder / VECTORS, (vectors / np.where(norms > 0, norms, 1)).astype(np.float32))
    (folder / ANSWERS).write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    if calibration is not None:
        (folder / CALIBRATION).write_text(json.dumps(calibration, indent=1), encoding="utf-8")


class MemoryRerankerConfig(RerankerConfig):
    kind: Literal["memory"] = "memory"
    model_kind = "memory"
    threshold: float | None = Field(None, ge=0.0, lt=1.0, description=(
        "cosine a remembered question must pass to count; None: the memory's own, calibrated on held-out training "
        "questions when it was trained (embedders differ: 0.77-0.84 for MiniLM on SciFact, 0.97 for e5-small on "
        "KorQuAD)"))
    blend: float = Field(0.3, ge=0.0, le=1.0, description="weight of the first-stage score kept")
    top_n: int = Field(100, ge=1, le=1000, description="candidates re-scored per query")
    tuned = ("top_n", "blend", "threshold")


@RERANKERS.register
class MemoryReranker(Reranker):
    """Lifts the documents that answered questions close to this one. Blend 0.3 was chosen on three random 80/20
    cuts of SciFact's train split: with threshold 0.8 the highest held-out nDCG@10 (0.835 against 0.731) that kept
    the queries about uncited documents level (0.760 both), and the calibrated threshold (0.77-0.84 on those cuts)
    within 0.002 of it (0.833 / 0.760). On KorQuAD with e5-small the calibration gives 0.97 and a memory of past
    questions adds 0.001 where a threshold of 0.8 costs 0.054 (bench/results/training-memory.md)."""

    config = MemoryRerankerConfig
    uses_doc_ids = True
    uses_catalog = True

    def __init__(self, model: str, embedder, threshold: float | None = None,  # type: ignore[no-untyped-def]
                 blend: float = 0.3, catalog: ModelCatalog | None = None):
        super().__init__(blend)
        weights = catalog_or_env(catalog).trained().get(model).weights
        self.vectors = np.load(weights / VECTORS)
        # tuples in stored order, not sets: string-set order changes with the process's hash seed, and the order
        # documents are recalled in breaks ties between equally lifted ones
        self.answers = [tuple(a) for a in json.loads((weights / ANSWERS).read_text(encoding="utf-8"))]
        self.embedder = embedder
        self.calibration = memory_calibration(model, catalog)
        self.threshold = threshold if threshold is not None else float(self.calibration["threshold"])
        # the retriever asks recalled() and then rerank() for the same queries: lifts are computed once for both
        # (a pure function of the queries, so the cache is safe to share between a server's threads)
        self._lift_of = lru_cache(maxsize=4)(self._lift)

    @classmethod
    def from_config(cls, config: RerankerConfig, embedders: Embedders,  # type: ignore[override]
                    catalog: ModelCatalog | None = None) -> "MemoryReranker":
        base = catalog_or_env(catalog).trained().get(config.model or "").base
        return cls(config.model or "", embedders(base), getattr(config, "threshold", None), config.blend, catalog)

    RECALLED = 20
    """At most this many remembered answers are added to a query's candidates when the first stage missed them."""

    def _lift(self, queries: tuple[str, ...]) -> list[dict[str, float]]:
        """Per query, document -> lift in (0, 1]: from the closest remembered question that it answered."""
        vectors = np.asarray(self.embedder.embed(list(queries), "query"), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        out = []
        for similarities in (vectors @ self.vectors.T if len(self.vectors) else np.zeros((len(queries), 0))):
            lift: dict[str, float] = {}
            for row in np.flatnonzero(similarities > self.threshold):
                gain = (float(similarities[row]) - self.threshold) / (1.0 - self.threshold)
                for doc in self.answers[row]:
                    lift[doc] = max(lift.get(doc, 0.0), gain)
            out.append(lift)
        return out

    def lifts(self, queries: list[str], doc_ids: list[list[str]]) -> list[np.ndarray]:
        """Each candidate's lift in [0, 1] (0: no remembered question within the threshold answered it)."""
        return [np.array([lift.get(d, 0.0) for d in ids])
                for lift, ids in zip(self._lift_of(tuple(queries)), doc_ids)]

    def recalled(self, queries: list[str]) -> list[list[str]]:
        """The answers of remembered questions within the threshold, most lifted first (then by id): re-scored even
        when the first stage did not return them."""
        return [sorted(lift, key=lambda d: (-lift[d], d))[:self.RECALLED] for lift in self._lift_of(tuple(queries))]

    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        raise TypeError("a memory scores documents by id: the retriever calls rerank with doc_ids")

    def rerank(self, queries: list[str], candidates: list[list[str]], first_stage: list[np.ndarray],
               doc_ids: list[list[str]] | None = None) -> list[np.ndarray]:
        """``blend`` x the min-max first-stage score + (1 - ``blend``) x the lift; the lift is not rescaled, so a
        query no remembered question is close to keeps its order."""
        if doc_ids is None:
            raise TypeError("a memory reranker needs the candidates' doc_ids")
        return [self.blend * min_max(f) + (1 - self.blend) * lift if len(f) else f
                for f, lift in zip(first_stage, self.lifts(queries, doc_ids))]
