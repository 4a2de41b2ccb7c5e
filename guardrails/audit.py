"""The audit log of promotion decisions, in DuckDB: who did what to which version, when, and why.

Its own DuckDB file (``.evolve/audit.duckdb``), opened only for the moment of a write or a read:
DuckDB lets one process hold a file read-write, so the long-running server keeps its feedback in
another file and CLI commands never wait on it.
"""

from __future__ import annotations

import getpass
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """CREATE TABLE IF NOT EXISTS audit (  -- ts is UTC
    ts TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL, model VARCHAR,
    version VARCHAR, previous_version VARCHAR, reason VARCHAR, details JSON)"""


def current_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class AuditLog:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _connect(self):
        import duckdb

        for attempt in range(50):  # another evolve command may hold the file for a moment
            try:
                connection = duckdb.connect(str(self.path))
                connection.execute(SCHEMA)
                return connection
            except duckdb.IOException:
                if attempt == 49:
                    raise
                time.sleep(0.1)

    def record(self, action: str, version: str | None, reason: str, model: str | None = None,
               previous_version: str | None = None, details: dict[str, Any] | None = None,
               actor: str | None = None) -> None:
        connection = self._connect()
        try:
            now_utc = datetime.now(timezone.utc).replace(tzinfo=None)
            connection.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               [now_utc, actor or current_actor(), action, model, version, previous_version, reason,
                                json.dumps(details or {}, ensure_ascii=False)])
        finally:
            connection.close()

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        connection = self._connect()
        try:
            cursor = connection.execute("SELECT * FROM audit ORDER BY ts")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            connection.close()
