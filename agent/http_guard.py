"""What keeps `evolve serve` from being exhausted by connections before a request reaches the API (and its token
check): a deadline on each request head, a cap on open connections with the open files to hold them, and log
lines that a flood of connections cannot multiply.

uvicorn's own settings do part of it (``timeout_keep_alive`` closes an idle connection, but only after a first
response and only until its next byte; ``limit_concurrency`` answers 503 once a head has arrived; h11 refuses a head
over ``h11_max_incomplete_event_size``). A connection that opens and sends half a head, or a byte now and then, is
never closed by uvicorn: :func:`guarded_protocol` gives every connection ``head_timeout_s`` to deliver a whole
request head, from its opening and from each response, and refuses connections beyond ``limit_concurrency`` as
they open (a 503, then closed), so neither slow nor many sockets hold the server's file descriptors.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConnectionLimits:
    """`evolve serve`'s connection options; these defaults are theirs."""

    head_timeout_s: float = 10.0
    """Seconds a connection has to send a whole request head, from its opening or its last response; then closed."""
    limit_concurrency: int = 1024
    """Connections open at once (and requests in progress): one more is answered 503 and closed as it opens."""
    backlog: int = 2048
    """Connections the kernel queues before the server accepts them (listen(2); the kernel caps it at somaxconn)."""
    keep_alive_s: float = 5.0
    """Seconds an idle keep-alive connection stays open without a byte (uvicorn's ``timeout_keep_alive``)."""
    max_head_bytes: int = 16 * 1024
    """Largest request head (h11's ``max_incomplete_event_size``): larger is a 400 and the connection closed."""
    files_reserved: int = 256
    """Open files kept for everything but connections (the feedback store, models, the index, snapshots, logs)."""


_BUSY_BODY = b"too many connections: try again\n"
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))
"""What a connection beyond the limit gets as it opens, before anything is read from it."""


def open_files(wanted: int) -> int:
    """Raise this process's soft limit on open files towards ``wanted`` (up to the hard limit); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError):
            pass
    return soft


def fit_to_open_files(limits: ConnectionLimits, say: Any) -> ConnectionLimits:
    """``limits`` with as many connections as this process may hold open files for (its limit raised as far as
    allowed first); ``say`` is told when fewer connections than asked for fit."""
    from dataclasses import replace

    wanted = limits.limit_concurrency + limits.files_reserved
    allowed = open_files(wanted)
    if allowed == resource.RLIM_INFINITY or allowed >= wanted:
        return limits
    fits = max(1, allowed - limits.files_reserved)
    say(f"--limit-concurrency {limits.limit_concurrency} needs {wanted} open files and this process may open "
        f"{allowed} (ulimit -n; LimitNOFILE in systemd): serving at most {fits} connections at once")
    return replace(limits, limit_concurrency=fits)


def guarded_protocol(limits: ConnectionLimits) -> type:
    """uvicorn's h11 protocol with the head deadline and the connection cap (see the module's docstring)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    log = logging.getLogger("evolve.connections")

    class GuardedH11Protocol(H11Protocol):
        head_timer: Any = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.limit_concurrency:
                log.warning("refused a connection: %d are open (`evolve serve --limit-concurrency`)",
                            limits.limit_concurrency)
                transport.write(BUSY)
                transport.close()
                return
            self.arm_head_deadline()

        def arm_head_deadline(self) -> None:
            self.cancel_head_deadline()
            if not self.transport.is_closing():
                self.head_timer = self.loop.call_later(limits.head_timeout_s, self.head_deadline_passed)

        def cancel_head_deadline(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def head_deadline_passed(self) -> None:
            self.head_timer = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
                return  # a request is being answered: its own response re-arms the deadline
            log.warning("closed a connection that sent no whole request head within %g s (`evolve serve "
                        "--head-timeout`)", limits.head_timeout_s)
            if self.conn.our_state is h11.IDLE or self.conn.our_state is h11.DONE:
                try:
                    self.conn.send(h11.ConnectionClosed())
                except h11.LocalProtocolError:
                    pass
            self.transport.close()

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a whole head arrived: the request is the app's now
                self.cancel_head_deadline()

        def on_response_complete(self) -> None:
            self.arm_head_deadline()  # before super(): it may start a pipelined request, which cancels it
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_head_deadline()
            super().connection_lost(exc)

    return GuardedH11Protocol


def uvicorn_settings(limits: ConnectionLimits, log_every_s: float = 60.0, log_burst: int = 5) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: the guarded protocol, the limits, and logs rate-limited."""
    return {"http": guarded_protocol(limits), "limit_concurrency": limits.limit_concurrency,
            "backlog": limits.backlog, "timeout_keep_alive": limits.keep_alive_s,
            "h11_max_incomplete_event_size": limits.max_head_bytes, "access_log": False, "log_level": "warning",
            "log_config": log_config(log_every_s, log_burst)}


class RepeatFilter(logging.Filter):
    """Lets ``burst`` records of one kind (logger, level, message template) through per ``every_s`` seconds, and
    at most ``total`` records of any kind, then counts the rest; the next record of a kind that gets through says
    how many like it were held back. Thread-safe (uvicorn logs from its loop, the app from request threads)."""

    def __init__(self, every_s: float = 60.0, burst: int = 5, total: int | None = None, kinds: int = 256):
        super().__init__()
        self.every_s, self.burst, self.kinds = every_s, burst, kinds
        self.total = total if total is not None else 20 * burst
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[float | int]] = {}  # kind -> [window start, passed, held back]
        self._window, self._passed = 0.0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg)[:200])
        now = time.monotonic()
        with self._lock:
            if now - self._window >= self.every_s:
                self._window, self._passed = now, 0
                if len(self._seen) > self.kinds:  # forget kinds whose window is over (kept: the counts to say)
                    self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.every_s or v[2]}
            seen = self._seen.setdefault(kind, [now, 0, 0])
            held = 0
            if now - seen[0] >= self.every_s:
                held, seen[0], seen[1], seen[2] = int(seen[2]), now, 0, 0
            if seen[1] >= self.burst or self._passed >= self.total:
                seen[2] += 1
                return False
            seen[1] += 1
            self._passed += 1
            last = seen[1] == self.burst
        notes = [f"{held} more like this in the last {self.every_s:g} s were not logged"] if held else []
        if last:
            notes.append(f"more like this within {self.every_s:g} s are counted, not logged")
        if notes:
            record.msg, record.args = f"{record.getMessage()} ({'; '.join(notes)})", None
        return True


def log_config(every_s: float = 60.0, burst: int = 5) -> dict[str, Any]:
    """uvicorn's logging (its formats, on stderr) with :class:`RepeatFilter` on every handler, the root's too (asyncio
    and evolve's own loggers end there)."""
    rate = {"()": RepeatFilter, "every_s": every_s, "burst": burst}
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"rate": rate},
        "formatters": {"default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                                   "use_colors": None},
                       "access": {"()": "uvicorn.logging.AccessFormatter", "fmt": "%(levelprefix)s %(message)s"},
                       "plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": "default", "filters": ["rate"]},
                     "root": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain",
                              "filters": ["rate"]}},
        "loggers": {"uvicorn": {"handlers": ["default"], "level": "WARNING", "propagate": False},
                    "uvicorn.error": {"level": "WARNING"},
                    "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
        "root": {"handlers": ["root"], "level": "WARNING"},
    }
