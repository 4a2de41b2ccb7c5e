"""Ranked candidate lists as two aligned arrays: chunk indices and scores, best first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ScoredLists:
    """Per query: ``ids[q]`` chunk indices (-1 = empty slot) and ``scores[q]``, descending."""

    ids: np.ndarray
    scores: np.ndarray

    def row(self, q: int) -> list[tuple[int, float]]:
        return [(int(i), float(s)) for i, s in zip(self.ids[q], self.scores[q]) if i >= 0]

    def __len__(self) -> int:
        return len(self.ids)


def top_k_rows(matrix: np.ndarray, k: int) -> ScoredLists:
    """Top-k columns of each row of a dense score matrix, sorted descending."""
    k = min(k, matrix.shape[1])
    if matrix.shape[0] == 0 or k == 0:
        return ScoredLists(np.zeros((matrix.shape[0], 0), dtype=np.int64), np.zeros((matrix.shape[0], 0)))
    part = np.argpartition(-matrix, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(matrix, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return ScoredLists(np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1))


def from_rows(rows: list[list[tuple[int, float]]]) -> ScoredLists:
    """Pack variable-length (index, score) rows into padded arrays."""
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), -1, dtype=np.int64)
    scores = np.full((len(rows), width), -np.inf, dtype=np.float64)
    for q, row in enumerate(rows):
        row = sorted(row, key=lambda pair: -pair[1])
        for j, (i, s) in enumerate(row):
            ids[q, j], scores[q, j] = i, s
    return ScoredLists(ids, scores)
