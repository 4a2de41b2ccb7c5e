"""`evolve serve` answering: /answer through a real local llama.cpp server (SmolLM2-135M) that serve starts and
stops, the answer recorded for /feedback, and /search still served when no LLM can be had.

SmolLM2 answers poorly: these tests assert mechanics (text, citations among the hits, language, request ids,
what /health says, the LLM server's lifetime), not answer quality.
"""

import json
import signal
from pathlib import Path

import httpx
import pytest

from evalsets.feedback import FeedbackStore
from helpers import Server, free_port

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "smollm2-135m"
# regex tokens find Korean and English words; the smallest context and answer keep SmolLM2 quick on a busy CPU
CONFIG = ("name: bm25-bilingual\nlexical: {tokenizer: regex}\nfusion: {kind: none}\n"
          "generation: {contexts: 1, context_tokens: 100, max_answer_tokens: 16}\n")


def first_query(folder: Path) -> str:
    return json.loads((folder / "queries.jsonl").read_text("utf-8").splitlines()[0])["text"]


@pytest.fixture(scope="module")
def bilingual(tiny_scifact, tiny_korquad, tmp_path_factory) -> Path:
    """One corpus of English (SciFact) and Korean (KorQuAD) documents."""
    corpus = tmp_path_factory.mktemp("bilingual") / "corpus.jsonl"
    corpus.write_text("".join((folder / "corpus.jsonl").read_text("utf-8") for folder in (tiny_scifact, tiny_korquad)),
                      "utf-8")
    return corpus


@pytest.fixture(scope="module")
def answering(bilingual, tmp_path_factory):
    project = tmp_path_factory.mktemp("answering")
    running = Server(bilingual, project, token=TOKEN, config=CONFIG, llm=(),
                     env={"EVOLVE_LOCAL_LLM": MODEL, "EVOLVE_LLM_BASE_URL": ""})
    running.project = project
    yield running
    if running.process.poll() is None:
        running.stop()


def answer(server, query, k=3):
    return httpx.post(server.url + "/answer", json={"query": query, "k": k}, headers=AUTH, timeout=300)


def llm_children(pid: int) -> list[int]:
    """Processes ``pid`` started for the local LLM server (read from /proc: no psutil here)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) if proc.name.isdigit() else None
            command = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"pipelines.llm.local_server" in command:
            found.append(int(proc.name))
    return found


def test_health_says_answers_are_on_with_the_model_and_endpoint(answering):
    info = json.loads((answering.project / ".evolve" / "server.json").read_text())
    bare = httpx.get(answering.url + "/health").json()
    assert bare == {"status": "ok", "nonce": info["nonce"]}  # nothing about the LLM without the token
    answers = httpx.get(answering.url + "/health", headers=AUTH).json()["answers"]
    assert answers["on"] is True and answers["model"] == MODEL
    assert answers["endpoint"].startswith("http://127.0.0.1:") and answers["endpoint"] != answering.url + "/v1"
    assert httpx.get(answers["endpoint"] + "/models", timeout=5).status_code == 200  # a real llama.cpp server


@pytest.mark.parametrize("corpus, language", [("tiny_scifact", "en"), ("tiny_korquad", "ko")])
def test_answer_cites_its_hits_in_the_query_language_and_takes_feedback(answering, corpus, language, request):
    query = first_query(request.getfixturevalue(corpus))
    response = answer(answering, query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"].strip() and body["model"] == MODEL and body["language"] == language
    assert 1 <= len(body["hits"]) <= 3 and body["latency_ms"] > 0
    assert set(body["citations"]) <= {hit["chunk_id"] for hit in body["hits"]}
    rated = httpx.post(answering.url + "/feedback", headers=AUTH,
                       json={"request_id": body["request_id"], "rating": "bad", "comment": f"{language} answer"})
    assert rated.status_code == 200, rated.text
    snapshot = httpx.post(answering.url + "/snapshot", headers=AUTH).json()["snapshot"]
    from evalsets.feedback import read_snapshot

    served = read_snapshot(Path(snapshot), f"SELECT kind, answer FROM requests WHERE request_id = "
                                           f"'{body['request_id']}'")
    feedback = read_snapshot(Path(snapshot), f"SELECT rating, query FROM feedback WHERE feedback_id = "
                                             f"'{rated.json()['feedback_id']}'")
    assert served == [{"kind": "answer", "answer": body["answer"]}]
    assert feedback == [{"rating": "bad", "query": query}]


def test_an_llm_error_is_a_502_the_request_kept_and_sigterm_stops_the_llm(answering):
    """Runs last of the module's server: a query too long for the local model's context, then serve stopped."""
    endpoint = httpx.get(answering.url + "/health", headers=AUTH).json()["answers"]["endpoint"]
    (llm,) = llm_children(answering.process.pid)
    failed = answer(answering, "서울 " * 1300)  # 3900 characters: within --max-query-chars, past SmolLM2's context
    assert failed.status_code == 502 and "Traceback" not in failed.text, failed.text
    detail = failed.json()["detail"]
    assert detail["message"].startswith("the LLM failed to answer: LLM request refused (400)")
    assert "exceeds the available context size" in detail["message"]
    rated = httpx.post(answering.url + "/feedback", headers=AUTH, json={"request_id": detail["request_id"],
                                                                        "rating": "bad"})
    assert rated.status_code == 200, rated.text  # the failed request was recorded (without an answer)
    assert httpx.post(answering.url + "/search", json={"query": "vaccine", "k": 2}, headers=AUTH).status_code == 200

    answering.stop(signal.SIGTERM)
    output = answering.process.stdout.read()
    assert answering.process.returncode == 0 and "stopped (SIGTERM)" in output, output
    assert f"answers: {MODEL} at {endpoint}" in output
    assert not Path(f"/proc/{llm}").exists()  # serve stopped (and reaped) its LLM server
    with pytest.raises(httpx.TransportError):
        httpx.get(endpoint + "/models", timeout=5)
    store = FeedbackStore(answering.project / ".evolve" / "feedback.duckdb")
    try:
        assert store.request(detail["request_id"])["answer"] is None
    finally:
        store.close()


def test_without_an_llm_search_is_served_and_answer_says_why(bilingual, tmp_path):
    """An endpoint that does not answer: serve starts anyway, says so on the terminal, in /health and in the 503."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    server = Server(bilingual, tmp_path, config=CONFIG, llm=("--llm-base-url", dead))
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["answers"]["on"] is False and f"no LLM server answers at {dead}" in health["answers"]["reason"]
        assert httpx.post(server.url + "/search", json={"query": "vaccine", "k": 2}).status_code == 200
        refused = httpx.post(server.url + "/answer", json={"query": "vaccine"})
        assert refused.status_code == 503 and refused.json()["detail"] == "answers are off: " + health["answers"][
            "reason"]
    finally:
        server.stop()
    output = server.process.stdout.read()
    assert "answers are off: the LLM is unavailable" in output and server.process.returncode == 0, output
