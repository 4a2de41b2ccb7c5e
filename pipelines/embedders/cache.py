"""On-disk embedding cache keyed by (model fingerprint, query/passage, sha256 of the text).

SQLite in WAL mode: several trial processes may read and fill it at once, and every finished
batch is committed, so a crash loses at most the batch in flight.

Only finite vectors (and scores) go in: a model's output is checked before it is stored, the store refuses
anything else, and rows found non-finite or of another length (written by an older version, or a damaged file)
are dropped when read, with a warning, and computed again.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.embedders.base import Embedder, EmbeddingError, Kind, checked_vectors
from pipelines.embedders.loading import load_embedder
from pipelines.embedders.registry import ModelSpec

log = logging.getLogger("evolve.cache")
ProgressCallback = Callable[[int, int], None]
"""Called with (texts embedded so far, texts to embed in total)."""


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    seconds_embedding: float = 0.0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 1.0


class EmbeddingStore:
    """The SQLite file: get/put float32 vectors by key."""

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, kind TEXT NOT NULL, "
               "key BLOB NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, kind, key)) WITHOUT ROWID")
    _SCORES = ("CREATE TABLE IF NOT EXISTS scores (model TEXT NOT NULL, key BLOB NOT NULL, score REAL NOT NULL, "
               "PRIMARY KEY (model, key)) WITHOUT ROWID")
    """Reranker scores of (query, passage) pairs under a model fingerprint (remote rerankers)."""
    _PROBES = ("CREATE TABLE IF NOT EXISTS probes (identity TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
               "shape TEXT NOT NULL, probe BLOB NOT NULL, taken TEXT NOT NULL)")
    """A remote model's probe outputs at first contact (pipelines.remote.fingerprint)."""
    _RATES = ("CREATE TABLE IF NOT EXISTS rates (model TEXT NOT NULL, kind TEXT NOT NULL, texts INTEGER NOT NULL, "
              "chars INTEGER NOT NULL, seconds REAL NOT NULL, PRIMARY KEY (model, kind))")
    """What embedding cost on this machine, per model: what a cost table predicts a cold embedding from."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=120, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for schema in (self._SCHEMA, self._SCORES, self._PROBES, self._RATES):
            self._db.execute(schema)
        self._db.commit()

    def get_many(self, model: str, kind: str, keys: list[bytes], dim: int | None = None) -> dict[bytes, np.ndarray]:
        """The stored vectors of ``keys`` (those found). Rows that are not finite, or not ``dim`` long (when given;
        else not as long as most), are deleted with a warning instead: the caller computes them again."""
        found: dict[bytes, np.ndarray] = {}
        bad: list[bytes] = []
        with self._lock:
            for start in range(0, len(keys), 500):
                batch = keys[start:start + 500]
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT key, vector FROM embeddings WHERE model=? AND kind=? AND key IN ({marks})",
                    [model, kind, *batch]).fetchall()
                if not rows:
                    continue
                sizes = [len(blob) for _, blob in rows]
                width = 4 * dim if dim else max(set(sizes), key=sizes.count)
                usable = [(key, blob) for key, blob in rows if len(blob) == width and width]
                bad += [key for key, blob in rows if len(blob) != width or not width]
                if usable:
                    matrix = np.frombuffer(b"".join(blob for _, blob in usable), dtype=np.float32)
                    matrix = matrix.reshape(len(usable), width // 4)
                    ok = np.isfinite(matrix).all(axis=1)
                    found.update((key, matrix[i]) for i, (key, _) in enumerate(usable) if ok[i])
                    bad += [key for i, (key, _) in enumerate(usable) if not ok[i]]
            if bad:
                self._db.executemany("DELETE FROM embeddings WHERE model=? AND kind=? AND key=?",
                                     [(model, kind, key) for key in bad])
                self._db.commit()
        if bad:
            log.warning("embedding cache %s: dropped %d %s vector(s) of %s that were not finite or not %s long; they "
                        "are computed again", self.path, len(bad), kind, model, f"{dim}" if dim else "as long as the rest")
        return found

    def put_many(self, model: str, kind: str, keys: list[bytes], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(keys) and not np.isfinite(vectors).all():
            raise EmbeddingError(f"{model}: refusing to cache non-finite vectors")
        rows = [(model, kind, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes())
                for key, vec in zip(keys, vectors)]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
            self._db.commit()

    def get_scores(self, model: str, keys: list[bytes]) -> dict[bytes, float]:
        """The stored scores of ``keys`` (those found); non-finite ones are deleted with a warning instead."""
        found: dict[bytes, float] = {}
        bad: list[bytes] = []
        with self._lock:
            for start in range(0, len(keys), 500):
                batch = keys[start:start + 500]
                rows = self._db.execute(f"SELECT key, score FROM scores WHERE model=? AND key IN "
                                        f"({','.join('?' * len(batch))})", [model, *batch])
                for key, score in rows:
                    if isinstance(score, (int, float)) and np.isfinite(score):
                        found[key] = float(score)
                    else:
                        bad.append(key)
            if bad:
                self._db.executemany("DELETE FROM scores WHERE model=? AND key=?", [(model, key) for key in bad])
                self._db.commit()
        if bad:
            log.warning("embedding cache %s: dropped %d score(s) of %s that were not finite; they are computed again",
                        self.path, len(bad), model)
        return found

    def put_scores(self, model: str, keys: list[bytes], scores: list[float]) -> None:
        if not np.isfinite(np.asarray(scores, dtype=np.float64)).all():
            raise EmbeddingError(f"{model}: refusing to cache non-finite scores")
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)",
                                 [(model, k, float(s)) for k, s in zip(keys, scores)])
            self._db.commit()

    def probe(self, identity: str) -> tuple[str, np.ndarray] | None:
        """(fingerprint, probe outputs) stored for a remote model identity, or None at first contact."""
        with self._lock:
            row = self._db.execute("SELECT fingerprint, shape, probe FROM probes WHERE identity=?",
                                   [identity]).fetchone()
        if row is None:
            return None
        shape = tuple(int(n) for n in row[1].split("x") if n)
        return row[0], np.frombuffer(row[2], dtype=np.float64).reshape(shape)

    def put_probe(self, identity: str, fingerprint: str, probe: np.ndarray) -> str:
        """Stores the first probe of ``identity``; returns the fingerprint that holds (a concurrent first one)."""
        from datetime import datetime, timezone

        probe = np.ascontiguousarray(probe, dtype=np.float64)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO probes VALUES (?, ?, ?, ?, ?)",
                             [identity, fingerprint, "x".join(map(str, probe.shape)), probe.tobytes(),
                              datetime.now(timezone.utc).isoformat(timespec="seconds")])
            self._db.commit()
            return self._db.execute("SELECT fingerprint FROM probes WHERE identity=?", [identity]).fetchone()[0]

    def drop_probe(self, identity: str) -> None:
        """Forgets a stored probe (one that cannot be compared with: not finite)."""
        with self._lock:
            self._db.execute("DELETE FROM probes WHERE identity=?", [identity])
            self._db.commit()

    def record_rate(self, model: str, kind: str, texts: int, chars: int, seconds: float) -> None:
        """Adds one embedding call's work to the model's running totals."""
        with self._lock:
            self._db.execute("INSERT INTO rates VALUES (?, ?, ?, ?, ?) ON CONFLICT (model, kind) DO UPDATE SET "
                             "texts = texts + excluded.texts, chars = chars + excluded.chars, "
                             "seconds = seconds + excluded.seconds", [model, kind, texts, chars, seconds])
            self._db.commit()

    def rate(self, model: str, kind: str = "passage") -> tuple[float, float] | None:
        """(seconds per text, seconds per 1,000 characters) measured for a model here, or None if never run."""
        with self._lock:
            row = self._db.execute("SELECT texts, chars, seconds FROM rates WHERE model=? AND kind=?",
                                   [model, kind]).fetchone()
        if row is None or not row[0]:
            return None
        return row[2] / row[0], 1000 * row[2] / max(row[1], 1)

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return self._db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
            return self._db.execute("SELECT count(*) FROM embeddings WHERE model=?", [model]).fetchone()[0]

    def close(self) -> None:
        self._db.close()


class WorkAbandoned(RuntimeError):
    """Embedding stopped between batches because the caller's time is up (the batches done stay cached)."""


