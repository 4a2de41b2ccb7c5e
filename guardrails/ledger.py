"""The decision log: the one source of truth for which config is the champion.

Every guard decision (a candidate registered or refused by the guardrails) and every human decision
(approve, reject, rollback) is a row of an append-only, hash-chained table in its own DuckDB file
(``.evolve/audit.duckdb``). Each row carries the sha256 of the row before it and its own sha256 over
all its fields, so an edited, deleted, re-ordered or back-dated row breaks the chain at that row;
:meth:`DecisionLog.verify` names the first bad one and every reader calls it. This makes the log
tamper-evident, not tamper-proof: someone with write access to the file can recompute the whole chain,
which is why ``champion.yaml`` and the registry tags repeat the hash of the decision they come from.

Human decisions are two rows: an ``intent`` (everything needed to carry the decision out) and a
``commit`` written after ``champion.yaml`` and the MLflow mirror were updated. An intent without its
commit is a decision interrupted by a crash or a lock; :func:`guardrails.decisions.recover` completes it.

The actor is attribution, not authentication: the OS user (the one behind ``sudo`` where there is
one) plus the identity given with ``--actor`` / ``EVOLVE_ACTOR``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
HUMAN_ACTIONS = ("approve", "reject", "rollback")
GUARD_ACTIONS = ("register", "guard-reject")
"""Looks: guard decisions made on the held-back queries (each spends alpha)."""
LOOK_SKIPPED = "not-looked"
"""A candidate the look gate kept from the guard (guardrails.gate): no held-back query was read, no alpha spent."""
FIELDS = ("seq", "ts", "action", "phase", "decision_id", "actor", "os_user", "model", "version",
          "previous_version", "config_sha256", "policy_sha256", "reason", "details", "prev_hash", "row_hash")
SCHEMA = """CREATE TABLE IF NOT EXISTS decisions (
    seq BIGINT PRIMARY KEY, ts VARCHAR NOT NULL, action VARCHAR NOT NULL, phase VARCHAR NOT NULL,
    decision_id VARCHAR NOT NULL, actor VARCHAR, os_user VARCHAR NOT NULL, model VARCHAR, version VARCHAR,
    previous_version VARCHAR, config_sha256 VARCHAR, policy_sha256 VARCHAR, reason VARCHAR, details VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL, row_hash VARCHAR NOT NULL)"""


class LogError(RuntimeError):
    """The decision log cannot be used: held by another process, or its chain is broken."""


class LogLocked(LogError):
    pass


class ChainBroken(LogError):
    pass


def canonical_json(value: Any) -> str:
    """The one serialisation that hashes are taken over (sorted keys, no spaces, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def os_user() -> str:
    """The human behind the process: $SUDO_USER under sudo (everyone is `evolve` there), else the login."""
    try:
        effective = getpass.getuser()
    except (KeyError, OSError):
        effective = "unknown"
    behind = os.environ.get("SUDO_USER")
    return f"{behind} (sudo as {effective})" if behind and behind != effective else effective


def explicit_actor(given: str | None = None) -> str | None:
    return given or os.environ.get("EVOLVE_ACTOR") or None


@dataclass
class Row:
    seq: int
    ts: str
    action: str
    phase: str
    decision_id: str
    actor: str | None
    os_user: str
    model: str | None
    version: str | None
    previous_version: str | None
    config_sha256: str | None
    policy_sha256: str | None
    reason: str | None
    details: str
    prev_hash: str
    row_hash: str = ""
    info: dict[str, Any] = field(default_factory=dict, repr=False)
    """details, parsed"""

    def content_hash(self) -> str:
        return sha256_of({name: getattr(self, name) for name in FIELDS if name != "row_hash"})

    def label(self) -> str:
        what = f"{self.action} {self.phase}" + (f" of version {self.version}" if self.version else "")
        return f"row {self.seq} ({what}, {self.ts})"


class DecisionLog:
    """Append-only, hash-chained rows in DuckDB, opened only for the moment of a read or a write."""

    def __init__(self, path: Path | str, lock_wait_s: float | None = None):
        self.path = Path(path)
        self.lock_wait_s = float(os.environ.get("EVOLVE_LOCK_WAIT_S", "5")) if lock_wait_s is None else lock_wait_s

    def _connect(self, read_only: bool = False):
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_wait_s
        while True:  # another evolve command may hold the file for a moment
            try:
                if read_only and self.path.exists():
                    return duckdb.connect(str(self.path), read_only=True)
                connection = duckdb.connect(str(self.path))
                connection.execute(SCHEMA)
                return connection
            except duckdb.IOException as err:
                if time.monotonic() >= deadline:
                    holder = re.search(r"PID (\d+)", str(err))
                    raise LogLocked(f"the decision log {self.path} is held by another process"
                                    + (f" (pid {holder.group(1)})" if holder else "")
                                    + "; nothing was changed, try again when it is free") from None
                time.sleep(0.1)

    # --- reading -----------------------------------------------------------------------------------
    def rows(self, verify: bool = True) -> list[Row]:
        if not self.path.exists():
            return []
        connection = self._connect(read_only=True)
        try:
            if not connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = "
                                      "'decisions'").fetchone()[0]:
                return []
            found = connection.execute(f"SELECT {', '.join(FIELDS)} FROM decisions ORDER BY seq").fetchall()
        finally:
            connection.close()
        rows = [Row(*values) for values in found]
        for row in rows:
            try:
                row.info = json.loads(row.details)
            except (TypeError, ValueError):
                row.info = {}
        if verify:
            problem = first_bad_row(rows)
            if problem:
                raise ChainBroken(f"the decision log {self.path} is broken at {problem}; "
                                  "`evolve audit --verify` shows it; restore the file from a backup")
        return rows

    # --- writing -----------------------------------------------------------------------------------
    def append(self, action: str, phase: str, *, decision_id: str | None = None, actor: str | None = None,
               model: str | None = None, version: str | None = None, previous_version: str | None = None,
               config_sha256: str | None = None, policy_sha256: str | None = None, reason: str | None = None,
               details: dict[str, Any] | None = None, user: str | None = None) -> Row:
        """Add one row at the end of the chain (one transaction: the read of the head and the insert)."""
        connection = self._connect()
        try:
            connection.execute("BEGIN TRANSACTION")
            head = connection.execute("SELECT seq, row_hash, ts FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
            last_ts = head[2] if head else None  # rows are written in time order: the head is the latest
            now = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
            row = Row(seq=(head[0] + 1) if head else 1, ts=max(now, last_ts or now), action=action, phase=phase,
                      decision_id=decision_id or uuid.uuid4().hex, actor=actor, os_user=user or os_user(),
                      model=model, version=version, previous_version=previous_version, config_sha256=config_sha256,
                      policy_sha256=policy_sha256, reason=reason, details=canonical_json(details or {}),
                      prev_hash=head[1] if head else GENESIS)
            row.row_hash = row.content_hash()
            connection.execute(f"INSERT INTO decisions VALUES ({', '.join('?' * len(FIELDS))})",
                               [getattr(row, name) for name in FIELDS])
            connection.execute("COMMIT")
            row.info = details or {}
            return row
        except Exception:
            try:
                connection.execute("ROLLBACK")
            except Exception:
                pass
            raise
        finally:
            connection.close()


def first_bad_row(rows: list[Row]) -> str | None:
    """The first row that does not fit the chain, described for a human; None when the chain holds."""
    previous_hash, previous_ts = GENESIS, ""
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq:
            return f"row {expected_seq}: missing (the next row is {row.seq}; rows were deleted)"
        if row.prev_hash != previous_hash:
            return f"{row.label()}: does not follow the row before it (a row before it was changed or removed)"
        if row.content_hash() != row.row_hash:
            return f"{row.label()}: its content does not match its hash (edited after it was written)"
        if row.ts < previous_ts:
            return f"{row.label()}: dated before the row before it (back-dated)"
        previous_hash, previous_ts = row.row_hash, row.ts
    return None


# --- what the log says ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChampionRecord:
    """The audited champion: a registry version (None: the project's default config) and its config hash."""

    version: str | None
    config_sha256: str | None
    config: dict[str, Any] | None
    decision: str | None
    """row hash of the intent that made it the champion (None for the default config)"""


DEFAULT_CHAMPION = ChampionRecord(None, None, None, None)


def intents(rows: list[Row]) -> list[Row]:
    """Human-decision intents in order. A pending one (no commit yet) counts as decided: an intent is never
    undone, the next command completes it (:func:`guardrails.decisions.recover`)."""
    return [r for r in rows if r.phase == "intent"]


def pending_intents(rows: list[Row]) -> list[Row]:
    committed = {r.decision_id for r in rows if r.phase == "commit"}
    return [r for r in intents(rows) if r.decision_id not in committed]


def champion_history(rows: list[Row]) -> list[ChampionRecord]:
    """The stack of champions the decisions built: approve pushes, rollback pops; the last is the champion."""
    stack = [DEFAULT_CHAMPION]
    for row in intents(rows):
        if row.action == "approve":
            stack.append(ChampionRecord(row.version, row.config_sha256, row.info.get("config"), row.row_hash))
        elif row.action == "rollback" and len(stack) > 1:
            stack.pop()
    return stack


def version_states(rows: list[Row]) -> dict[str, str]:
    """version -> candidate | champion | retired | rejected | rolled-back, as the log has it."""
    states: dict[str, str] = {}
    for row in rows:
        if row.action == "register" and row.version:
            states[row.version] = "candidate"
    stack: list[str | None] = [None]
    for row in intents(rows):
        if row.action == "approve":
            if stack[-1]:
                states[stack[-1]] = "retired"
            stack.append(row.version)
            states[row.version] = "champion"
        elif row.action == "reject":
            states[row.version] = "rejected"
        elif row.action == "rollback" and len(stack) > 1:
            states[stack.pop()] = "rolled-back"
            if stack[-1]:
                states[stack[-1]] = "champion"
    return states


def register_row(rows: list[Row], version: str) -> Row | None:
    return next((r for r in rows if r.action == "register" and r.version == version), None)


def since_human_decision(rows: list[Row]) -> list[Row]:
    """The rows after the last committed human decision (the stretch alpha is spent over)."""
    last_human = max((r.seq for r in rows if r.phase == "commit"), default=0)
    return [r for r in rows if r.seq > last_human]


def looks_since_human_decision(rows: list[Row]) -> int:
    """Guard decisions (looks at the held-back queries) since the last committed human decision."""
    return sum(1 for r in since_human_decision(rows) if r.action in GUARD_ACTIONS)
