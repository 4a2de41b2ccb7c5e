"""Where a running loop keeps its files: checkpoints, live status, the stop request."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agent.paths import Below, ProjectPaths


@dataclass(frozen=True)
class AgentPaths:
    root: Path

    @property
    def folder(self) -> Path:
        path = ProjectPaths(self.root).agent
        path.mkdir(parents=True, exist_ok=True)
        return path

    checkpoints = Below("folder", "checkpoints.sqlite")
    status = Below("folder", "status.json")
    stop = Below("folder", "STOP")
    current_run = Below("folder", "current_run.json")


def write_status(paths: AgentPaths, status: dict[str, object]) -> None:
    """Atomic replace, so `evolve status` in another terminal never reads half a file."""
    tmp = paths.status.with_suffix(".tmp")
    tmp.write_text(json.dumps({**status, "pid": os.getpid(), "updated": time.time()}, indent=2, default=str))
    os.replace(tmp, paths.status)


def read_status(paths: AgentPaths) -> dict[str, object] | None:
    if not paths.status.exists():
        return None
    return json.loads(paths.status.read_text())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class BudgetClock:
    """Wall time the loop has spent, carried across restarts.

    The time a run spends dead (killed, machine down) does not count: ``spent`` is saved to the run
    file every few seconds, and a resumed run starts its clock from there.
    """

    def __init__(self, run_file: Path, budget_seconds: float, spent_before: float = 0.0):
        self.run_file = run_file
        self.budget_seconds = budget_seconds
        self.spent_before = spent_before
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def spent(self) -> float:
        return self.spent_before + time.monotonic() - self.started

    def remaining(self) -> float:
        return self.budget_seconds - self.spent()

    @property
    def deadline(self) -> float:
        """The same budget as a time.time() instant (what Optuna callbacks and trials compare against)."""
        return time.time() + self.remaining()

    def save(self) -> None:
        with self._lock:
            data = json.loads(self.run_file.read_text())
            data["spent_seconds"] = round(self.spent(), 1)
            tmp = self.run_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.run_file)


class Watchdog(threading.Thread):
    """Saves the budget clock every few seconds; at the end of the budget (plus ``grace``) it ends the process.

    The loop normally stops itself well before (studies get a timeout, trials are abandoned at their next
    step); this is the backstop for a step that cannot be interrupted, e.g. embedding a large corpus.
    ``on_expiry`` writes the summary before the process exits.
    """

    def __init__(self, clock: BudgetClock, on_expiry: Callable[[], None], grace: float = 0.0, every: float = 5.0):
        super().__init__(daemon=True, name="evolve-budget-watchdog")
        self.clock, self.on_expiry, self.grace, self.every = clock, on_expiry, grace, every
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(min(self.every, max(0.05, self.clock.remaining() + self.grace))):
            self.clock.save()
            if self.clock.remaining() + self.grace <= 0:
                try:
                    self.on_expiry()
                finally:
                    os._exit(0)

    def stop(self) -> None:
        self._done.set()
        self.clock.save()
