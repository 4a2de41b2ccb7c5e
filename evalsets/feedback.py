"""The feedback store: every served request and every user rating, in one DuckDB file.

DuckDB lets a single process hold a file for writing and locks everyone else out, readers too.
So the server owns the file for its whole life and writes each event before it answers (an
acknowledged event is committed), and it exports a Parquet snapshot that other processes read
(written to a temp name, then renamed: readers never see half a file). When no server runs, the
CLI opens the file directly.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS requests (
        request_id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, query VARCHAR NOT NULL,
        config_version VARCHAR, config_name VARCHAR, results JSON, answer VARCHAR, latency_ms DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS feedback (
        feedback_id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, request_id VARCHAR, query VARCHAR,
        rating VARCHAR NOT NULL CHECK (rating IN ('good', 'bad')), comment VARCHAR, correct_doc_id VARCHAR,
        config_version VARCHAR, source VARCHAR NOT NULL)""",
]
TABLES = ("requests", "feedback")


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class StoreLocked(RuntimeError):
    """Another process (the server) holds the feedback database."""


@dataclass
class FeedbackEvent:
    rating: str
    request_id: str | None = None
    query: str | None = None
    comment: str | None = None
    correct_doc_id: str | None = None
    config_version: str | None = None
    source: str = "api"


class FeedbackStore:
    """Read-write owner of the feedback database (the server, or a CLI command when no server runs)."""

    def __init__(self, path: Path | str):
        import duckdb

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = duckdb.connect(str(self.path))
        except duckdb.IOException as err:
            raise StoreLocked(f"{self.path} is held by another process (is `evolve serve` running?): {err}") from None
        for statement in SCHEMA:
            self._db.execute(statement)
        self._lock = threading.Lock()
        self.dirty = True

    @property
    def snapshot_dir(self) -> Path:
        return self.path.parent / "feedback-snapshot"

    def record_request(self, kind: str, query: str, results: list[dict[str, Any]], config_version: str | None,
                       config_name: str | None, latency_ms: float, answer: str | None = None) -> str:
        request_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [request_id, utc_now(), kind, query, config_version, config_name,
                              json.dumps(results, ensure_ascii=False), answer, latency_ms])
            self.dirty = True
        return request_id

    def request(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM requests WHERE request_id = ?", [request_id])
            row = cursor.fetchone()
            return dict(zip([d[0] for d in cursor.description], row)) if row else None

    def record_feedback(self, event: FeedbackEvent) -> str:
        feedback_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [feedback_id, utc_now(), event.request_id, event.query, event.rating, event.comment,
                              event.correct_doc_id, event.config_version, event.source])
            self.dirty = True
        return feedback_id

    def count(self, table: str) -> int:
        assert table in TABLES
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def export_snapshot(self) -> Path:
        """Write each table to Parquet under a temp name, then rename into place (atomic per file)."""
        folder = self.snapshot_dir
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            for table in TABLES:
                tmp = folder / f".{table}.{uuid.uuid4().hex}.parquet"
                self._db.execute(f"COPY {table} TO '{tmp}' (FORMAT parquet)")
                os.replace(tmp, folder / f"{table}.parquet")
            self.dirty = False
        return folder

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(sql, params or [])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SnapshotExporter(threading.Thread):
    """Re-exports the snapshot every ``interval`` seconds when something changed."""

    def __init__(self, store: FeedbackStore, interval: float = 5.0):
        super().__init__(daemon=True, name="feedback-snapshot")
        self.store, self.interval = store, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            if self.store.dirty:
                self.store.export_snapshot()

    def stop(self) -> None:
        self._stop_event.set()


def read_snapshot(folder: Path, sql: str) -> list[dict[str, Any]]:
    """Query the Parquet snapshot with an in-memory DuckDB (tables `requests`, `feedback`)."""
    import duckdb

    connection = duckdb.connect()
    try:
        for table in TABLES:
            path = folder / f"{table}.parquet"
            if not path.exists():
                raise FileNotFoundError(f"no snapshot of {table} in {folder}")
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
        cursor = connection.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        connection.close()

