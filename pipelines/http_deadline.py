"""A whole-request deadline for httpx clients: httpx's timeout bounds each read, write and connect, so a server that
trickles a byte now and then never times out; here every blocking socket operation gets only what is left of the
request's deadline (set per thread with :func:`within`), so a call ends at its deadline however the server sends.
Used by every client of a model server (pipelines.remote, pipelines.llm)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEADLINE = threading.local()
"""When the request this thread is sending must be over (``time.monotonic()``), or absent: read by every blocking
socket operation of the client's connections (a pooled connection serves whichever thread sends next)."""


def left(timeout: float | None, error: type[Exception]) -> float | None:
    at = getattr(DEADLINE, "at", None)
    if at is None:
        return timeout
    remaining = at - time.monotonic()
    if remaining <= 0:
        raise error("the request's deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


def deadline_backend(backend: Any) -> Any:
    """httpcore's network backend with each connect, read and write bounded by the thread's deadline."""
    import httpcore

    class Stream(httpcore.NetworkStream):
        def __init__(self, stream: Any):
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, left(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, left(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> Any:
            return Stream(self._stream.start_tls(ssl_context, server_hostname,
                                                 left(timeout, httpcore.ConnectTimeout)))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                        socket_options: Any = None) -> Any:
            return Stream(backend.connect_tcp(host, port, left(timeout, httpcore.ConnectTimeout), local_address,
                                              socket_options))

        def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
            return Stream(backend.connect_unix_socket(path, left(timeout, httpcore.ConnectTimeout), socket_options))

        def sleep(self, seconds: float) -> None:
            backend.sleep(seconds)

    return Backend()


def bounded_client(timeout_s: float, connections: int) -> Any:
    """An httpx client whose connections (direct or through a proxy from the environment) obey the deadline."""
    import httpx

    client = httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_connections=connections,
                                                                 max_keepalive_connections=connections))
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = deadline_backend(pool._network_backend)
    return client


@contextmanager
def within(seconds: float) -> Iterator[float]:
    """This thread's requests through a :func:`bounded_client` end ``seconds`` from now (yields the deadline, in
    ``time.monotonic()``)."""
    at = time.monotonic() + seconds
    DEADLINE.at = at
    try:
        yield at
    finally:
        DEADLINE.at = None
