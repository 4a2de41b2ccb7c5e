"""An answer stage that earns its time: one answer and one verdict timed on a real llama.cpp server (SmolLM2), the
skip decision from them, and passages trimmed to the model's own context (a long Korean page on a 1,024-token
slot)."""

from __future__ import annotations

import random

from helpers import korean_page, smollm2, worker_threads

from evalsets import Document, EvalSet, Query
from experiments import AnswerCost, AnswerJudging, measure_answer_cost
from pipelines import GenerationConfig, Generator
from pipelines.generator import VERDICT_ROOM
from pipelines.llm import LLMCache, LLMClient
from pipelines.llm.tokens import estimate_text_tokens


def test_the_stage_is_skipped_when_the_allowance_cannot_pay_for_the_policy_s_paired_queries():
    cost = AnswerCost("qwen2.5-coder-1.5b", answer_seconds=40.0, verdict_seconds=13.0, verdicts_per_query=2)
    assert cost.query_seconds == 66.0 and cost.paired_within(450) == 3  # 450 // (2 * 66)
    why = cost.skip_reason(450, min_paired=6)
    assert why is not None and "about 792 s" in why and "pay for 3" in why and "the time goes to trials" in why
    assert cost.skip_reason(800, min_paired=6) is None
    fast = AnswerCost("smollm2-135m", answer_seconds=1.0, verdict_seconds=0.5, verdicts_per_query=3)
    assert fast.paired_within(450) == 90 and fast.skip_reason(450, 6) is None


def korean_set(pages: int = 3) -> EvalSet:
    rng = random.Random(3)
    corpus = [Document(doc_id=f"p{i}", title=f"보고서 {i}", text=korean_page(rng, 120)) for i in range(pages)]
    queries = [Query(query_id="q0", text="재무팀은 분기별 매출 보고서를 어떻게 처리하였나요?", answers=("이사회에 보고",))]
    return EvalSet(name="pages", corpus=corpus, queries=queries, qrels={"q0": {"p1": 1}})


def test_one_answer_and_one_verdict_are_timed_on_the_server_not_the_cache_and_fit_the_model_s_context(tmp_path):
    evalset = korean_set()
    assert estimate_text_tokens(evalset.corpus[1].text) > 4096  # one page alone overflows the slot
    generation = GenerationConfig(contexts=3, context_tokens=30_000, max_answer_tokens=32)
    with smollm2(threads=worker_threads(), ctx=1024) as settings:
        client = LLMClient(settings, LLMCache(tmp_path / "llm.duckdb"))
        room = Generator(client, generation).model_room()
        assert room == client.context_tokens() - 32 - VERDICT_ROOM
        given = Generator(client, generation).contexts(
            [{"chunk_id": d.doc_id, "doc_id": d.doc_id, "text": d.text} for d in evalset.corpus])
        assert given[0]["doc_id"] == "p0" and sum(estimate_text_tokens(c["text"]) for c in given) <= room
        first = measure_answer_cost(client, evalset, generation)  # no overflow refused: the page was trimmed
        second = measure_answer_cost(client, evalset, generation)
        assert client.cache.hits == 0  # both measured on the server, the second not read from the cache
        assert first.answer_seconds > 0 and first.verdict_seconds > 0 and second.answer_seconds > 0
        assert first.verdicts_per_query == 2  # the reference is short: correctness needs no verdict
        # the stage itself then judges the same long page without overflowing, and counts what decided each metric
        judging = AnswerJudging(client)

        class Ranked:
            def search_chunks(self, texts):
                return [[type("Chunk", (), {"chunk_id": "p1#0", "doc_id": "p1", "text": evalset.corpus[1].text})()]]

        rows = judging.score(Ranked(), evalset.queries, generation, limit=1)
        assert judging.spend.failed == 0 and set(rows) == {"q0"}
        assert {"answer_correctness", "answer_f1"} <= set(rows["q0"])
        assert judging.spend.verdicts["contained"] == 1 and "contained 1" in judging.spend.line()
