"""`evolve serve --shadow/--interleave` as a real process: a registered candidate on live traffic, its part stored
with each request, credited by feedback, and `evolve feedback compare` reading it back."""

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import yaml
from helpers import free_port, require_smollm2, wait_healthy

from agent.project import open_project
from evalsets import load_evalset
from evalsets.feedback import FeedbackStore
from experiments.splits import tune_and_heldout
from guardrails import Policy, guard_and_register
from pipelines import PipelineConfig

CHAMPION = "name: bm25-english\nlexical: {tokenizer: english}\nfusion: {kind: none}\n"
PERMISSIVE = Policy(min_gain=-1, significance={"p_value": 1.0}, max_regression={"default": 1}, min_queries=3,
                    allowed_licences=["Apache-2.0", "MIT"],
                    max_latency_p95_ms=60_000)


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "COLUMNS": "200"})


class Server:
    """`evolve serve` of the BM25 champion file on a free port, search only, with ``extra`` options."""

    def __init__(self, corpus, project, *extra, llm=("--no-llm",), config=CHAMPION, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (project / "champion-file.yaml").write_text(config)
        self.log = project / f"serve-{self.port}.log"
        with open(self.log, "w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "serve", "--corpus", str(corpus), "--config", "champion-file.yaml",
                 "--port", str(self.port), "--project-dir", str(project), "--snapshot-every", "0.5", *llm,
                 *extra], cwd=project, env={**os.environ, "EVOLVE_ACTOR": "reviewer-ann", **(env or {})}, stdout=output,
                stderr=subprocess.STDOUT, text=True)
        wait_healthy(self.url, self.process, self.log.read_text, 180)

    def health(self):
        return httpx.get(self.url + "/health").json()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def project(tiny_scifact, tmp_path_factory, warm_components):
    """A project whose decision log holds three registered candidates on the tiny SciFact set: version 1 (BM25 with
    another tokenizer and parameters), version 2 (rejected afterwards, so it may not take traffic) and version 3 (a
    MiniLM + BM25 hybrid: a query costs it an embedding, far more than the champion's BM25)."""
    root = tmp_path_factory.mktemp("online-project")
    policy_file = root / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(PERMISSIVE.model_dump(mode="json")))
    default = root / "default.yaml"  # the project's starting champion, for the CLI too
    default.write_text(CHAMPION)
    proj = open_project(root, None, default)
    held = tune_and_heldout(tiny_scifact)[1]
    components = warm_components()
    for name, parts in (("bm25-regex-flat", {"lexical": {"tokenizer": "regex", "k1": 0.3, "b": 0.1}}),
                        ("bm25-english-k1", {"lexical": {"tokenizer": "english", "k1": 2.0}}),
                        ("hybrid-minilm", {"dense": {"model": "all-MiniLM-L6-v2"}, "lexical": {"tokenizer": "english"},
                                           "fusion": {"kind": "rrf"}})):
        config = PipelineConfig.model_validate({"name": name, "fusion": {"kind": "none"}, **parts})
        version = guard_and_register(proj, config, [held], PERMISSIVE, components)[1]
        assert version
    from guardrails import reject
    reject(proj, "2", "not this one", actor="reviewer-bob")
    return root


def traffic_rows(project):
    """The traffic table, read from the file once the server has stopped."""
    store = FeedbackStore(project / ".evolve" / "feedback.duckdb") if (project / ".evolve").is_dir() else None
    assert store is not None
    try:
        return store.rows("SELECT * FROM traffic ORDER BY ts")
    finally:
        store.close()


def settled(server):
    """/health's traffic once the shadow queue is empty and its last run is stored."""
    deadline = time.time() + 60
    while time.time() < deadline:
        health = server.health()["traffic"]
        if not health["queued"] and health["shadowed"] + health["dropped"] + health["unavailable"] == health["requests"]:
            return health
        time.sleep(0.2)
    raise AssertionError(f"the shadow queue did not settle: {health}")


