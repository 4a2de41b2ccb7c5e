"""Per-query retrieval scores kept by what they depend on, so a pipeline scored once is never scored again.

A query's row (metrics, top 10, relevant documents) is a pure function of the pipeline's retrieval behaviour
(the config without its name and its generation settings), the corpus, the query's text, its relevance
judgements and the metrics asked for. A row is stored under the sha256 of exactly those; a study that samples
a pipeline already scored on these queries (the same study, a later iteration, another fold's study) reads its
rows back instead of building and searching. Pipelines that use a served model are not kept: the server's
weights can change under the same name.

SQLite (one file, several processes: the loop and `evolve worker` processes of one project write it together).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalsets import Qrels, Query
from pipelines import GenerationConfig, ModelCatalog, PipelineConfig

SCHEMA = "CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, row TEXT NOT NULL, search_ms REAL NOT NULL)"
VERSION = "1"
"""Bumped when a metric's definition changes: rows of an older version are never read again."""


def retrieval_address(config: PipelineConfig) -> str:
    """What a query's ranking depends on in the config: everything but its name and its generation settings."""
    return config.model_copy(update={"generation": GenerationConfig()}).behaviour_sha256()


def reusable(config: PipelineConfig, catalog: ModelCatalog) -> bool:
    """False for pipelines whose scores may change under the same config (a served model of ``catalog``)."""
    served = catalog.served()
    return not any(model in served for model in config.models())


class ScoreCache:
    """Rows by (retrieval address, corpus fingerprint, query, its judgements, metrics)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
            self._local.connection = connection
        return connection

    @staticmethod
    def key(address: str, corpus: str, query: Query, qrels: Qrels, metrics: Sequence[str]) -> str:
        judged = sorted((doc, grade) for doc, grade in qrels.get(query.query_id, {}).items())
        data = [VERSION, address, corpus, query.query_id, query.text, judged, list(metrics)]
        return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode("utf-8")).hexdigest()

    def get(self, address: str, corpus: str, queries: Sequence[Query], qrels: Qrels,
            metrics: Sequence[str]) -> dict[str, tuple[dict[str, Any], float]]:
        """query id -> (row, search ms) for the queries whose rows are kept."""
        keys = {self.key(address, corpus, q, qrels, metrics): q.query_id for q in queries}
        found: dict[str, tuple[dict[str, Any], float]] = {}
        listed = list(keys)
        for start in range(0, len(listed), 500):  # SQLite's limit on bound parameters
            part = listed[start:start + 500]
            rows = self._connection().execute(
                f"SELECT key, row, search_ms FROM scores WHERE key IN ({','.join('?' * len(part))})", part)
            for key, row, ms in rows:
                found[keys[key]] = (json.loads(row), ms)
        return found

    def put(self, address: str, corpus: str, queries: Sequence[Query], qrels: Qrels, metrics: Sequence[str],
            rows: Sequence[dict[str, Any]], search_ms: float) -> None:
        """Keep ``rows`` (one per query, in order); ``search_ms``: the mean search time per query they took."""
        values = [(self.key(address, corpus, q, qrels, metrics), json.dumps(row, ensure_ascii=False), search_ms)
                  for q, row in zip(queries, rows, strict=True)]
        connection = self._connection()
        with connection:
            connection.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", values)

    def __len__(self) -> int:
        return self._connection().execute("SELECT count(*) FROM scores").fetchone()[0]
