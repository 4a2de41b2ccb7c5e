"""A model server that misbehaves on purpose: the OpenAI embeddings protocol (``/v1/embeddings``) and the rerank
protocol (``/v1/rerank``), and chat completions answering "ok", on 127.0.0.1, written with the standard library, answering the way broken, hostile or
overloaded servers do.

What it does is chosen by the first segment of the path, so one server serves every case and a registry entry
picks one by its ``base_url`` (``server.url("nan")`` is ``http://127.0.0.1:PORT/nan/v1``):

==================  ===================================================================================
``ok``              deterministic finite vectors (a hash of the text) of ``dim`` numbers; scores in [0, 1)
``nan``             NaN for every input
``nan-probe``       NaN for the fixed fingerprint probe (``pipelines.remote.PROBE_TEXTS``) only
``nan-texts``       NaN for everything but the probe (the probe passes, real texts are poisoned)
``inf``             an infinite number in each vector or score
``strings``         numbers as strings (``"0.25"``)
``ragged``          vectors of different lengths in one answer
``wrong-dim``       ``dim - 1`` numbers per vector
``not-json``        an HTML error page with status 200
``wrong-json``      valid JSON of another shape (``{"object": "list"}``, no data)
``bad-index``       every item with index 0
``huge``            a reply of ``huge_bytes`` (300 MB by default), streamed without a Content-Length
``huge-declared``   the same, announced with its Content-Length
``trickle``         the whole reply (status line and headers too) at one byte per ``trickle_s``
``trickle-body``    the head at once, then the body at one byte per ``trickle_s``
``echo-401``        401 whose body echoes every request header (``Authorization: Bearer …`` included)
==================  ===================================================================================

Use it as a context manager (a thread of this process) or run ``python tests/misbehaving_server.py [PORT]`` for a
process of its own. ``requests`` records (mode, route, headers) of each request; ``sent`` the bytes each mode
wrote before the client hung up.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROBE_MARKERS = ("evolve probe: retrieval quality is measured on held-back queries.",
                 "검색 품질은 보류된 질문으로 측정합니다.",
                 "0 1 2 3 4 5 6 7 8 9 + - * / = ( ) [ ] { } < > ? !")
"""``pipelines.remote.PROBE_TEXTS`` (copied: the server needs nothing of evolve; a test asserts they agree)."""


def vector(text: str, dim: int) -> list[float]:
    """A deterministic vector for ``text``: what a healthy server would answer."""
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    while len(seed) < 4 * dim:
        seed += hashlib.sha256(seed).digest()
    return [round(struct.unpack_from(">I", seed, 4 * i)[0] / 2 ** 31 - 1.0, 6) for i in range(dim)]


def score(query: str, document: str) -> float:
    return struct.unpack_from(">I", hashlib.sha256(f"{query}\x00{document}".encode("utf-8")).digest())[0] / 2 ** 32


class MisbehavingServer:
    def __init__(self, dim: int = 8, trickle_s: float = 1.0, huge_bytes: int = 300 * 2 ** 20, port: int = 0):
        self.dim, self.trickle_s, self.huge_bytes = dim, trickle_s, huge_bytes
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, mode: str) -> str:
        """The base_url of a registry entry served in ``mode``."""
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def count(self, mode: str) -> int:
        with self._lock:
            return sum(1 for m, _, _ in self.requests if m == mode)

    def __enter__(self) -> "MisbehavingServer":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="misbehaving-server")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # what each mode answers: (status, headers, body chunks), or a callable that writes itself
    def answer(self, mode: str, route: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        if mode == "echo-401":
            echoed = "\n".join(f"{k}: {v}" for k, v in headers.items())
            return 401, {"Content-Type": "text/plain"}, [f"invalid credentials; you sent:\n{echoed}\n"
                                                         f"{json.dumps({'received_headers': headers})}".encode()]
        if mode == "not-json":
            return 200, {"Content-Type": "text/html"}, [b"<html><body><h1>502 Bad Gateway</h1></body></html>"]
        if mode == "wrong-json":
            return 200, {"Content-Type": "application/json"}, [b'{"object": "list"}']
        if mode in ("huge", "huge-declared"):
            return self._huge(mode)
        texts = body.get("input") if route == "/embeddings" else body.get("documents")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        if route == "/embeddings":
            items = [{"object": "embedding", "index": 0 if mode == "bad-index" else i,
                      "embedding": self._vector(mode, t, i)}
                     for i, t in enumerate(texts)]
            payload: dict[str, Any] = {"object": "list", "data": items[::-1], "model": body.get("model", "")}
        elif route == "/rerank":
            results = [{"index": 0 if mode == "bad-index" else i,
                        "relevance_score": self._score(mode, str(body.get("query", "")), t)}
                       for i, t in enumerate(texts)]
            payload = {"results": sorted(results, key=lambda r: str(r["relevance_score"]), reverse=True)}
        elif route == "/chat/completions":  # an LLM: a fixed short answer (what a trickle stretches out)
            payload = {"id": "chat-1", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "ok"}}]}
        else:
            return 404, {"Content-Type": "text/plain"}, [f"no route {route}".encode()]
        data = json.dumps(payload).encode()  # NaN and Infinity as JSON's non-standard literals, as servers write them
        if mode.startswith("trickle"):
            return self._trickle(mode, data)
        return 200, {"Content-Type": "application/json", "Content-Length": str(len(data))}, [data]

    def _poisoned(self, mode: str, text: str) -> bool:
        probe = text in PROBE_MARKERS
        return mode == "nan" or (mode == "nan-probe" and probe) or (mode == "nan-texts" and not probe)

    def _vector(self, mode: str, text: str, i: int) -> Any:
        row: list[Any] = vector(text, self.dim)
        if self._poisoned(mode, text):
            return [math.nan] * self.dim
        if mode == "inf":
            row[0] = math.inf
        elif mode == "strings":
            row = [str(x) for x in row]
        elif mode == "ragged":
            row = row[:self.dim - i % 2]
        elif mode == "wrong-dim":
            row = row[:-1]
        return row

    def _score(self, mode: str, query: str, text: str) -> Any:
        value: Any = score(query, text)
        if self._poisoned(mode, text):
            return math.nan
        if mode == "inf":
            return math.inf
        if mode == "strings":
            return str(value)
        return value

    def _huge(self, mode: str) -> Any:
        def write(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            if mode == "huge-declared":
                handler.send_header("Content-Length", str(self.huge_bytes))
            handler.end_headers()
            chunk = b"0.123456789, " * 5041  # 65,533 bytes
            written = 0
            try:
                handler.wfile.write(b'{"object": "list", "data": [{"index": 0, "embedding": [')
                while written < self.huge_bytes:
                    handler.wfile.write(chunk)
                    written += len(chunk)
                    with self._lock:
                        self.sent[mode] += len(chunk)
            except OSError:
                return  # the client hung up: what the test wants

        return write

    def _trickle(self, mode: str, data: bytes) -> Any:
        def write(handler: BaseHTTPRequestHandler) -> None:
            head = (f"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                    .encode())
            try:
                if mode == "trickle-body":
                    handler.wfile.write(head)
                    handler.wfile.flush()
                    slow = data
                else:
                    slow = head + data
                for i in range(len(slow)):
                    handler.wfile.write(slow[i:i + 1])
                    handler.wfile.flush()
                    with self._lock:
                        self.sent[mode] += 1
                    time.sleep(self.trickle_s)
            except OSError:
                return

        return write


def _handler(server: MisbehavingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a reply without Content-Length ends at close

        def do_POST(self) -> None:  # noqa: N802
            parts = self.path.split("/", 3)  # "", mode, "v1", route
            mode, route = (parts[1], "/" + parts[3]) if len(parts) == 4 else ("", self.path)
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            headers = {k: v for k, v in self.headers.items()}
            with server._lock:
                server.requests.append((mode, route, headers))
            answer = server.answer(mode, route, body if isinstance(body, dict) else {}, headers)
            if callable(answer):
                answer(self)
                return
            status, extra, chunks = answer
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(chunk)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    return Handler


if __name__ == "__main__":
    with MisbehavingServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0) as running:
        print(f"misbehaving model server on {running.url('MODE')}", flush=True)
        threading.Event().wait()