def burst(url, queries, workers=8, per_worker=10):
    """Concurrent /search requests; (status codes, latencies in ms as the client saw them)."""
    statuses, latencies, lock = [], [], threading.Lock()

    def user(worker):
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(per_worker):
                started = time.perf_counter()
                response = client.post("/search", json={"query": queries[(worker * 7 + i) % len(queries)], "k": 5})
                with lock:
                    statuses.append(response.status_code)
                    latencies.append(1000 * (time.perf_counter() - started))

    threads = [threading.Thread(target=user, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, latencies


def test_only_registered_candidates_take_traffic(project, tiny_scifact):
    for version, said in (("7", "version 7 is not a registered candidate"),
                          ("2", "version 2 is 'rejected'; only candidates awaiting review can take traffic")):
        result = cli("serve", "--corpus", str(tiny_scifact), "--no-llm", "--port", "0", "--shadow", version,
                     "--project-dir", str(project), cwd=project)
        assert result.returncode == 2 and said in result.stdout + result.stderr, result.stdout + result.stderr
    both = cli("serve", "--corpus", str(tiny_scifact), "--no-llm", "--shadow", "1", "--interleave", "1",
               "--project-dir", str(project), cwd=project)
    assert both.returncode == 2 and "not both" in both.stdout + both.stderr


def test_shadow_runs_after_the_response_bounded_and_counted(project, tiny_scifact):
    data = load_evalset(tiny_scifact)
    queries = [q.text for q in data.queries]
    server = Server(tiny_scifact, project, "--shadow", "3", "--shadow-queue", "2")
    try:
        statuses, latencies = burst(server.url, queries)
        assert statuses == [200] * 80
        health = settled(server)
        assert health["mode"] == "shadow" and health["version"] == "3" and health["config"] == "hybrid-minilm"
        assert health["requests"] == 80 and health["candidate_available"] is True
        # the queue holds 2: a burst of 8 concurrent users outruns the worker, and the requests did not wait for it
        # (a response that waited for its shadow run would take at least one candidate run)
        assert health["dropped"] > 0 and health["shadowed"] + health["dropped"] == 80, health
        # one user, one request at a time: a response that waited for its shadow run would take at least one
        # candidate run (an embedding of the query); the champion's BM25 answers in a fraction of that
        alone = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for query in queries * 2:
                started = time.perf_counter()
                assert client.post("/search", json={"query": query, "k": 5}).status_code == 200
                alone.append(1000 * (time.perf_counter() - started))
                time.sleep(0.05)
        mean_candidate = settled(server)["candidate_ms_mean"]
        assert sorted(alone)[len(alone) // 2] < mean_candidate, (sorted(alone), mean_candidate)
        print(f"shadow: champion median {sorted(alone)[len(alone) // 2]:.1f} ms per request alone, "
              f"{sorted(latencies)[40]:.1f} ms in the burst; candidate {mean_candidate} ms per query; {health}")
        one = httpx.post(server.url + "/search", json={"query": queries[0], "k": 5}).json()
        time.sleep(1.0)
        right = data.qrels[data.queries[0].query_id]
        good = httpx.post(server.url + "/feedback", json={"request_id": one["request_id"], "rating": "good",
                                                          "used_doc_ids": [one["hits"][0]["doc_id"]]})
        assert good.status_code == 200, good.text
        unknown = httpx.post(server.url + "/feedback", json={"request_id": one["request_id"], "rating": "good",
                                                             "used_doc_ids": ["no-such-doc"]})
        assert unknown.status_code == 422 and "used_doc_ids: 'no-such-doc' is not a document" in unknown.text
        health = settled(server)
        compared = cli("feedback", "compare", "3", "--project-dir", str(project), cwd=project)  # via the server
        assert compared.returncode == 0, compared.stderr
        assert f"shadow: {health['shadowed']} requests (0 with the candidate unavailable)" in compared.stdout, \
            compared.stdout
        assert "documents of good ratings: 1; the candidate keeps" in compared.stdout
    finally:
        server.stop()
    rows = [r for r in traffic_rows(project) if r["mode"] == "shadow"]
    assert len(rows) == health["shadowed"] and all(r["status"] == "ok" and r["candidate"] for r in rows)
    assert right  # the set's qrels are there to mark right documents with (next test)
    log = open_project(project, None).log.rows()
    started = [r for r in log if r.action == "traffic-start" and r.info["mode"] == "shadow"]
    stopped = [r for r in log if r.action == "traffic-stop" and r.info["mode"] == "shadow"]
    assert started and started[-1].actor == "reviewer-ann" and started[-1].version == "3"
    assert stopped and stopped[-1].info["counts"]["dropped"] == health["dropped"]


def test_interleaved_requests_show_both_sides_and_feedback_credits_a_side(project, tiny_scifact):
    data = load_evalset(tiny_scifact)
    queries = [q.text for q in data.queries]
    server = Server(tiny_scifact, project, "--interleave", "1", "--share", "1.0", "--traffic-seed", "3")
    try:
        statuses, _ = burst(server.url, queries, workers=4, per_worker=5)
        assert statuses == [200] * 20
        health = server.health()["traffic"]
        assert (health["mode"], health["share"], health["interleaved"], health["unavailable"]) == ("interleave", 1.0,
                                                                                                  20, 0)
        credited = {"candidate": 0, "champion": 0}
        for query in data.queries[:6]:
            found = httpx.post(server.url + "/search", json={"query": query.text, "k": 5}).json()
            snapshot = httpx.post(server.url + "/snapshot").json()
            assert snapshot["requests"] > 0
            rows = traffic_rows_via_snapshot(project, found["request_id"])
            shown = rows["shown"]
            assert [s["doc_id"] for s in shown] == [h["doc_id"] for h in found["hits"]]  # the list served is the merge
            assert {h["doc_id"] for h in found["hits"]} <= {d.doc_id for d in data.corpus}
            # the user uses the first hit the candidate contributed (or the champion's when it contributed none)
            side = "candidate" if any(s["side"] == "candidate" for s in shown) else "champion"
            used = next(s["doc_id"] for s in shown if s["side"] == side)
            credited[side] += 1
            response = httpx.post(server.url + "/feedback", json={"request_id": found["request_id"], "rating": "good",
                                                                  "used_doc_ids": [used]})
            assert response.status_code == 200, response.text
        compared = cli("feedback", "compare", "1", "--project-dir", str(project), cwd=project)
        assert compared.returncode == 0, compared.stderr
        out = " ".join(compared.stdout.split())
        wins, losses = credited["candidate"], credited["champion"]
        assert f"{wins} wins, {losses} losses, {26 - wins - losses} ties over 26 interleaved queries" in out, out
        assert f"feedback: champion {losses}, candidate {wins}; citations: champion 0, candidate 0" in out
        # the reviewer's UI shows the same evidence: a dated section of version 1's MLflow page, beside the offline one
        assert "written to version 1's page in the MLflow UI" in out, out
        registry = open_project(project, None).registry
        page = registry.client.get_model_version(registry.name, "1")
        assert page.description.count("## Online evidence") == 1
        offline, online = page.description.split("## Online evidence")
        assert "ndcg@10" in offline.lower() and f"{wins} wins, {losses} losses" in " ".join(online.split())
        assert page.tags["evolve.online_verdict"].startswith("online: no significant loss on live traffic")
    finally:
        server.stop()
    log = open_project(project, None).log.rows()
    assert [r.info["mode"] for r in log if r.action == "traffic-start"][-1] == "interleave"
    assert [r.info["counts"]["interleaved"] for r in log if r.action == "traffic-stop"][-1] == 26


def traffic_rows_via_snapshot(project, request_id):
    from evalsets import read_snapshot, snapshot_folder

    rows = read_snapshot(snapshot_folder(project / ".evolve" / "feedback.duckdb"),
                         f"SELECT * FROM traffic WHERE request_id = '{request_id}'")
    assert len(rows) == 1
    import json
    return {name: json.loads(value) if name in ("shown", "champion", "candidate", "cited") and value else value
            for name, value in rows[0].items()}


def test_a_candidate_losing_on_live_traffic_is_shown_in_review_and_refused_by_approve(project, tiny_scifact):
    """Version 3 interleaved; every user uses a document the champion contributed, so the candidate loses every
    query that has a preference. With the policy's online rule on, review shows it failing (apart from the offline
    report) and approve refuses; without the rule, review shows the evidence and judges nothing."""
    data = load_evalset(tiny_scifact)
    server = Server(tiny_scifact, project, "--interleave", "3", "--share", "1", "--traffic-seed", "5")
    try:
        for query in data.queries:
            found = httpx.post(server.url + "/search", json={"query": query.text, "k": 4}).json()
            httpx.post(server.url + "/snapshot")
            shown = traffic_rows_via_snapshot(project, found["request_id"])["shown"]
            used = [s["doc_id"] for s in shown if s["side"] == "champion"][:1]
            assert httpx.post(server.url + "/feedback", json={"request_id": found["request_id"], "rating": "good",
                                                              "used_doc_ids": used}).status_code == 200
        off = cli("review", "3", "--project-dir", str(project), cwd=project)
        assert off.returncode == 0, off.stderr
        text = " ".join(off.stdout.split())
        assert "online evidence (live traffic in `evolve serve`; everything above is offline" in text
        assert f"0 wins, {len(data.queries)} losses, 0 ties over {len(data.queries)} interleaved queries" in text
        assert "(off): pass: the policy has no online section" in text
        policy_file = project / "policy.yaml"
        kept = policy_file.read_text()
        policy_file.write_text(kept + "online: {min_queries: 10, max_loss_p: 0.05}\n")
        try:
            on = cli("review", "3", "--project-dir", str(project), cwd=project)
            assert "FAIL: loses to the champion on live traffic" in " ".join(on.stdout.split()), on.stdout
            overview = " ".join(cli("review", "--project-dir", str(project), cwd=project).stdout.split())
            assert "online, version 3: FAIL: loses to the champion on live traffic" in overview, overview
            refused = cli("approve", "3", "--yes", "--reason", "looks fine offline", "--project-dir", str(project),
                          cwd=project)
            assert refused.returncode == 2
            assert "version 3 fails the policy's online rule: loses to the champion" in " ".join(
                (refused.stdout + refused.stderr).split())
        finally:
            policy_file.write_text(kept)
    finally:
        server.stop()
    states = [r.action for r in open_project(project, None).log.rows() if r.version == "3"]
    assert "approve" not in states and states.count("traffic-start") == states.count("traffic-stop") == 2


def test_a_candidate_whose_model_is_gone_is_left_out_never_a_500(project, tiny_scifact, tmp_path):
    """A registered candidate whose embedding model is not on this machine any more: serve starts, says so, and
    every interleaved request is served by the champion alone (counted in /health and stored)."""
    from guardrails import MACHINE_ACTOR, policy_sha256

    gone = PipelineConfig.model_validate({"name": "dense-gone", "dense": {"model": str(tmp_path / "no-model")},
                                          "fusion": {"kind": "none"}})
    proj = open_project(project, None)
    proj.log.append("register", "done", actor=MACHINE_ACTOR, model="evolve-retrieval-pipeline", version="9",
                    config_sha256=gone.sha256(), policy_sha256=policy_sha256(PERMISSIVE),
                    reason="passed the policy", details={"config": gone.model_dump(mode="json")})
    data = load_evalset(tiny_scifact)
    server = Server(tiny_scifact, project, "--interleave", "9", "--share", "1")
    try:
        for query in data.queries[:5]:
            response = httpx.post(server.url + "/search", json={"query": query.text, "k": 5})
            assert response.status_code == 200
        health = server.health()["traffic"]
        assert health["candidate_available"] is False and "unavailable_reason" in health
        assert (health["unavailable"], health["interleaved"], health["requests"]) == (5, 0, 5)
        assert "candidate version 9 is unavailable" in server.log.read_text()
    finally:
        server.stop()
    rows = [r for r in traffic_rows(project) if r["candidate_version"] == "9"]
    assert [r["status"] for r in rows] == ["candidate_unavailable"] * 5 and all(r["shown"] is None for r in rows)


def test_an_interleaved_answer_is_written_from_the_merged_list_and_its_citations_credit_their_side(project,
                                                                                                 tiny_scifact):
    """/answer through a real local SmolLM2 (skipped where it cannot be had): the contexts are the merged hits,
    and the documents of the chunks the answer cites are stored with the request and credited to their sides."""
    require_smollm2()  # serve starts its own server
    config = CHAMPION + "generation: {contexts: 4, context_tokens: 400, max_answer_tokens: 24}\n"
    server = Server(tiny_scifact, project, "--interleave", "1", "--share", "1", llm=(), config=config,
                    env={"EVOLVE_LOCAL_LLM": "smollm2-135m", "EVOLVE_LLM_BASE_URL": ""})
    try:
        query = load_evalset(tiny_scifact).queries[1].text
        response = httpx.post(server.url + "/answer", json={"query": query, "k": 4}, timeout=300)
        assert response.status_code == 200, response.text
        body = response.json()
        httpx.post(server.url + "/snapshot")
        row = traffic_rows_via_snapshot(project, body["request_id"])
        assert [s["doc_id"] for s in row["shown"]] == [h["doc_id"] for h in body["hits"]]
        assert {s["side"] for s in row["shown"]} == {"champion", "candidate"}
        doc_of = {h["chunk_id"]: h["doc_id"] for h in body["hits"]}
        assert row["cited"] == [doc_of[c] for c in body["citations"]]
        side_of = {s["doc_id"]: s["side"] for s in row["shown"]}
        before = cli("feedback", "compare", "1", "--project-dir", str(project), cwd=project)
        assert before.returncode == 0, before.stderr
        text = " ".join(before.stdout.split())
        cited = [side_of[d] for d in set(row["cited"])]
        assert (f"citations: champion {cited.count('champion')}, candidate {cited.count('candidate')}" in text), text
    finally:
        server.stop()


def test_approval_shows_both_kinds_of_evidence_and_stays_a_human_decision(project):
    """After its shadow and interleaved days, version 1 is approved by a person: approve puts the online evidence
    beside the offline one, and only the approve row (not any traffic) moves the champion."""
    log = open_project(project, None).log
    assert [r.action for r in log.rows() if r.action == "approve"] == []  # traffic alone approved nothing
    approved = cli("approve", "1", "--yes", "--reason", "offline gain, no loss on live traffic", "--actor",
                   "reviewer-ann", "--project-dir", str(project), cwd=project)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    text = " ".join(approved.stdout.split())
    assert "online evidence (live traffic; the guard's report is offline):" in text
    assert "interleave: " in text and "interleaved queries (sign test p=" in text
    assert "version 1 (bm25-regex-flat" in text and "is the champion" in text
    rows = log.rows()
    assert next((r.action, r.actor) for r in rows if r.action == "approve") == ("approve", "reviewer-ann")
