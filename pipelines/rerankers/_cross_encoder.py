"""A sentence-transformers cross-encoder re-scoring (query, candidate) pairs.

It serves GPU nodes that have bge-reranker / ms-marco weights as a local directory or a cached hub
name (no cross-encoder ships inside a PyPI package, see MODELS.md), and the rerankers evolve trains itself
(``trained:reranker-...``, see pipelines.trained).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from pipelines.device import torch_device
from pipelines.rerankers.base import RERANKERS, Embedders, Reranker, RerankerConfig
from pipelines.catalog import ModelCatalog, catalog_or_env
from pipelines.trained import is_trained


class CrossEncoderRerankerConfig(RerankerConfig):
    kind: Literal["cross-encoder"] = "cross-encoder"
    model_kind = "cross-encoder"


@RERANKERS.register
class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder from a local directory or a hub name already cached."""

    config = CrossEncoderRerankerConfig
    uses_catalog = True

    def __init__(self, model: str, blend: float = 0.0, batch_size: int = 32, catalog: ModelCatalog | None = None):
        super().__init__(blend)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        from pipelines.embedders.base import load_without_code

        max_length = None  # the tokenizer's own limit (512 for MiniLM)
        if is_trained(model):
            trained = catalog_or_env(catalog).trained().get(model)
            location = str(trained.weights)
            # score with the text length it was trained on: longer inputs cost quadratically and it never saw them
            max_length = trained.manifest.get("settings", {}).get("max_seq_length")
        else:
            location = str(Path(model).expanduser()) if Path(model).expanduser().exists() else model
        self.model = load_without_code(lambda where: CrossEncoder(where, device=torch_device(),
                                                                  max_length=max_length), location)
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, config: RerankerConfig, embedders: Embedders,  # type: ignore[override]
                    catalog: ModelCatalog | None = None) -> "CrossEncoderReranker":
        return cls(config.model or "", config.blend, catalog=catalog)

    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        pairs = [(q, t) for q, texts in zip(queries, candidates) for t in texts]
        flat = np.asarray(self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False),
                          dtype=np.float64) if pairs else np.zeros(0)
        if flat.ndim > 1:  # a head with several labels: take the last one as 'relevant'
            flat = flat[:, -1]
        out, start = [], 0
        for texts in candidates:
            out.append(flat[start:start + len(texts)])
            start += len(texts)
        return out
