"""`evolve serve` as a real process on a free port, with its real DuckDB feedback store."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from evalsets import load_evalset
from evalsets.feedback import FeedbackStore, read_snapshot
from postgres import free_port

BM25 = "name: bm25-english\nlexical: {tokenizer: english}\nfusion: {kind: none}\n"


def cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200", **(env or {})})


class Server:
    def __init__(self, corpus, project, *extra, token=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (project / "bm25.yaml").write_text(BM25)
        env = {**os.environ, **({"EVOLVE_API_TOKEN": token} if token else {})}
        self.process = subprocess.Popen([sys.executable, "-m", "agent.cli", "serve", "--corpus", str(corpus),
                                         "--config", "bm25.yaml", "--port", str(self.port), "--project-dir",
                                         str(project), "--snapshot-every", "0.5", *extra], cwd=project, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 120
        while True:
            try:
                httpx.get(self.url + "/health", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                assert self.process.poll() is None, self.process.stdout.read()
                assert time.time() < deadline
                time.sleep(0.3)

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        self.process.wait(timeout=60)


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
        ("/answer", {"query": "x"}, 503, "no LLM is configured"),
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
    result = cli("feedback", "failures", "--out", str(tmp_path / "failures"), "--project-dir", str(tmp_path),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "13 bad ratings -> 6 queries" in result.stdout and "6 duplicates merged" in result.stdout
    failures = load_evalset(tmp_path / "failures")  # the standard layout, validated
    assert {q.text: next(iter(failures.qrels[q.query_id])) for q in failures.queries} == wanted


def test_feedback_import_validates_every_line(tmp_path, tiny_scifact):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"rating": "bad", "query": "q1"}\n{"rating": "terrible", "query": "q2"}\n')
    result = cli("feedback", "import", str(bad), "--project-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "bad.jsonl:2: rating must be 'good' or 'bad'" in result.stderr
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"rating": "bad", "query": f"q{i}", "correct_doc_id": "d"}) + "\n"
                            for i in range(5)))
    result = cli("feedback", "import", str(good), "--project-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and "imported 5 feedback events" in result.stdout
    store = FeedbackStore(tmp_path / ".evolve" / "feedback.duckdb")
    assert store.count("feedback") == 5
    store.close()


def test_non_loopback_bind_requires_a_token_and_the_token_is_enforced(tiny_scifact, tmp_path):
    refused = cli("serve", "--corpus", str(tiny_scifact), "--host", "0.0.0.0", "--project-dir", str(tmp_path),
                  cwd=tmp_path)
    assert refused.returncode == 2 and "give --token" in refused.stderr
    server = Server(tiny_scifact, tmp_path, token="s3cret")
    try:
        assert httpx.post(server.url + "/search", json={"query": "x"}).status_code == 401
        ok = httpx.post(server.url + "/search", json={"query": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    finally:
        server.stop()
