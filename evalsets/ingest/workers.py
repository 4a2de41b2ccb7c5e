"""Reading files in worker processes that can be stopped: one file at a time per worker, each under a time limit.

A worker that runs past ``timeout`` is killed and its file reported ``timeout``; a worker that dies (the OOM
killer, a library's segfault, ``os._exit``) costs its file (reported ``crashed``), not the run: a fresh worker
takes the next file. A worker's start (imports) is not counted against its first file's time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any

PLUGINS_ENV = "EVOLVE_INGEST_READERS"
"""Comma-separated modules that register extra format readers (imported by the walker and by every worker)."""


def load_plugins() -> None:
    import importlib

    for name in filter(None, (part.strip() for part in os.environ.get(PLUGINS_ENV, "").split(","))):
        importlib.import_module(name)


def _serve(connection: Connection, read: Callable[..., Any], args: tuple) -> None:
    load_plugins()
    connection.send(("ready", None))
    while True:
        task = connection.recv()
        if task is None:
            return
        index, path = task
        connection.send((index, read(path, *args)))


class _Worker:
    def __init__(self, context: Any, read: Callable[..., Any], args: tuple) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, read, args), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.task: tuple[int, str] | None = None
        self.since = 0.0

    def give(self, task: tuple[int, str]) -> None:
        self.task, self.since = task, time.monotonic()
        self.connection.send(task)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except OSError:
                pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


def read_isolated(paths: list[str], read: Callable[..., Any], args: tuple, workers: int, timeout: float | None,
                  failed: Callable[[str, str], Any]) -> Iterator[tuple[int, Any]]:
    """(index, read(path, *args)) for each path, in completion order; a file whose worker died or ran past
    ``timeout`` seconds gives ``failed(kind, reason)`` instead. ``read`` must be importable (spawned workers)."""
    context = get_context("spawn")  # not fork: the caller may run threads, and a forked lock can hang a child
    pending = list(reversed(list(enumerate(paths))))
    pool: list[_Worker] = []
    pool: list[_Worker] = []
    failed_starts = 0
    try:
        for _ in range(min(workers, len(paths))):
            pool.append(_Worker(context, read, args))
        while pool:
            now = time.monotonic()
            waits = [w.since + timeout - now for w in pool if w.task is not None and timeout]
            ready = wait([w.connection for w in pool] + [w.process.sentinel for w in pool],
                         timeout=max(0.0, min(waits)) if waits else None)
            for worker in list(pool):
                outcome, dead = None, False
                if worker.connection in ready:
                    try:
                        index, result = worker.connection.recv()
                    except (EOFError, OSError):
                        dead = True
                    else:
                        if index == "ready":
                            worker.ready = True
                        else:
                            outcome, worker.task = (index, result), None
                if dead or (worker.process.sentinel in ready and outcome is None and not worker.process.is_alive()):
                    if worker.task is not None:
                        code = worker.process.exitcode if worker.process.exitcode is not None else "unknown"
                        outcome = (worker.task[0], failed("crashed", f"the reader process died (exit code {code}) "
                                                                     "while reading this file"))
                    elif not worker.ready:
                        failed_starts += 1
                        if failed_starts > 3:
                            raise RuntimeError("ingest worker processes die on start (see the messages above)")
                    worker.task = None
                    worker.stop(kill=True)
                    pool.remove(worker)
                    if pending:
                        pool.append(_Worker(context, read, args))
                elif worker.task is not None and timeout and time.monotonic() - worker.since >= timeout:
                    outcome = (worker.task[0], failed("timeout", f"still reading after {timeout:g} s "
                                                                 "(--file-timeout)"))
                    worker.task = None
                    worker.stop(kill=True)
                    pool.remove(worker)
                    if pending:
                        pool.append(_Worker(context, read, args))
                if outcome is not None:
                    yield outcome
                if worker in pool and worker.ready and worker.task is None:
                    if pending:
                        worker.give(pending.pop())
                    else:
                        worker.stop()
                        pool.remove(worker)
    finally:
        for worker in pool:
            worker.stop(kill=True)
