"""LLM response cache in DuckDB, keyed by sha256 of (model, messages, parameters).

Opened for each lookup or write and closed at once (DuckDB admits one writing process at a time),
so several evolve processes can share the file; a busy file is retried, then skipped (a cache
miss costs a call, never a failure).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """CREATE TABLE IF NOT EXISTS llm_cache (
    key VARCHAR PRIMARY KEY, model VARCHAR NOT NULL, request JSON NOT NULL, response VARCHAR NOT NULL,
    created TIMESTAMP DEFAULT current_timestamp)"""


def request_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    payload = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class LLMCache:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _connect(self, attempts: int = 20):
        import duckdb

        for attempt in range(attempts):
            try:
                connection = duckdb.connect(str(self.path))
                connection.execute(SCHEMA)
                return connection
            except duckdb.IOException:
                time.sleep(0.05 * (attempt + 1))
        return None

    def get(self, key: str) -> str | None:
        with self._lock:
            connection = self._connect()
            if connection is None:
                return None
            try:
                row = connection.execute("SELECT response FROM llm_cache WHERE key = ?", [key]).fetchone()
            finally:
                connection.close()
        if row:
            self.hits += 1
            return row[0]
        self.misses += 1
        return None

    def put(self, key: str, model: str, request: dict[str, Any], response: str) -> None:
        with self._lock:
            connection = self._connect()
            if connection is None:
                return
            try:
                connection.execute("INSERT OR REPLACE INTO llm_cache (key, model, request, response) VALUES (?, ?, ?, ?)",
                                   [key, model, json.dumps(request, ensure_ascii=False), response])
            finally:
                connection.close()
