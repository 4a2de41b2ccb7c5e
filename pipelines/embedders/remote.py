"""An embedder served over the network (an ``embedder`` entry of the project's model registry file)."""

from __future__ import annotations

import threading

import numpy as np

from pipelines.embedders.base import Embedder, Kind, l2_normalize
from pipelines.embedders.registry import ModelSpec
from pipelines.remote import PROBE_TEXTS, RemoteClient, verified


class RemoteEmbedder(Embedder):
    """Texts go to the endpoint in ``batch_size`` requests, ``concurrency`` at a time; rows come back normalised."""

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        assert spec.endpoint is not None
        self.endpoint = spec.endpoint
        self.client = RemoteClient(spec.endpoint)
        self.batch_size = spec.endpoint.batch_size * spec.endpoint.concurrency
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    def encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        prefix = self.spec.query_prefix if kind == "query" else self.spec.passage_prefix
        return l2_normalize(self.client.embed([prefix + t for t in texts]))

    def verified_fingerprint(self, store) -> str:  # type: ignore[no-untyped-def]
        """The served weights' fingerprint: the probe's vectors now, checked against those stored at first contact
        (RemoteModelChanged when they differ), once per process."""
        with self._lock:
            if self._fingerprint is None:
                # the client refuses vectors that are not finite numbers of the entry's dim; the fingerprint
                # refuses other weights
                fresh = np.asarray(self.client.embed(list(PROBE_TEXTS)), dtype=np.float64)
                self._fingerprint = verified(self.endpoint, fresh, store)
            return self._fingerprint
