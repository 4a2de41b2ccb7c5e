"""The feedback store: every served request and every user rating, in one DuckDB file.

DuckDB lets a single process hold a file for writing and locks everyone else out, readers too.
So the server owns the file for its whole life and writes each event before it answers (an
acknowledged event is committed), and it exports a Parquet snapshot that other processes read
(written to a temp name, then renamed: readers never see half a file). When no server runs, the
CLI opens the file directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
SOURCES = ("api", "import")
"""Where a feedback event came in: POST /feedback (a rating of a request this store served), or an import."""
MAX_TEXT = 4000
MAX_ID = 200


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def normalise_query(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


class StoreLocked(RuntimeError):
    """Another process (the server) holds the feedback database."""


class FeedbackRefused(ValueError):
    """An event this store will not take (invalid, or naming a request or document it does not know)."""


class UnknownRequest(FeedbackRefused):
    """The event names a request_id this store never served."""


class FeedbackEvent(BaseModel):
    """One rating: the only shape feedback has, whether it comes from POST /feedback, POST /feedback/import
    or `evolve feedback import FILE`. Strict: no coercion (``"k": true`` is not a string), no unknown fields.

    ``event_id`` makes storing idempotent: given by the client (its own id for the event), or derived
    as the sha256 of the event's canonical content, so the same line imported twice is stored once.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    rating: Literal["good", "bad"]
    request_id: str | None = Field(None, min_length=1, max_length=MAX_ID)
    query: str | None = Field(None, max_length=MAX_TEXT)
    comment: str | None = Field(None, max_length=MAX_TEXT)
    correct_doc_id: str | None = Field(None, min_length=1, max_length=MAX_ID)
    config_version: str | None = Field(None, min_length=1, max_length=MAX_ID)
    event_id: str | None = Field(None, min_length=1, max_length=MAX_ID)

    @model_validator(mode="after")
    def _query_or_request(self) -> "FeedbackEvent":
        if self.request_id is None and not (self.query and self.query.strip()):
            raise ValueError("needs a non-empty 'query' or the 'request_id' of a served request")
        if self.event_id is None:
            content = self.model_dump(exclude={"event_id"}, exclude_none=True)
            canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            self.event_id = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return self


def describe(err: ValidationError) -> str:
    """A pydantic error as one line: 'field: message; field: message'."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in err.errors())


def parse_event(data: Any) -> FeedbackEvent:
    """Validate one event (a decoded JSON object); raises FeedbackRefused with a one-line reason."""
    try:
        return FeedbackEvent.model_validate(data)
    except ValidationError as err:
        raise FeedbackRefused(describe(err)) from None


def snapshot_folder(db_path: Path) -> Path:
    """Where the store at ``db_path`` exports its Parquet snapshot (readers compute it, never take it from a reply)."""
    return Path(db_path).parent / "feedback-snapshot"


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
        return snapshot_folder(self.path)

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

    def vouch(self, event: FeedbackEvent, doc_ids: set[str] | None = None) -> FeedbackEvent:
        """The event as it will be stored, or FeedbackRefused: a request_id must be one this store served (its
        query and config version are taken from there and may not be contradicted), and a correct_doc_id
        must be in ``doc_ids`` when they are given (the served corpus)."""
        if event.request_id is not None:
            served = self.request(event.request_id)
            if served is None:
                raise UnknownRequest(f"unknown request_id {event.request_id!r}: this store served no such request")
            if event.query is not None and normalise_query(event.query) != normalise_query(served["query"]):
                raise FeedbackRefused(f"query {event.query[:80]!r} is not the query of request {event.request_id!r}")
            if event.config_version is not None and event.config_version != served["config_version"]:
                raise FeedbackRefused(f"config_version {event.config_version!r} is not the one that served request "
                                      f"{event.request_id!r} ({served['config_version']!r})")
            event = event.model_copy(update={"query": served["query"], "config_version": served["config_version"]})
        if doc_ids is not None and event.correct_doc_id is not None and event.correct_doc_id not in doc_ids:
            raise FeedbackRefused(f"correct_doc_id {event.correct_doc_id!r} is not a document of this corpus")
        return event

    def vouch_all(self, events: Sequence[Any], doc_ids: set[str] | None = None
                  ) -> tuple[list[FeedbackEvent], list[tuple[int, str]]]:
        """Validate (:func:`parse_event`) and vouch for every event of a batch: (events as they will be stored,
        [(index, why refused)]). A batch is stored only when nothing was refused."""
        vouched, refused = [], []
        for index, event in enumerate(events):
            try:
                vouched.append(self.vouch(parse_event(event), doc_ids))
            except FeedbackRefused as err:
                refused.append((index, str(err)))
        return vouched, refused

    def record_feedback(self, events: list[FeedbackEvent], source: str) -> list[bool]:
        """Store a batch in ONE transaction (all or nothing); for each event, whether it was new (an event_id
        already stored is left as it is: storing the same events twice changes nothing)."""
        if source not in SOURCES:
            raise ValueError(f"feedback source must be one of {SOURCES}, not {source!r}")
        new = []
        with self._lock:
            self._db.execute("BEGIN TRANSACTION")
            try:
                for event in events:
                    inserted = self._db.execute(
                        "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
                        "RETURNING feedback_id",
                        [event.event_id, utc_now(), event.request_id, event.query, event.rating, event.comment,
                         event.correct_doc_id, event.config_version, source]).fetchall()
                    new.append(bool(inserted))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.dirty = self.dirty or any(new)
        return new

    def count(self, table: str) -> int:
        assert table in TABLES
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def export_snapshot(self) -> Path:
        """Write each table to Parquet under a temp name, then rename into place (atomic per file).

        Paths go to DuckDB through its relation API, never spliced into SQL text."""
        folder = self.snapshot_dir
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            reader = self._db.cursor()  # its own handle: a result left open on the main one does not block it
            try:
                for table in TABLES:
                    tmp = folder / f".{table}.{uuid.uuid4().hex}.parquet"
                    reader.table(table).write_parquet(str(tmp))
                    os.replace(tmp, folder / f"{table}.parquet")
            finally:
                reader.close()
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
    """Query the Parquet snapshot with an in-memory DuckDB (tables `requests`, `feedback`).

    The files are opened through DuckDB's relation API: a path never becomes part of SQL text, so a
    folder name with quotes in it is only ever a (missing) file name."""
    import duckdb

    connection = duckdb.connect()
    try:
        for table in TABLES:
            path = Path(folder) / f"{table}.parquet"
            if not path.is_file():
                raise FileNotFoundError(f"no snapshot of {table} in {folder}")
            connection.read_parquet(str(path)).create_view(table)
        cursor = connection.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        connection.close()
