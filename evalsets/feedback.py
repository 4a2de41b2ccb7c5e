"""The feedback store: every served request and every user rating, in one DuckDB file.

DuckDB lets a single process hold a file for writing and locks everyone else out, readers too.
So the server owns the file for its whole life and writes each event before it answers (an
acknowledged event is committed), and it exports a Parquet snapshot that other processes read.
When no server runs, the CLI opens the file directly.

The snapshot is append-only: each export writes only the rows added since the last one (a part file
per table, up to a rowid watermark; the store only ever inserts), then swaps in a manifest naming
every part. Readers read the manifest, then the parts it names, so they never see half an export.
The store's lock is held only to copy the new rows into a temporary table, never for the Parquet
write, so requests wait milliseconds, not the time it takes to write the history. Parts of equal
size are merged eight at a time (off the lock), so a reader opens a few files, not one per export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS requests (
        request_id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, query VARCHAR NOT NULL,
        config_version VARCHAR, config_name VARCHAR, results JSON, answer VARCHAR, latency_ms DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS feedback (
        feedback_id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, request_id VARCHAR, query VARCHAR,
        rating VARCHAR NOT NULL CHECK (rating IN ('good', 'bad')), comment VARCHAR, correct_doc_id VARCHAR,
        config_version VARCHAR, source VARCHAR NOT NULL)""",
    "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS used_doc_ids JSON",
    """CREATE TABLE IF NOT EXISTS traffic (
        request_id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, mode VARCHAR NOT NULL, candidate_version VARCHAR NOT NULL,
        k INTEGER NOT NULL, champion JSON NOT NULL, candidate JSON, shown JSON, cited JSON, status VARCHAR NOT NULL)""",
]
TABLES = ("requests", "feedback", "traffic")
"""``traffic``: a candidate's part in a served request (`evolve serve --shadow/--interleave`), one row a request:
both rankings (document ids), what was shown with the side that contributed each (interleaved), the documents the
answer cited, and ``status`` (ok, or candidate_unavailable: the champion served alone)."""
MANIFEST_VERSION = 2
"""2: the ``traffic`` table and ``feedback.used_doc_ids``; a snapshot of another version is exported again whole."""
TRAFFIC_MODES = ("shadow", "interleave")
TRAFFIC_STATUSES = ("ok", "candidate_unavailable")
MAX_USED = 100
SOURCES = ("api", "import")
"""Where a feedback event came in: POST /feedback (a rating of a request this store served), or an import."""
MAX_TEXT = 4000
MAX_ID = 200
MANIFEST = "manifest.json"
PARTS = "parts"
PART_NAME = re.compile(r"(?:requests|feedback|traffic)-[0-9a-f]{32}\.parquet")
MERGE_FANOUT = 8
"""This many parts of one size are merged into one (so a table has at most 7 parts per size level)."""
RETIRE_AFTER_S = 60.0
"""A part merged away is deleted this long after the manifest stopped naming it (a reader may be opening it)."""

