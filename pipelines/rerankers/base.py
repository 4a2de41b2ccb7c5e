"""Rerankers re-score the top-n fused candidates of each query with a stronger (slower) model.

A reranker kind is one module in this package: a :class:`RerankerConfig` subclass fixing ``kind`` (and
``model_kind`` when it loads a model), and a :class:`Reranker` subclass naming it as ``config``, registered
with ``@RERANKERS.register``. Registered, the kind is accepted by the pipeline config, offered by search
spaces and the proposer, and built by :func:`make_reranker`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from pipelines.catalog import ModelCatalog
from pipelines.embedders.registry import checked_model_name
from pipelines.registry import ConfigRegistry, KindConfig

if TYPE_CHECKING:
    from pipelines.embedders import CachedEmbedder

Embedders = Callable[[str], "CachedEmbedder"]
"""Model name -> the process's cached embedder for it (what an embedding-based reranker scores with)."""


def min_max(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min() if len(values) else 0.0
    return (values - values.min()) / span if span > 0 else np.ones_like(values)


class RerankerConfig(KindConfig):
    """The second stage: ``kind`` names the reranker; every kind carries the same fields (its content address)."""

    model: str | None = None
    top_n: int = Field(50, ge=1, le=1000, description="candidates re-scored per query")
    blend: float = Field(0.0, ge=0.0, le=1.0, description="weight of the first-stage score kept")

    model_kind: ClassVar[str | None] = None
    """What ``model`` names: 'embedding' (a registry model, a local directory or a cached hub name, like a dense
    model), another word for other weights, or None when the kind takes no model."""

    _model = field_validator("model")(checked_model_name)

    @model_validator(mode="after")
    def _model_given(self) -> "RerankerConfig":
        if self.model_kind and not self.model:
            raise ValueError(f"reranker kind {self.kind!r} needs a model")
        return self

    def models(self) -> list[str]:
        return [self.model] if self.model_kind and self.model else []


class NoRerankerConfig(RerankerConfig):
    """No second stage: the first-stage order is final."""

    kind: Literal["none"] = "none"
    tuned = ()


class Reranker(ABC):
    """Scores (query, chunk text) pairs; :meth:`rerank` blends them with the first-stage scores.

    The contract of a kind: ``config`` is its :class:`RerankerConfig` subclass; :meth:`from_config` builds the
    reranker once per config in a process (models load there); :meth:`score` may be called from several threads
    of a server at once, so it keeps no per-call state on ``self``.
    """

    config: ClassVar[type[RerankerConfig]]

    def __init__(self, blend: float = 0.0):
        self.blend = blend
        """Weight of the (min-max normalised) first-stage score in the final score, 0 = reranker only."""

    uses_doc_ids: ClassVar[bool] = False
    """True: :meth:`rerank` also takes ``doc_ids`` (the candidates' document ids, one list per query)."""

    uses_catalog: ClassVar[bool] = False
    """True: :meth:`from_config` also takes ``catalog`` (keyword), the :class:`ModelCatalog` its model resolves in
    (a trained or a served model)."""

    uses_store: ClassVar[bool] = False
    """True: :meth:`from_config` also takes ``store``, the process's ``EmbeddingStore`` (``get_scores`` /
    ``put_scores`` cache pair scores, ``probe`` / ``put_probe`` keep a served model's fingerprint)."""

    @classmethod
    @abstractmethod
    def from_config(cls, config: RerankerConfig, embedders: Embedders) -> "Reranker":
        """The reranker for ``config``; ``embedders`` gives the process's cached embedder for a model name."""

    @abstractmethod
    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        """Relevance of each candidate text to its query, one array per query."""

    def recalled(self, queries: list[str]) -> list[list[str]]:
        """Documents (by id) to re-score although the first stage did not return them, per query; asked only of
        kinds that set ``uses_doc_ids`` (a memory knows answers a first stage can miss). None by default."""
        return [[] for _ in queries]

    def rerank(self, queries: list[str], candidates: list[list[str]],
               first_stage: list[np.ndarray]) -> list[np.ndarray]:
        scores = self.score(queries, candidates)
        if self.blend == 0:
            return scores
        return [(1 - self.blend) * min_max(s) + self.blend * min_max(f) if len(s) else s
                for s, f in zip(scores, first_stage)]


RERANKERS: ConfigRegistry[Reranker] = ConfigRegistry("reranker kind", RerankerConfig, none=NoRerankerConfig)
"""Reranker kind -> reranker class ('none' is the absence of one); each kind's module registers itself."""


def make_reranker(config: RerankerConfig, embedders: Embedders, store: Any = None,
                  catalog: ModelCatalog | None = None) -> Reranker | None:
    """The reranker a config names, None for kind 'none' (an unknown kind is refused with the known ones named).
    ``store``: the process's embedding store, given to kinds that set ``uses_store`` (they cache scores there);
    ``catalog``: where model names resolve, given to kinds that set ``uses_catalog``."""
    kind = RERANKERS.get(config.kind) if config.kind != "none" else None
    args = (embedders, store) if getattr(kind, "uses_store", False) else (embedders,)
    return RERANKERS.make(config, *args, **({"catalog": catalog} if getattr(kind, "uses_catalog", False) else {}))