class CachedEmbedder:
    """An embedder behind the store: only texts never seen under this model are embedded.

    The model itself loads on the first cache miss, so a fully cached run never pays for it.
    """

    def __init__(self, spec: ModelSpec, store: EmbeddingStore, loader: Callable[[ModelSpec], Embedder] = load_embedder):
        self.spec = spec
        self.store = store
        self.stats = CacheStats()
        self._loader = loader
        self._embedder: Embedder | None = None
        self._cache_model: str | None = None
        self.stop_check: Callable[[], bool] | None = None
        """Asked between batches; True abandons the call with WorkAbandoned (time budgets)."""

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._loader(self.spec)
        return self._embedder

    @property
    def dim(self) -> int | None:
        return self.spec.dim

    @property
    def cache_model(self) -> str:
        """The model part of this embedder's cache keys: the spec's fingerprint; for a served model, with the
        fingerprint of the weights answering now (probed once per process; a swap is refused there)."""
        if self._cache_model is None:
            verify = getattr(self.embedder, "verified_fingerprint", None) if self.spec.loader == "remote" else None
            self._cache_model = f"{self.spec.fingerprint}|{verify(self.store)}" if verify else self.spec.fingerprint
        return self._cache_model

    def embed(self, texts: list[str], kind: Kind, progress: ProgressCallback | None = None) -> np.ndarray:
        import time

        keys = [text_key(t) for t in texts]
        model = self.cache_model
        found = self.store.get_many(model, kind, list(dict.fromkeys(keys)), self.dim)
        todo: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in found:
                todo.setdefault(key, text)
        self.stats.misses += len(todo)  # unique texts that must be embedded now
        self.stats.hits += len(texts) - len(todo)  # served from the store (or a duplicate in this call)
        pending = list(todo.items())
        step = self.embedder.batch_size * 4 if pending else 1
        started = time.perf_counter()
        if progress:
            progress(0, len(pending))
        for start in range(0, len(pending), step):
            if self.stop_check is not None and self.stop_check():
                raise WorkAbandoned(f"embedding with {self.spec.name} abandoned after {start} of {len(pending)} texts")
            batch = pending[start:start + step]
            vectors = checked_vectors(self.embedder.encode([text for _, text in batch], kind), len(batch),
                                      self.dim or _width(found), self.spec.name)
            self.store.put_many(model, kind, [key for key, _ in batch], vectors)
            found.update((key, vec) for (key, _), vec in zip(batch, vectors))
            if progress:
                progress(min(start + step, len(pending)), len(pending))
        self.stats.seconds_embedding += time.perf_counter() - started
        if pending:
            self.store.record_rate(self.spec.name, kind, len(pending), sum(len(t) for _, t in pending),
                                   time.perf_counter() - started)
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.vstack([found[key] for key in keys]).astype(np.float32, copy=False)


def _width(found: dict[bytes, np.ndarray]) -> int | None:
    """The length of the vectors already found (what new ones of the same model must match), None if none."""
    return len(next(iter(found.values()))) if found else None
