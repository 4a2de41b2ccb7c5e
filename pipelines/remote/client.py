"""HTTP to a model server: the request and response shapes of each protocol, retries with backoff, a bound on
requests in flight, and errors that name the endpoint.

A request that fails for a reason that may pass (a refused connection, a timeout, 429, 5xx) is retried
``retries`` times, ``backoff_s`` doubling each time; anything else (a 4xx: a wrong model id, a bad key) fails at
once. Either way a :class:`RemoteError` names the endpoint and the last cause, and the caller gets all results
or that error, never part of them: a trial that loses its server fails instead of scoring half a corpus.

Every request is bounded: ``timeout_s`` covers it whole (connect, send, the reply's head and its last byte: a
server that trickles its answer is cut off at the deadline, not waited for read by read), and a reply longer than
``reply_limit`` bytes is cut off and refused. What comes back is checked before anyone uses or caches it: vectors
are lists of finite numbers, one per text, all of the entry's ``dim``; scores are finite numbers, one per document.
A server's own text (an error body) is trimmed and its secrets redacted before it goes into a message.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from pipelines.http_deadline import bounded_client, within
from pipelines.remote.redact import redact
from pipelines.remote.registry import RemoteModel

RETRIED_STATUS = {408, 425, 429, 500, 502, 503, 504}
ERROR_BODY_BYTES = 64 * 1024
"""The most of an error reply read (its first 300 characters, redacted, go into the message)."""
_NUMBER = (float, int)


class RemoteError(RuntimeError):
    """A model server that stayed unreachable, refused the request, or answered with something unusable."""


class _TooLarge(Exception):
    def __init__(self, size: int, declared: bool):
        super().__init__(size)
        self.size, self.declared = size, declared


class RemoteClient:
    """One endpoint's client; thread-safe (a server's requests may share it)."""

    def __init__(self, model: RemoteModel):
        self.model = model
        self._http = bounded_client(model.timeout_s, model.concurrency)
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
        headers = {"Accept-Encoding": "identity", **({"Authorization": f"Bearer {key}"} if key else {})}
        cause = "no attempt made"
        for attempt in range(self.model.retries + 1):
            if attempt:
                delay = min(30.0, self.model.backoff_s * 2 ** (attempt - 1))
                time.sleep(delay * (0.75 + 0.5 * random.random()))
            started = time.perf_counter()
            try:
                status, body = self._exchange(url, payload, headers)
            except httpx.TransportError as err:
                if time.perf_counter() - started >= self.model.timeout_s:
                    cause = f"no whole reply within timeout_s {self.model.timeout_s:g} s (connect to last byte)"
                else:
                    cause = redact(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__, key)
                continue
            except _TooLarge as err:
                self.down = None
                said = (f"announced a reply of {err.size:,} bytes" if err.declared else
                        f"answered with more than {self.model.reply_limit:,} bytes (cut off there)")
                raise RemoteError(f"{self.model.endpoint}: {route} {said}; this entry reads at most "
                                  f"{self.model.reply_limit:,} (max_reply_mb; the default fits batch_size vectors "
                                  f"of dim)") from None
            finally:
                with self._lock:
                    self.requests += 1
                    self.seconds += time.perf_counter() - started
            if status == 200:
                self.down = None
                try:
                    return json.loads(body)
                except (ValueError, RecursionError):
                    raise RemoteError(f"{self.model.endpoint}: {route} answered with something not JSON: "
                                      f"{redact(body[:1000], key, limit=200)!r}") from None
            text = redact(body, key)
            cause = f"HTTP {status}: {text}"
            too_long = any(w in text.lower() for w in ("too large", "too long", "maximum context", "exceeds",
                                                       "max_model_len"))
            if status not in RETRIED_STATUS or too_long:
                hint = " (an input longer than the server takes: set truncate_chars of this entry)" if too_long else ""
                raise RemoteError(f"{self.model.endpoint}: {route} refused the request ({cause}){hint}")
        self.down = (time.monotonic(), f"{route} failed {self.model.retries + 1} times; last: {cause}")
        raise RemoteError(f"{self.model.endpoint}: {self.down[1]}")

    def _exchange(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
        """One request under the deadline: (status, the reply's bytes: all of a 200's up to ``reply_limit``, else
        the first ``ERROR_BODY_BYTES``). httpx.TransportError (a timeout at the deadline included) or _TooLarge."""
        import httpx

        with within(self.model.timeout_s) as deadline, \
                self._http.stream("POST", url, json=payload, headers=headers) as response:
            ok = response.status_code == 200
            limit = self.model.reply_limit if ok else ERROR_BODY_BYTES
            declared = response.headers.get("content-length", "")
            if ok and declared.isdigit() and int(declared) > limit:
                raise _TooLarge(int(declared), True)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    if ok:
                        raise _TooLarge(size, False)
                    chunks.append(chunk[:limit - size])
                    break
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the request's deadline has passed")
            return response.status_code, b"".join(chunks)

    def _batched(self, items: list[Any], run: Any) -> list[Any]:
        """``run`` on batches of ``batch_size``, ``concurrency`` at a time, their results in order (all or an
        error)."""
        size = self.model.batch_size
        batches = [items[i:i + size] for i in range(0, len(items), size)]
        return list(self._pool.map(run, batches))

    def embed(self, texts: list[str]) -> np.ndarray:
        """One vector per text, in order (not normalised: the embedder does that): float32, finite, all of one
        length (the entry's ``dim`` when it gives one), or RemoteError."""
        if not texts:
            return np.zeros((0, self.model.dim or 0), dtype=np.float32)
        parts = self._batched(texts, self._embed_batch)
        widths = sorted({part.shape[1] for part in parts})
        if len(widths) > 1:
            raise RemoteError(f"{self.model.endpoint}: vectors of different lengths across requests ({widths})")
        return np.vstack(parts)

    def _fit(self, texts: list[str]) -> list[str]:
        limit = self.model.truncate_chars
        return [t[:limit] for t in texts] if limit else texts

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        protocol, model, texts = self.model.protocol, self.model.model, self._fit(texts)
        if protocol == "openai":
            extra = {"truncate_prompt_tokens": self.model.truncate_tokens} if self.model.truncate_tokens else {}
            route = "/embeddings"
            body = self.post(route, {"model": model, "input": texts, **extra})
            rows = self._reading(route, lambda: _in_order(
                [(d["index"], d["embedding"]) for d in _field(body, "data", self)], len(texts), "vectors"))
        elif protocol == "ollama":
            route = "/api/embed"
            rows = _field(self.post(route, {"model": model, "input": texts}), "embeddings", self)
        else:  # tei
            route = "/embed"
            rows = self.post(route, {"inputs": texts, "truncate": True})
        return self._reading(route, lambda: self._vectors(rows, len(texts)))

    def _vectors(self, rows: Any, count: int) -> np.ndarray:
        if not isinstance(rows, list) or len(rows) != count:
            got = f"{len(rows)} vectors" if isinstance(rows, list) else f"a {type(rows).__name__}"
            raise _Unreadable(f"{got} for {count} texts")
        for row in rows:
            if not isinstance(row, list) or not row or not all(type(x) in _NUMBER for x in row):
                raise _Unreadable(f"a vector that is not a list of numbers: {str(row)[:80]}")
        widths = sorted({len(row) for row in rows})
        if self.model.dim and widths != [self.model.dim]:
            raise RemoteError(f"{self.model.endpoint} serves {widths[0] if len(widths) == 1 else widths}-dimensional "
                              f"vectors; its registry entry says dim {self.model.dim}")
        if len(widths) > 1:
            raise _Unreadable(f"rows of different lengths ({', '.join(map(str, widths[:5]))})")
        with np.errstate(over="ignore"):  # beyond float32 becomes infinite: refused below
            matrix = np.asarray(rows, dtype=np.float64).astype(np.float32)
        bad = int(np.count_nonzero(~np.isfinite(matrix).all(axis=1)))
        if bad:
            raise RemoteError(f"{self.model.endpoint}: the server returned non-finite values (NaN or infinity, or "
                              f"beyond float32) in {bad} of {count} vectors; none of them is used or cached")
        return matrix

    def _reading(self, route: str, read: Any) -> Any:
        """``read()``: what it returns, or a RemoteError naming the endpoint for an answer of the wrong shape."""
        try:
            return read()
        except (_Unreadable, KeyError, IndexError, TypeError, ValueError, OverflowError, AttributeError) as err:
            why = str(err) if isinstance(err, _Unreadable) else f"{type(err).__name__}: {err}"
            raise RemoteError(f"{self.model.endpoint}: {route} answered in a shape evolve cannot read "
                              f"({redact(why, limit=200)}; is protocol {self.model.protocol!r} right?)") from None

    def rerank(self, query: str, documents: list[str]) -> np.ndarray:
        """The relevance of each document to ``query``, in the documents' order: finite, one each, or RemoteError."""
        if not documents:
            return np.zeros(0)
        parts = self._batched(documents, lambda part: self._rerank_batch(query, part))
        return np.concatenate(parts)

    def _rerank_batch(self, query: str, documents: list[str]) -> np.ndarray:
        protocol, model, documents = self.model.protocol, self.model.model, self._fit(documents)
        if protocol == "rerank":
            route = "/rerank"
            body = self.post(route, {"model": model, "query": query, "documents": documents,
                                     "top_n": len(documents), "return_documents": False})
            pairs = self._reading(route, lambda: [(r["index"], r["relevance_score"])
                                                  for r in _field(body, "results", self)])
        elif protocol == "score":
            route = "/score"
            body = self.post(route, {"model": model, "text_1": query, "text_2": documents})
            pairs = self._reading(route, lambda: [(r["index"], r["score"]) for r in _field(body, "data", self)])
        else:  # tei
            route = "/rerank"
            body = self.post(route, {"query": query, "texts": documents, "raw_scores": True, "truncate": True})
            pairs = self._reading(route, lambda: [(r["index"], r["score"]) for r in body])
        out = self._reading(route, lambda: _numbers(_in_order(pairs, len(documents), "scores")))
        bad = int(np.count_nonzero(~np.isfinite(out)))
        if bad:
            raise RemoteError(f"{self.model.endpoint}: the server returned non-finite values (NaN or infinity) for "
                              f"{bad} of {len(documents)} documents; none of them is used or cached")
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()


class _Unreadable(Exception):
    """An answer of the wrong shape (what is wrong with it); RemoteClient._reading names the endpoint."""


def _numbers(values: list[Any]) -> np.ndarray:
    """``values`` as float64 when each is a JSON number (not a string, a bool or null; non-finite is checked
    after)."""
    for value in values:
        if type(value) not in _NUMBER:
            raise _Unreadable(f"a score that is not a number: {str(value)[:80]!r}")
    return np.asarray(values, dtype=np.float64)


def _in_order(pairs: list[tuple[Any, Any]], count: int, what: str) -> list[Any]:
    """The values of (index, value) pairs in index order: each index of 0..count-1 exactly once."""
    if len(pairs) != count or sorted(i for i, _ in pairs if type(i) is int) != list(range(count)):
        raise _Unreadable(f"{what} for indices {sorted(str(i) for i, _ in pairs)[:8]} of {count} inputs "
                          f"(each of 0..{count - 1} once)")
    return [value for _, value in sorted(pairs, key=lambda pair: pair[0])]


def _field(body: Any, name: str, client: RemoteClient) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise RemoteError(f"{client.model.endpoint}: the answer has no {name!r} field "
                          f"(is protocol {client.model.protocol!r} right?): {redact(str(body)[:1000], limit=200)}")
    return body[name]
