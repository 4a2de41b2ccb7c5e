"""`evolve serve` cannot be held by /answer or by connections: a real server process with a token, one LLM slot, a
short answer deadline and head timeout, in front of a local OpenAI-protocol LLM that holds or trickles its replies
as the test says, and a thousand sockets that never finish their request head."""

import json
import resource
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from helpers import Server, evolve

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "slow-model"
WAIT_S, DEADLINE_S, HEAD_S = 1, 6, 4
"""--answer-wait, --answer-timeout and --head-timeout of the server under test."""
SLOW_SOCKETS, LIMIT = 1000, 1050
"""Sockets that send half a request head, and --limit-concurrency: room for them, /health and a few more."""


class SlowLLM:
    """A chat-completions server on 127.0.0.1 whose ``mode`` says how it replies: "fast"; "hold" (until ``release``
    is set; ``arrived`` counts held requests); "trickle" (the reply's head at once, then one byte every 0.2 s until
    ``stop`` is set)."""

    def __init__(self):
        self.mode, self.release, self.stop = "fast", threading.Event(), threading.Event()
        self.arrived = threading.Semaphore(0)
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if llm.mode != "trickle":
                    self.wfile.write(body)
                    return
                for byte in body:  # the openai client's per-read timeout never fires: a byte comes every 0.2 s
                    if llm.stop.wait(0.2):
                        self.close_connection = True
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def do_GET(self):
                self.reply({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if llm.mode == "hold":
                    llm.arrived.release()
                    llm.release.wait(60)
                self.reply({"id": "c1", "object": "chat.completion", "created": 0, "model": MODEL,
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": "It is answered [x]."}}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def llm():
    server = SlowLLM()
    yield server
    server.close()


@pytest.fixture(scope="module")
def limited(tiny_scifact, tmp_path_factory, llm):
    project = tmp_path_factory.mktemp("limited")
    log = project / "serve.log"
    running = Server(tiny_scifact, project, "--answer-slots", "1", "--answer-wait", str(WAIT_S), "--answer-timeout",
                     str(DEADLINE_S), "--head-timeout", str(HEAD_S), "--limit-concurrency", str(LIMIT), token=TOKEN,
                     llm=("--llm-base-url", llm.url, "--llm-model", MODEL), log=log)
    running.log = log
    yield running
    if running.process.poll() is None:
        running.stop()


def timed(method, url, **request):
    started = time.perf_counter()
    response = httpx.request(method, url, headers=AUTH, timeout=30, **request)
    return response, time.perf_counter() - started


def health_and_search_are_quick(server):
    """/health and /search each answer 200 within a second."""
    for method, path, body in (("GET", "/health", None), ("POST", "/search", {"query": "cancer cells"})):
        response, seconds = timed(method, server.url + path, json=body)
        assert response.status_code == 200 and seconds < 1, (path, response.status_code, seconds)


def slots(server):
    return httpx.get(server.url + "/health", headers=AUTH, timeout=5).json()["answers"]["slots"]


def wait_for_free_slot(server):
    for _ in range(100):
        if slots(server)["busy"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(slots(server))


def test_a_busy_llm_slot_is_a_quick_503_with_retry_after_and_health_and_search_do_not_wait(limited, llm):
    llm.mode = "hold"
    llm.release.clear()
    held = {}
    holder = threading.Thread(target=lambda: held.update(zip(("response", "seconds"), timed(
        "POST", limited.url + "/answer", json={"query": "cancer cells"}))))
    holder.start()
    try:
        assert llm.arrived.acquire(timeout=30)  # the one slot's call is at the LLM now
        refused = []
        askers = [threading.Thread(target=lambda: refused.append(timed("POST", limited.url + "/answer",
                                                                       json={"query": "vaccine trial"})))
                  for _ in range(3)]
        for asker in askers:
            asker.start()
        health_and_search_are_quick(limited)  # while three answers wait for the slot and one holds it
        for asker in askers:
            asker.join(30)
        assert slots(limited) == {"slots": 1, "busy": 1, "past_deadline": 0}
    finally:
        llm.release.set()
        holder.join(30)
        llm.mode = "fast"
    assert len(refused) == 3
    for response, seconds in refused:
        assert response.status_code == 503 and WAIT_S <= seconds < WAIT_S + 2, (response.text, seconds)
        assert "all 1 LLM slots are busy" in response.json()["detail"]
        assert 1 <= int(response.headers["retry-after"]) <= DEADLINE_S
    assert held["response"].status_code == 200, held["response"].text  # the slot's holder got its answer
    assert held["response"].json()["answer"] == "It is answered [x]."
    wait_for_free_slot(limited)


def test_a_trickling_llm_ends_the_answer_at_its_deadline(limited, llm):
    llm.mode, outcome = "trickle", {}
    llm.stop.clear()
    asker = threading.Thread(target=lambda: outcome.update(zip(("response", "seconds"), timed(
        "POST", limited.url + "/answer", json={"query": "cancer cells trickled"}))))  # a query the LLM cache lacks
    asker.start()
    try:
        time.sleep(0.5)
        health_and_search_are_quick(limited)  # while the LLM trickles
        asker.join(DEADLINE_S + 10)
        response, seconds = outcome["response"], outcome["seconds"]
        assert response.status_code == 504 and DEADLINE_S <= seconds < DEADLINE_S + 3, (response.text, seconds)
        detail = response.json()["detail"]
        assert detail["message"] == (f"the LLM did not finish the answer within the {DEADLINE_S} s an answer may "
                                     f"take (`evolve serve --answer-timeout`)") and detail["request_id"]
        # the LLM client's own whole-call deadline (the answer's + 1 s) ends the trickled call too, so the slot comes
        # back without waiting for the LLM to stop sending (it trickles on until the test stops it)
        freed = time.monotonic()
        wait_for_free_slot(limited)
        assert time.monotonic() - freed < 5 and not llm.stop.is_set()
        health_and_search_are_quick(limited)
    finally:
        llm.mode = "fast"
        llm.stop.set()  # the trickle ends; the client's retry gets a fast reply and the slot is free again
    wait_for_free_slot(limited)
    again, _ = timed("POST", limited.url + "/answer", json={"query": "cancer cells again"})
    assert again.status_code == 200, again.text
    rated = httpx.post(limited.url + "/feedback", headers=AUTH, json={"request_id": detail["request_id"],
                                                                      "rating": "bad"})
    assert rated.status_code == 200, rated.text  # the request past its deadline was recorded


def first_bytes(sockets, seconds):
    """What each socket has received within ``seconds`` (b"" for those that got nothing)."""
    got, ends = {}, time.monotonic() + seconds
    with selectors.DefaultSelector() as waiting:  # epoll: select() takes no descriptor past 1023
        for sock in sockets:
            waiting.register(sock, selectors.EVENT_READ)
        while len(got) < len(sockets) and time.monotonic() < ends:
            for key, _ in waiting.select(max(0.0, ends - time.monotonic())):
                try:
                    got[key.fileobj] = key.fileobj.recv(200)
                except ConnectionError:
                    got[key.fileobj] = b""
                waiting.unregister(key.fileobj)
    return [got.get(sock, b"") for sock in sockets]


def fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_a_thousand_unfinished_heads_do_not_hold_the_server(limited):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = SLOW_SOCKETS + 2 * (LIMIT - SLOW_SOCKETS) + 200
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    before = fds(limited.process.pid)
    slow = []
    try:
        for _ in range(SLOW_SOCKETS):  # before any token: half a head, never the blank line that ends it
            sock = socket.create_connection(("127.0.0.1", limited.port), timeout=10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        for _ in range(50):  # until the server has accepted them all (they wait in the backlog till then)
            if fds(limited.process.pid) >= before + SLOW_SOCKETS - 10:  # give or take a file the server had open
                break
            time.sleep(0.05)
        assert fds(limited.process.pid) >= before + SLOW_SOCKETS - 10, before
        health_and_search_are_quick(limited)  # with a thousand connections held open

        extra = [socket.create_connection(("127.0.0.1", limited.port), timeout=10)
                 for _ in range(2 * (LIMIT - SLOW_SOCKETS))]  # past --limit-concurrency: a 503 as they open
        try:
            replies = first_bytes(extra, seconds=3)
            refused = sum(reply.startswith(b"HTTP/1.1 503") and b"too many connections" in reply for reply in replies)
            assert LIMIT - SLOW_SOCKETS - 10 <= refused <= LIMIT - SLOW_SOCKETS + 10, refused
        finally:
            for sock in extra:
                sock.close()

        closed, ends = 0, time.monotonic() + HEAD_S + 20
        for sock in slow:  # the server closes each at its head deadline
            sock.settimeout(max(0.01, ends - time.monotonic()))
            try:
                closed += sock.recv(100) == b""
            except (TimeoutError, ConnectionError):
                pass
        assert closed == SLOW_SOCKETS
    finally:
        for sock in slow:
            sock.close()
    health_and_search_are_quick(limited)
    assert fds(limited.process.pid) < before + 50
    log = limited.log.read_text()
    assert limited.log.stat().st_size < 1_000_000
    assert 1 <= log.count("sent no whole request head") <= 5, log[-3000:]  # 1,000 closes, rate-limited lines
    assert 1 <= log.count("refused a connection") <= 5, log[-3000:]


def test_a_bare_health_with_a_body_that_never_comes_answers_and_is_closed(limited):
    """Without the token only GET /health answers; a body it declares is not waited for, and the connection is
    closed at the head deadline after the reply."""
    with socket.create_connection(("127.0.0.1", limited.port), timeout=HEAD_S + 10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
        reply = sock.recv(1000)
        assert reply.startswith(b"HTTP/1.1 200") and time.monotonic() - started < 1, reply
        rest = b""
        while chunk := sock.recv(1000):
            rest += chunk
        assert time.monotonic() - started < HEAD_S + 5 and b"HTTP/1.1" not in rest


def test_serve_help_documents_the_connection_and_answer_limits(tmp_path):
    from agent.http_guard import ConnectionLimits

    text = " ".join(word for word in evolve("serve", "--help", cwd=tmp_path).stdout.split() if word != "│")
    for option in ("--answer-timeout", "--answer-wait", "--answer-slots", "--head-timeout", "--limit-concurrency",
                   "--backlog"):
        assert option in text
    for value in (ConnectionLimits.head_timeout_s, ConnectionLimits.limit_concurrency, ConnectionLimits.backlog):
        assert f"[default: {value}]" in text