log = logging.getLogger(__name__)


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
    used_doc_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_ID)]] | None = Field(
        None, max_length=MAX_USED, description="documents of the served request the user opened or used (credit for "
                                               "the side that contributed them when the request was interleaved)")
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
        self._export_lock = threading.Lock()  # one export at a time (the exporter thread, POST /snapshot, shutdown)
        self._manifest: dict[str, Any] | None = None  # what the snapshot holds; read and checked at the first export
        self._retired: list[tuple[Path, float]] = []
        self._status = ExportStatus()
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
        unknown = [d for d in event.used_doc_ids or () if doc_ids is not None and d not in doc_ids]
        if unknown:
            raise FeedbackRefused(f"used_doc_ids: {unknown[0]!r} is not a document of this corpus")
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
                        "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
                        "RETURNING feedback_id",
                        [event.event_id, utc_now(), event.request_id, event.query, event.rating, event.comment,
                         event.correct_doc_id, event.config_version, source,
                         None if event.used_doc_ids is None else json.dumps(event.used_doc_ids)]).fetchall()
                    new.append(bool(inserted))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.dirty = self.dirty or any(new)
        return new

    def record_traffic(self, request_id: str, mode: str, candidate_version: str, k: int, champion: list[str],
                       candidate: list[str] | None, shown: list[dict[str, str]] | None = None,
                       cited: list[str] | None = None, status: str = "ok") -> None:
        """A candidate's part in the served request ``request_id`` (see :data:`TABLES`)."""
        if mode not in TRAFFIC_MODES or status not in TRAFFIC_STATUSES:
            raise ValueError(f"traffic mode {mode!r} / status {status!r}: not one of {TRAFFIC_MODES} / "
                             f"{TRAFFIC_STATUSES}")
        encoded = [None if value is None else json.dumps(value, ensure_ascii=False)
                   for value in (candidate, shown, cited)]
        with self._lock:
            self._db.execute("INSERT INTO traffic VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [request_id, utc_now(), mode, candidate_version, k,
                              json.dumps(champion, ensure_ascii=False), *encoded, status])
            self.dirty = True

    def count(self, table: str) -> int:
        assert table in TABLES
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def export_snapshot(self) -> Path:
        """Export the rows added since the last export (see the module docstring); the snapshot folder.

        A failure is recorded (:meth:`export_status`) and raised; the rows stay due for the next export.
        Paths go to DuckDB through its relation API, never spliced into SQL text."""
        with self._export_lock:
            try:
                folder, lock_ms = self._export()
            except Exception as err:
                self.dirty = True
                self._status.failed(err)
                raise
            self._status.succeeded(lock_ms)
            return folder

    def export_status(self) -> dict[str, Any]:
        """The last export's outcome: ``ok`` (False when the last attempt failed), ``last_success``,
        ``last_error`` (with ``last_error_at``) and ``lock_ms`` (how long the last export held requests up)."""
        return self._status.as_dict()

    def _export(self) -> tuple[Path, float]:
        folder = self.snapshot_dir
        parts = folder / PARTS
        parts.mkdir(parents=True, exist_ok=True)
        with self._lock:
            cursor = self._db.cursor()  # its own handle: the Parquet writes run on it while requests use the main one
        try:
            with self._lock:
                started = time.perf_counter()
                if self._manifest is None:
                    self._manifest = self._checked_manifest(folder, cursor)
                manifest = self._manifest
                new = {}
                for table in TABLES:  # a consistent cut of both tables: feedback never names an unexported request
                    cursor.execute(f"CREATE OR REPLACE TEMP TABLE delta_{table} AS SELECT rowid AS _rowid, * "
                                   f"FROM {table} WHERE rowid > ?", [manifest["tables"][table]["watermark"]])
                    new[table] = cursor.execute(f"SELECT count(*), max(_rowid) FROM delta_{table}").fetchall()[0]
                self.dirty = False
                lock_ms = 1000 * (time.perf_counter() - started)
            for table in TABLES:
                count, top = new[table]
                entry = manifest["tables"][table]
                if count == 0 and entry["parts"]:
                    continue  # nothing new; a table without parts gets an empty one, so readers know its columns
                name = self._write_part(parts, table, cursor.sql(f"SELECT * EXCLUDE (_rowid) FROM delta_{table} "
                                                                 f"ORDER BY _rowid"))
                entry["parts"].append({"file": name, "rows": count, "level": 0})
                entry["rows"] += count
                entry["watermark"] = top if top is not None else entry["watermark"]
            for table in TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS delta_{table}")
            self._merge(parts, manifest, cursor)
            tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(manifest), encoding="utf-8")
            os.replace(tmp, folder / MANIFEST)
        finally:
            cursor.close()
        for table in TABLES:  # an older evolve's whole-table files would only mislead a reader without the manifest
            (folder / f"{table}.parquet").unlink(missing_ok=True)
        self._delete_retired()
        return folder, lock_ms

    def _checked_manifest(self, folder: Path, cursor: Any) -> dict[str, Any]:
        """The snapshot's manifest if it still describes this database (each table's exported row count up to
        its watermark matches, every part is there), else an empty one; unnamed files in parts/ are retired.
        Called under the store lock."""
        fresh = {"version": MANIFEST_VERSION, "tables": {t: {"watermark": -1, "rows": 0, "parts": []} for t in TABLES}}
        manifest = fresh
        try:
            found = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            if found.get("version") == MANIFEST_VERSION and all(
                    cursor.execute(f"SELECT count(*) FROM {t} WHERE rowid <= ?",
                                   [found["tables"][t]["watermark"]]).fetchall()[0][0] == found["tables"][t]["rows"]
                    and all(PART_NAME.fullmatch(p["file"]) and (folder / PARTS / p["file"]).is_file()
                            for p in found["tables"][t]["parts"]) for t in TABLES):
                manifest = found
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        named = {p["file"] for t in TABLES for p in manifest["tables"][t]["parts"]}
        self._retired += [(f, 0.0) for f in (folder / PARTS).iterdir() if f.name not in named]
        return manifest

    def _write_part(self, parts: Path, table: str, relation: Any) -> str:
        """Write a relation as a new part file (temp name, then renamed); its file name."""
        name = f"{table}-{uuid.uuid4().hex}.parquet"
        tmp = parts / f".{name}.tmp"
        relation.write_parquet(str(tmp))
        os.replace(tmp, parts / name)
        return name

    def _merge(self, parts: Path, manifest: dict[str, Any], cursor: Any) -> None:
        """Merge the newest MERGE_FANOUT parts of one level into one of the next, as long as there are that many
        (levels only fall from the oldest part to the newest, so each run of equal levels is at the end)."""
        for table in TABLES:
            entries = manifest["tables"][table]["parts"]
            while len(entries) >= MERGE_FANOUT and len({p["level"] for p in entries[-MERGE_FANOUT:]}) == 1:
                run = entries[-MERGE_FANOUT:]
                files = [str(parts / p["file"]) for p in run]
                name = self._write_part(parts, table, cursor.read_parquet(files))
                entries[-MERGE_FANOUT:] = [{"file": name, "rows": sum(p["rows"] for p in run),
                                            "level": run[0]["level"] + 1}]
                self._retired += [(parts / p["file"], time.monotonic()) for p in run]

    def _delete_retired(self) -> None:
        now, kept = time.monotonic(), []
        for path, since in self._retired:
            if since and now - since < RETIRE_AFTER_S:
                kept.append((path, since))
            else:
                path.unlink(missing_ok=True)
        self._retired = kept

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(sql, params or [])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ExportStatus:
    """How the snapshot exports went (for /health): a failed export is said there, not lost in a thread."""

    def __init__(self) -> None:
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.lock_ms: float | None = None
        self.ok = True

    def succeeded(self, lock_ms: float) -> None:
        self.last_success, self.lock_ms, self.ok = utc_now(), lock_ms, True

    def failed(self, err: BaseException) -> None:
        self.last_error, self.last_error_at, self.ok = f"{type(err).__name__}: {err}"[:500], utc_now(), False

    def as_dict(self) -> dict[str, Any]:
        def stamp(when: datetime | None) -> str | None:
            return when.isoformat(timespec="seconds") + "Z" if when else None

        return {"ok": self.ok, "last_success": stamp(self.last_success), "last_error": self.last_error,
                "last_error_at": stamp(self.last_error_at), "lock_ms": self.lock_ms}


