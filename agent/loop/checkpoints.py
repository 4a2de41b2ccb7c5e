"""The loop's checkpoints: LangGraph's SQLite saver, keeping only the newest few per run.

LangGraph's ``SqliteSaver`` writes the whole state at every step and keeps every checkpoint. The state holds the
run's history (one record per iteration, about 1.2 KB each), so a run's checkpoint file grows with the square of its
iterations: the demo set makes about 40 iterations an hour on 2 cores, and 48 hours of them would write some 13 GB
of checkpoints (six per iteration, each holding the history so far) of which resuming reads one. A resume needs
the newest checkpoint and its pending writes only (the loop's graph has no ``DeltaChannel``, whose state would be
spread over earlier checkpoints), so after each save the older ones of the run are deleted with their writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

KEEP = 3
"""Checkpoints kept per run: the newest (what a resume reads) and two before it, for a person looking into a crash."""


class LatestCheckpoints(SqliteSaver):
    """``SqliteSaver`` that deletes a run's checkpoints older than its newest :data:`KEEP` after each save."""

    def __init__(self, conn: sqlite3.Connection, *, serde: Any = None, keep: int = KEEP):
        super().__init__(conn, serde=serde)
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.keep = keep

    @classmethod
    def at(cls, path: Path, serde: Any = None, keep: int = KEEP) -> LatestCheckpoints:
        return cls(sqlite3.connect(path, check_same_thread=False), serde=serde, keep=keep)

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        saved = super().put(config, checkpoint, metadata, new_versions)
        self.prune_run(saved["configurable"]["thread_id"], saved["configurable"].get("checkpoint_ns", ""))
        return saved

    def prune_run(self, thread_id: str, checkpoint_ns: str = "") -> None:
        """Delete the checkpoints of one run (thread) older than the newest ``keep``, and their writes."""
        newest = ("SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                  "ORDER BY checkpoint_id DESC LIMIT ?")  # LangGraph's ids sort by time; its own reads order so
        key = (thread_id, checkpoint_ns)
        with self.cursor() as cur:
            cur.execute(f"DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id NOT IN "
                        f"({newest})", (*key, *key, self.keep))
            cur.execute(f"DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id NOT IN "
                        f"({newest})", (*key, *key, self.keep))

    def prune_all(self) -> None:
        """:meth:`prune_run` for every run in the file (runs saved before pruning existed, too)."""
        with self.cursor(transaction=False) as cur:
            runs = cur.execute("SELECT DISTINCT thread_id, checkpoint_ns FROM checkpoints").fetchall()
        for thread_id, checkpoint_ns in runs:
            self.prune_run(thread_id, checkpoint_ns)

    def count(self, thread_id: str) -> int:
        """Checkpoints stored for a run (all namespaces)."""
        with self.cursor(transaction=False) as cur:
            return int(cur.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)).fetchone()[0])
