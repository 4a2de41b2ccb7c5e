"""A reranker served over the network: a ``reranker`` entry of the project's model registry file (vLLM's
``/v1/rerank`` or ``/score``, llama.cpp's ``/v1/rerank``, TEI's ``/rerank``, Jina/Cohere-style APIs).

Scores are cached by (the served weights' fingerprint, query, passage) in the embedding store, so a trial that
re-ranks what another trial already sent costs no request; the fingerprint is the endpoint's scores for a fixed
probe, checked once per process (other weights behind the name are refused, see ``pipelines.remote``).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Literal

import numpy as np

from pipelines.catalog import ModelCatalog, catalog_or_env
from pipelines.remote import PROBE_QUERY, PROBE_TEXTS, RemoteClient, verified
from pipelines.rerankers.base import RERANKERS, Embedders, Reranker, RerankerConfig


class RemoteRerankerConfig(RerankerConfig):
    kind: Literal["remote"] = "remote"
    model_kind = "remote-reranker"


def pair_key(query: str, passage: str) -> bytes:
    return hashlib.sha256(query.encode("utf-8") + b"\x00" + passage.encode("utf-8")).digest()


@RERANKERS.register
class RemoteReranker(Reranker):
    """Each query's candidates go to the endpoint in requests of ``batch_size`` documents; cached pairs are not
    sent again. Any request that fails after its retries fails the whole call (no partial scores)."""

    config = RemoteRerankerConfig
    uses_store = True
    uses_catalog = True

    def __init__(self, name: str, store: Any = None, blend: float = 0.0, catalog: ModelCatalog | None = None):
        super().__init__(blend)
        entry = catalog_or_env(catalog).served_model(name)
        if entry is None or entry.kind != "reranker":
            raise KeyError(f"reranker kind 'remote' needs a reranker of the model registry file, not {name!r}"
                           + ("" if entry is None else f" (a {entry.kind})"))
        self.entry = entry
        self.client = RemoteClient(entry)
        self.store = store
        self._model_key: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: RerankerConfig, embedders: Embedders,  # type: ignore[override]
                    store: Any = None, catalog: ModelCatalog | None = None) -> "RemoteReranker":
        return cls(config.model or "", store, config.blend, catalog)

    def model_key(self) -> str:
        """Cache key of this endpoint's scores: its name, model id, revision and the probe's fingerprint."""
        with self._lock:
            if self._model_key is None:
                fresh = self.client.rerank(PROBE_QUERY, list(PROBE_TEXTS))
                self._model_key = f"{self.entry.cache_name}|{verified(self.entry, fresh, self.store)}"
            return self._model_key

    def score(self, queries: list[str], candidates: list[list[str]]) -> list[np.ndarray]:
        model = self.model_key()
        out = []
        for query, texts in zip(queries, candidates):
            keys = [pair_key(query, t) for t in texts]
            known = self.store.get_scores(model, keys) if self.store is not None else {}
            todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in known))
            if todo:
                fresh = self.client.rerank(query, todo)
                new_keys = [pair_key(query, t) for t in todo]
                known.update(zip(new_keys, fresh.tolist()))
                if self.store is not None:
                    self.store.put_scores(model, new_keys, fresh.tolist())
            out.append(np.asarray([known[k] for k in keys], dtype=np.float64))
        return out
