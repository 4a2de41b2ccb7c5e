"""HTTP to a model server: the request and response shapes of each protocol, retries with backoff, a bound on
requests in flight, and errors that name the endpoint.

A request that fails for a reason that may pass (a refused connection, a timeout, 429, 5xx) is retried
``retries`` times, ``backoff_s`` doubling each time; anything else (a 4xx: a wrong model id, a bad key) fails at
once. Either way a :class:`RemoteError` names the endpoint and the last cause, and the caller gets all results
or that error, never part of them: a trial that loses its server fails instead of scoring half a corpus.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from pipelines.remote.registry import RemoteModel

RETRIED_STATUS = {408, 425, 429, 500, 502, 503, 504}


class RemoteError(RuntimeError):
    """A model server that stayed unreachable or refused the request."""


class RemoteClient:
    """One endpoint's client; thread-safe (a server's requests may share it)."""

    def __init__(self, model: RemoteModel):
        import httpx

        self.model = model
        self._http = httpx.Client(timeout=model.timeout_s,
                                  limits=httpx.Limits(max_connections=model.concurrency,
                                                      max_keepalive_connections=model.concurrency))
        self._pool = ThreadPoolExecutor(model.concurrency, thread_name_prefix=f"remote-{model.name}")
        self._lock = threading.Lock()
        self.requests = 0
        """Requests sent (retries included): what the tests and the benchmark count."""
        self.seconds = 0.0
        self.down: tuple[float, str] | None = None
        """(when, why) the endpoint last stayed unreachable through every retry: for ``cooldown_s`` after that,
        calls fail at once instead of waiting through the retries again (a study moves on to other models)."""

    def post(self, route: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` as JSON to ``base_url + route``; the decoded JSON, or RemoteError after the retries."""
        import httpx

        url = f"{self.model.base_url}{route}"
        if self.down and time.monotonic() - self.down[0] < self.model.cooldown_s:
            raise RemoteError(f"{self.model.endpoint}: still down ({self.down[1]}, {time.monotonic() - self.down[0]:.0f} "
                              f"s ago; tried again after {self.model.cooldown_s:g} s)")
        key = self.model.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        cause = "no attempt made"
        for attempt in range(self.model.retries + 1):
            if attempt:
                delay = min(30.0, self.model.backoff_s * 2 ** (attempt - 1))
                time.sleep(delay * (0.75 + 0.5 * random.random()))
            started = time.perf_counter()
            try:
                response = self._http.post(url, json=payload, headers=headers)
            except httpx.TransportError as err:
                cause = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                continue
            finally:
                with self._lock:
                    self.requests += 1
                    self.seconds += time.perf_counter() - started
            if response.status_code == 200:
                self.down = None
                try:
                    return response.json()
                except ValueError:
                    raise RemoteError(f"{self.model.endpoint}: {route} answered with something not JSON: "
                                      f"{response.text[:200]!r}") from None
            cause = f"HTTP {response.status_code}: {response.text[:300]}"
            too_long = any(w in response.text.lower() for w in ("too large", "too long", "maximum context",
                                                                "exceeds", "max_model_len"))
            if response.status_code not in RETRIED_STATUS or too_long:
                hint = " (an input longer than the server takes: set truncate_chars of this entry)" if too_long else ""
                raise RemoteError(f"{self.model.endpoint}: {route} refused the request ({cause}){hint}")
        self.down = (time.monotonic(), f"{route} failed {self.model.retries + 1} times; last: {cause}")
        raise RemoteError(f"{self.model.endpoint}: {self.down[1]}")

    def _batched(self, items: list[Any], run: Any) -> list[Any]:
        """``run`` on batches of ``batch_size``, ``concurrency`` at a time, results in order (all or an error)."""
        size = self.model.batch_size
        batches = [items[i:i + size] for i in range(0, len(items), size)]
        out: list[Any] = []
        for part in self._pool.map(run, batches):
            out += part
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        """One vector per text, in order (not normalised: the embedder does that)."""
        if not texts:
            return np.zeros((0, self.model.dim or 0), dtype=np.float32)
        rows = self._batched(texts, self._embed_batch)
        return np.asarray(rows, dtype=np.float32)

    def _fit(self, texts: list[str]) -> list[str]:
        limit = self.model.truncate_chars
        return [t[:limit] for t in texts] if limit else texts

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        protocol, model, texts = self.model.protocol, self.model.model, self._fit(texts)
        if protocol == "openai":
            extra = {"truncate_prompt_tokens": self.model.truncate_tokens} if self.model.truncate_tokens else {}
            body = self.post("/embeddings", {"model": model, "input": texts, **extra})
            rows = [d["embedding"] for d in sorted(_field(body, "data", self), key=lambda d: d["index"])]
        elif protocol == "ollama":
            rows = _field(self.post("/api/embed", {"model": model, "input": texts}), "embeddings", self)
        else:  # tei
            rows = self.post("/embed", {"inputs": texts, "truncate": True})
        if len(rows) != len(texts):
            raise RemoteError(f"{self.model.endpoint}: {len(rows)} vectors for {len(texts)} texts")
        return rows

    def rerank(self, query: str, documents: list[str]) -> np.ndarray:
        """The relevance of each document to ``query``, in the documents' order."""
        if not documents:
            return np.zeros(0)
        scores = self._batched(documents, lambda part: self._rerank_batch(query, part))
        return np.asarray(scores, dtype=np.float64)

    def _rerank_batch(self, query: str, documents: list[str]) -> list[float]:
        protocol, model, documents = self.model.protocol, self.model.model, self._fit(documents)
        if protocol == "rerank":
            body = self.post("/rerank", {"model": model, "query": query, "documents": documents,
                                         "top_n": len(documents), "return_documents": False})
            pairs = [(r["index"], r["relevance_score"]) for r in _field(body, "results", self)]
        elif protocol == "score":
            body = self.post("/score", {"model": model, "text_1": query, "text_2": documents})
            pairs = [(r["index"], r["score"]) for r in _field(body, "data", self)]
        else:  # tei
            body = self.post("/rerank", {"query": query, "texts": documents, "raw_scores": True, "truncate": True})
            pairs = [(r["index"], r["score"]) for r in body]
        scores = dict(pairs)
        if sorted(scores) != list(range(len(documents))):
            raise RemoteError(f"{self.model.endpoint}: scores for {len(scores)} of {len(documents)} documents")
        return [float(scores[i]) for i in range(len(documents))]

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()


def _field(body: Any, name: str, client: RemoteClient) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise RemoteError(f"{client.model.endpoint}: the answer has no {name!r} field "
                          f"(is protocol {client.model.protocol!r} right?): {str(body)[:200]}")
    return body[name]