class SnapshotExporter(threading.Thread):
    """Exports the new rows every ``interval`` seconds when something changed. A failed export is recorded in
    the store's :meth:`FeedbackStore.export_status` (and logged); the thread lives on and tries again."""

    def __init__(self, store: FeedbackStore, interval: float = 5.0):
        super().__init__(daemon=True, name="feedback-snapshot")
        self.store, self.interval = store, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        said = None
        while not self._stop_event.wait(self.interval):
            if self.store.dirty:
                try:
                    self.store.export_snapshot()
                    said = None
                except Exception:  # noqa: BLE001 - recorded in the store's export status, shown by /health
                    error = self.store.export_status()["last_error"]
                    if error != said:  # once per new error, not every interval
                        log.warning("feedback snapshot export failed (retried every %gs): %s", self.interval, error)
                        said = error

    def stop(self) -> None:
        self._stop_event.set()


def read_snapshot(folder: Path, sql: str) -> list[dict[str, Any]]:
    """Query the Parquet snapshot with an in-memory DuckDB (tables `requests`, `feedback`).

    The manifest names the parts of each table (a folder an older evolve wrote holds one file per table).
    Files are opened through DuckDB's relation API: a path never becomes part of SQL text, so a folder
    name with quotes in it is only ever a (missing) file name; part names from the manifest must look
    like part names."""
    for attempt in range(3):
        try:
            return _read_snapshot_once(Path(folder), sql)
        except _PartGone:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _PartGone(FileNotFoundError):
    """A part named by the manifest was merged away and deleted before it was opened: read the manifest again."""


def _snapshot_files(folder: Path) -> dict[str, list[Path]]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {table: [folder / f"{table}.parquet"] for table in TABLES if table != "traffic"}
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"unreadable snapshot manifest in {folder}: {err}") from None
    files = {}
    for table in TABLES:
        if table not in manifest.get("tables", {}):  # a snapshot an evolve before the traffic table wrote
            continue
        names = [p["file"] for p in manifest["tables"][table]["parts"]]
        if not names or not all(isinstance(n, str) and PART_NAME.fullmatch(n) for n in names):
            raise FileNotFoundError(f"the snapshot manifest in {folder} names no valid parts of {table}")
        files[table] = [folder / PARTS / name for name in names]
    return files


def _read_snapshot_once(folder: Path, sql: str) -> list[dict[str, Any]]:
    import duckdb

    files = _snapshot_files(folder)
    connection = duckdb.connect()
    try:
        for table in files:
            missing = [path for path in files[table] if not path.is_file()]
            if missing:
                if (folder / MANIFEST).exists():
                    raise _PartGone(f"snapshot part {missing[0]} is gone")
                raise FileNotFoundError(f"no snapshot of {table} in {folder}")
            connection.read_parquet([str(path) for path in files[table]]).create_view(table)
        cursor = connection.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        connection.close()
