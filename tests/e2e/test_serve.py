"""`evolve serve` as a real process on a free port, with its real DuckDB feedback store."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from evalsets import load_evalset
from evalsets.failures import gating_subset
from evalsets.feedback import FeedbackStore, read_snapshot
from helpers import Server, evolve, jsonl, send_json


@pytest.fixture
def server(tiny_scifact, tmp_path):
    running = Server(tiny_scifact, tmp_path)
    yield running
    if running.process.poll() is None:
        running.stop()


def test_search_feedback_and_clear_errors(server, tiny_scifact):
    data = load_evalset(tiny_scifact)
    query = data.queries[0]
    health = httpx.get(server.url + "/health").json()
    assert health["config"] == "bm25-english" and health["documents"] == len(data.corpus)
    assert health["answers"] == {"on": False, "reason": "this server was started with --no-llm (search only)"}
    found = httpx.post(server.url + "/search", json={"query": query.text, "k": 5}).json()
    assert len(found["hits"]) == 5 and [h["rank"] for h in found["hits"]] == [1, 2, 3, 4, 5]
    assert len({h["doc_id"] for h in found["hits"]}) == 5
    found_relevant = sum(
        bool({h["doc_id"] for h in httpx.post(server.url + "/search", json={"query": q.text, "k": 5}).json()["hits"]}
             & set(data.qrels[q.query_id])) for q in data.queries)
    assert found_relevant >= 0.6 * len(data.queries)
    ok = httpx.post(server.url + "/feedback", json={"request_id": found["request_id"], "rating": "good"})
    assert ok.status_code == 200 and ok.json()["feedback_id"]

    bad_calls = [
        ("/search", {"query": ""}, 422, "at least 1 character"),
        ("/search", {"query": "x", "k": 0}, 422, "greater than or equal to 1"),
        ("/search", {"text": "wrong field"}, 422, "Field required"),
        ("/feedback", {"request_id": found["request_id"], "rating": "meh"}, 422, "'good' or 'bad'"),
        ("/feedback", {"request_id": "nope", "rating": "bad"}, 404, "unknown request_id 'nope'"),
        ("/feedback", {"request_id": found["request_id"], "rating": "bad", "correct_doc_id": "zzz"}, 422,
         "not a document of this corpus"),
        ("/answer", {"query": "x"}, 503, "answers are off: this server was started with --no-llm"),
    ]
    for path, body, status, message in bad_calls:
        response = httpx.post(server.url + path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert message in response.text
    assert httpx.post(server.url + "/search", content=b"{not json", headers={"content-type": "application/json"}
                      ).status_code == 422
    schema = httpx.get(server.url + "/openapi.json").json()
    assert {"/search", "/answer", "/feedback", "/health"} <= set(schema["paths"])


def test_concurrent_feedback_while_a_reader_exports_loses_nothing(server, tiny_scifact):
    data = load_evalset(tiny_scifact)
    acknowledged, errors = [], []
    lock = threading.Lock()

    def user(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for i in range(15):
                query = data.queries[(worker + i) % len(data.queries)].text
                request_id = client.post("/search", json={"query": query, "k": 3}).json()["request_id"]
                response = client.post("/feedback", json={"request_id": request_id, "rating": "bad" if i % 2 else "good",
                                                          "comment": f"w{worker}-{i}"})
                with lock:
                    (acknowledged if response.status_code == 200 else errors).append(response.json())

    snapshots = []

    def reader() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while any(t.is_alive() for t in users):
                folder = client.post("/snapshot").json()["snapshot"]
                snapshots.append(read_snapshot(__import__("pathlib").Path(folder),
                                               "SELECT count(*) AS n FROM feedback")[0]["n"])

    users = [threading.Thread(target=user, args=(w,)) for w in range(8)]
    for t in users:
        t.start()
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in users:
        t.join()
    watcher.join()
    assert not errors and len(acknowledged) == 120
    assert snapshots and snapshots == sorted(snapshots)  # the reader always saw a consistent, growing table
    final = httpx.post(server.url + "/snapshot").json()
    assert final["feedback"] == 120 and final["requests"] == 120


def test_sigkill_loses_no_acknowledged_feedback(tiny_scifact, tmp_path):
    server = Server(tiny_scifact, tmp_path)
    data = load_evalset(tiny_scifact)
    acked = []
    for query in data.queries[:10]:
        request_id = httpx.post(server.url + "/search", json={"query": query.text}).json()["request_id"]
        response = httpx.post(server.url + "/feedback", json={"request_id": request_id, "rating": "bad"})
        assert response.status_code == 200
        acked.append(response.json()["feedback_id"])
    server.stop(signal.SIGKILL)
    store = FeedbackStore(tmp_path / ".evolve" / "feedback.duckdb")
    stored = {r["feedback_id"] for r in store.rows("SELECT feedback_id FROM feedback")}
    store.close()
    assert stored == set(acked)


def test_scripted_bad_feedback_becomes_a_failure_set(server, tiny_scifact, tmp_path):
    data = load_evalset(tiny_scifact)
    wanted = {}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for query in data.queries[:6]:
            right = sorted(data.qrels[query.query_id])[0]
            for text in (query.text, "  " + query.text.upper() + " "):  # the same question twice, written differently
                request_id = client.post("/search", json={"query": text}).json()["request_id"]
                client.post("/feedback", json={"request_id": request_id, "rating": "bad",
                                               "correct_doc_id": right}).raise_for_status()
            wanted[query.text] = right
        request_id = client.post("/search", json={"query": "no right doc known"}).json()["request_id"]
        client.post("/feedback", json={"request_id": request_id, "rating": "bad"}).raise_for_status()
        request_id = client.post("/search", json={"query": "this one was fine"}).json()["request_id"]
        client.post("/feedback", json={"request_id": request_id, "rating": "good"}).raise_for_status()
    result = evolve("feedback", "failures", "--out", str(tmp_path / "failures"), "--project-dir", str(tmp_path),
                 "--no-judge", cwd=tmp_path)  # the judge's part: test_feedback_judge.py
    assert result.returncode == 0, result.stderr
    assert "13 bad ratings -> 6 queries" in result.stdout and "6 duplicates merged" in result.stdout
    assert "1 left out without a known right document, 1 not judged" in result.stdout
    failures = load_evalset(tmp_path / "failures")  # the standard layout, validated
    assert {q.text: next(iter(failures.qrels[q.query_id])) for q in failures.queries} == wanted
    # provenance survives the loader: both ratings of each question, and where they came from
    assert all(q.extra["sources"] == ["api"] and len(q.extra["request_ids"]) == 2 for q in failures.queries)
    assert len(gating_subset(failures, ["api"]).queries) == 6 and not gating_subset(failures, ["import"]).queries


def test_feedback_import_validates_every_line(tmp_path, tiny_scifact):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"rating": "bad", "query": "q1"}\n{"rating": "terrible", "query": "q2"}\n')
    result = evolve("feedback", "import", str(bad), "--project-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "bad.jsonl:2: rating: Input should be 'good' or 'bad'" in result.stderr
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"rating": "bad", "query": f"q{i}", "correct_doc_id": "d"}) + "\n"
                            for i in range(5)))
    result = evolve("feedback", "import", str(good), "--project-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and "5 feedback events, 5 new" in result.stdout
    assert "correct_doc_id not checked (give --corpus)" in result.stdout
    store = FeedbackStore(tmp_path / ".evolve" / "feedback.duckdb")
    assert store.count("feedback") == 5
    store.close()


def test_non_loopback_bind_requires_a_token_and_the_token_is_enforced(tiny_scifact, tmp_path):
    refused = evolve("serve", "--corpus", str(tiny_scifact), "--host", "0.0.0.0", "--project-dir", str(tmp_path),
                  cwd=tmp_path)
    assert refused.returncode == 2 and "give --token" in refused.stderr
    server = Server(tiny_scifact, tmp_path, token="s3cret")
    try:
        assert httpx.post(server.url + "/search", json={"query": "x"}).status_code == 401
        ok = httpx.post(server.url + "/search", json={"query": "cancer"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    finally:
        server.stop()


def server_info(project):
    return json.loads((project / ".evolve" / "server.json").read_text())


def feedback_count(project):
    store = FeedbackStore(project / ".evolve" / "feedback.duckdb")
    try:
        return store.count("feedback")
    finally:
        store.close()


def test_cli_import_is_whole_or_nothing_idempotent_and_checked(tmp_path, tiny_scifact):
    project = tmp_path / "project"
    data = load_evalset(tiny_scifact)
    doc = data.corpus[0].doc_id

    def run(path, *extra):
        return evolve("feedback", "import", str(path), "--project-dir", str(project), *extra, cwd=tmp_path)

    broken = jsonl(tmp_path / "broken.jsonl", [{"rating": "bad", "query": "q1"}, {"rating": "bad", "query": "q2"},
                                               {"rating": "bad", "query": True}, "", "{not json"])
    result = run(broken)
    assert result.returncode == 2 and "2 line(s) bad, nothing imported" in result.stderr
    assert "broken.jsonl:3: query: Input should be a valid string" in result.stderr
    assert "broken.jsonl:5: bad JSON" in result.stderr
    assert not (project / ".evolve" / "feedback.duckdb").exists()

    good = jsonl(tmp_path / "good.jsonl", [{"rating": "bad", "query": f"question {i}", "correct_doc_id": doc}
                                           for i in range(4)])
    first = run(good, "--corpus", str(tiny_scifact))
    assert first.returncode == 0, first.stderr
    assert "4 feedback events, 4 new, 0 already present" in first.stdout
    assert f"correct_doc_id against {tiny_scifact}" in first.stdout
    second = run(good)
    assert second.returncode == 0 and "4 feedback events, 0 new, 4 already present" in second.stdout
    assert feedback_count(project) == 4

    for rows, message in [
        ([{"rating": "bad", "query": "fine"}, {"rating": "bad", "query": "q", "correct_doc_id": "zzz"}],
         "mixed.jsonl:2: correct_doc_id 'zzz' is not a document of this corpus"),
        ([{"rating": "bad", "query": "fine"}, {"rating": "bad", "request_id": "nope"}],
         "mixed.jsonl:2: unknown request_id 'nope'"),
    ]:
        refused = run(jsonl(tmp_path / "mixed.jsonl", rows), "--corpus", str(tiny_scifact))
        assert refused.returncode == 2 and message in refused.stderr and "nothing imported" in refused.stderr
    assert feedback_count(project) == 4  # the good first lines were not stored either

    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes('{"rating": "bad", "query": "caf\u00e9"}\n'.encode("latin-1"))
    result = run(latin)
    assert result.returncode == 2 and "latin1.jsonl" in result.stderr and "not valid UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_sigterm_removes_server_json_and_health_echoes_the_nonce(server, tmp_path):
    path = tmp_path / ".evolve" / "server.json"
    info = json.loads(path.read_text())
    assert info["pid"] == server.process.pid and len(info["nonce"]) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert httpx.get(server.url + "/health").json()["nonce"] == info["nonce"]
    server.stop(signal.SIGTERM)
    output = server.process.stdout.read()
    assert server.process.returncode == 0 and "stopped (SIGTERM)" in output, output
    assert not path.exists()
    assert read_snapshot(tmp_path / ".evolve" / "feedback-snapshot", "SELECT count(*) AS n FROM feedback") == [
        {"n": 0}]  # the cleanup ran: a last export


def test_import_through_the_server_needs_the_token_and_is_one_checked_batch(tiny_scifact, tmp_path):
    data = load_evalset(tiny_scifact)
    server = Server(tiny_scifact, tmp_path, "--max-import-batch", "4", token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    env = {"EVOLVE_API_TOKEN": "s3cret"}
    try:
        row = {"rating": "bad", "query": "from the helpdesk"}
        assert httpx.post(server.url + "/feedback/import", json=[row]).status_code == 401
        assert httpx.post(server.url + "/feedback/import", json=[row],
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
        query = data.queries[0]
        request_id = httpx.post(server.url + "/search", json={"query": query.text}, headers=auth).json()["request_id"]
        rated = [httpx.post(server.url + "/feedback", json={"request_id": request_id, "rating": "good"},
                            headers=auth).json() for _ in range(2)]
        assert rated[0]["feedback_id"] == rated[1]["feedback_id"] and [r["new"] for r in rated] == [True, False]
        assert httpx.post(server.url + "/feedback", json={"rating": "bad", "query": "no request"},
                          headers=auth).status_code == 422

        refused = httpx.post(server.url + "/feedback/import", headers=auth,
                             json=[{"rating": "bad", "request_id": request_id},
                                   {"rating": "bad", "query": "q", "k": True}, {"rating": "bad", "query": 3}])
        assert refused.status_code == 422
        assert [(e["index"], e["error"].split(":")[0]) for e in refused.json()["detail"]["errors"]] == [(1, "k"),
                                                                                                        (2, "query")]

        right = sorted(data.qrels[query.query_id])[0]
        good = jsonl(tmp_path / "good.jsonl", [{"rating": "bad", "request_id": request_id, "correct_doc_id": right},
                                               {"rating": "bad", "query": "helpdesk question", "event_id": "hd-1"}])
        first = evolve("feedback", "import", str(good), "--project-dir", str(tmp_path), cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        assert "2 feedback events, 2 new, 0 already present" in first.stdout and server.url in first.stdout
        again = evolve("feedback", "import", str(good), "--project-dir", str(tmp_path), cwd=tmp_path, env=env)
        assert again.returncode == 0 and "2 feedback events, 0 new, 2 already present" in again.stdout

        for rows, message in [
            ([{"rating": "bad", "query": "ok"}, {"rating": "bad", "request_id": "nope"}],
             "bad.jsonl:2: unknown request_id 'nope'"),
            ([{"rating": "bad", "query": "ok"}, {"rating": "bad", "query": "q", "correct_doc_id": "zzz"}],
             "bad.jsonl:2: correct_doc_id 'zzz' is not a document of this corpus"),
            ([{"rating": "bad", "query": f"q{i}"} for i in range(5)], "more than this server takes in one import (4"),
        ]:
            result = evolve("feedback", "import", str(jsonl(tmp_path / "bad.jsonl", rows)), "--project-dir", str(tmp_path),
                         cwd=tmp_path, env=env)
            assert result.returncode == 2 and message in result.stderr, result.stderr
        no_token = evolve("feedback", "import", str(good), "--project-dir", str(tmp_path), cwd=tmp_path)
        assert no_token.returncode == 2 and "401" in no_token.stderr and "EVOLVE_API_TOKEN" in no_token.stderr
        assert httpx.post(server.url + "/snapshot", headers=auth).json()["feedback"] == 3
    finally:
        server.stop(signal.SIGINT)
    output = server.process.stdout.read()
    assert server.process.returncode == 0 and not (tmp_path / ".evolve" / "server.json").exists(), output


class FakeServer:
    """Whatever now listens at a stale server.json's URL: records what it is sent, echoes a nonce of its choice."""

    def __init__(self, nonce, snapshot="/nowhere"):
        self.seen = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def reply(self, body):
                owner.seen.append((self.command, self.path, self.headers.get("Authorization")))
                send_json(self, body)

            def do_GET(self):
                self.reply({"status": "ok", "nonce": nonce})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.reply({"snapshot": snapshot, "requests": 0, "feedback": 0})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def write_server_json(project, url, nonce, pid, corpus):
    (project / ".evolve").mkdir(parents=True, exist_ok=True)
    (project / ".evolve" / "server.json").write_text(json.dumps(
        {"url": url, "pid": pid, "host": socket.gethostname(), "nonce": nonce, "corpus": str(corpus)}))


def test_a_stale_server_json_gets_no_token_and_no_say_over_paths(tmp_path, tiny_scifact, monkeypatch):
    data = load_evalset(tiny_scifact)
    doc = data.corpus[0].doc_id
    env = {"EVOLVE_API_TOKEN": "s3cret"}
    rows = jsonl(tmp_path / "rows.jsonl", [{"rating": "bad", "query": "why is the sky blue", "correct_doc_id": doc}])

    spoof = FakeServer(nonce="b" * 32)
    try:  # another process answers at the URL: it does not echo this file's nonce, so it gets no token
        write_server_json(tmp_path, spoof.url, "a" * 32, os.getpid(), tiny_scifact)
        result = evolve("feedback", "import", str(rows), "--project-dir", str(tmp_path), cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert "ignoring stale" in result.stderr and "does not echo the nonce" in result.stderr
        assert spoof.seen == [("GET", "/health", None)]
        assert "feedback.duckdb" in result.stdout  # stored locally instead
    finally:
        spoof.close()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    spoof = FakeServer(nonce="a" * 32)
    try:  # the server that wrote the file is gone: nothing is asked of whatever listens now
        write_server_json(tmp_path, spoof.url, "a" * 32, dead.pid, tiny_scifact)
        result = evolve("feedback", "import", str(rows), "--project-dir", str(tmp_path), cwd=tmp_path, env=env)
        assert result.returncode == 0 and f"server process {dead.pid} is gone" in result.stderr
        assert spoof.seen == []
    finally:
        spoof.close()

    # even a server that passes the check (it echoes the nonce) has no say over which files are read
    monkeypatch.chdir(tmp_path)
    crafted = tmp_path / "x'); COPY (SELECT 42 AS x) TO 'pwned.csv'; --"
    spoof = FakeServer(nonce="a" * 32, snapshot=str(crafted))
    try:
        write_server_json(tmp_path, spoof.url, "a" * 32, os.getpid(), tiny_scifact)
        result = evolve("feedback", "failures", "--out", str(tmp_path / "failures"), "--project-dir", str(tmp_path),
                     cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert ("POST", "/snapshot", "Bearer s3cret") in spoof.seen
        assert "1 bad ratings -> 1 queries" in result.stdout  # read from this project's own snapshot
        assert not (tmp_path / "pwned.csv").exists() and not crafted.exists()
    finally:
        spoof.close()
    failures = load_evalset(tmp_path / "failures")
    assert failures.queries[0].extra["sources"] == ["import"] and failures.queries[0].extra["request_ids"] == []
