"""The answer stage against a real llama.cpp server (SmolLM2-135M: the mechanics, not the quality)."""

from __future__ import annotations

import time

import pytest
import yaml

from agent.project import open_project
from evalsets import load_evalset
from experiments import ANSWER_METRICS, AnswerJudging
from experiments.splits import tune_and_heldout
from guardrails import Policy, guard_and_register
from helpers import DEMO_SET
from pipelines import Components, GenerationConfig, PipelineConfig, Retriever
from pipelines.llm import LLMCache, LLMClient, LLMSettings

SHORT = GenerationConfig(contexts=2, context_tokens=300, max_answer_tokens=32)
BM25 = {"lexical": {"tokenizer": "english"}, "fusion": {"kind": "none"}, "generation": SHORT.model_dump()}


@pytest.fixture(scope="module")
def demo():
    return load_evalset(DEMO_SET).sample(12, seed=0)


@pytest.fixture(scope="module")
def retriever(demo, tmp_path_factory):
    config = PipelineConfig.model_validate({"name": "bm25", **BM25})
    return Retriever(config, Components(tmp_path_factory.mktemp("emb") / "cache.sqlite")).build(demo.corpus)


def test_answers_are_generated_judged_per_query_and_a_repeat_costs_no_call(llm_client, demo, retriever):
    seen = []
    judging = AnswerJudging(llm_client)
    rows = judging.score(retriever, demo.queries, SHORT, limit=2, progress=lambda done, total: seen.append(done))
    spend = judging.spend
    assert spend.queries + spend.failed == 2 and spend.skipped == 0 and sorted(seen) == [1, 2]
    assert set(rows) <= {q.query_id for q in demo.queries if q.answers}  # queries with a reference go first
    assert rows and all(set(row) <= set(ANSWER_METRICS) and set(row.values()) <= {0.0, 1.0} for row in rows.values())
    # one generation and up to three verdicts per query, all real calls; none needed a repair round, as the schema's
    # bound on the reason (REASON_CHARS) ends every verdict's JSON before the token cap cuts it
    assert 2 * 2 <= spend.calls <= 2 * 4 and spend.cached == 0
    again = AnswerJudging(llm_client)
    assert again.score(retriever, demo.queries, SHORT, limit=2) == rows
    assert again.spend.calls == 0 and again.spend.cached >= spend.calls - 2
    assert "2 queries answered and judged" in again.spend.line() or again.spend.failed


def test_past_the_deadline_nothing_is_asked_and_the_queries_are_counted_as_not_reached(llm_client, demo, retriever):
    judging = AnswerJudging(llm_client, deadline=time.monotonic() - 1)
    assert judging.score(retriever, demo.queries, SHORT, limit=4) == {}
    assert (judging.spend.skipped, judging.spend.calls) == (4, 0)
    assert "4 queries not reached within the time allowed" in judging.spend.line()


def test_an_llm_that_goes_away_stops_the_stage_instead_of_failing_the_caller(demo, retriever, tmp_path):
    gone = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0),
                     LLMCache(tmp_path / "c.duckdb"))
    judging = AnswerJudging(gone)
    assert judging.score(retriever, demo.queries, SHORT, limit=3) == {}
    assert judging.unavailable and "no LLM server answers" in judging.unavailable and judging.spend.skipped == 3


def test_the_guard_step_judges_candidate_and_champion_on_the_same_queries_and_logs_the_answer_metrics(
        llm_client, tmp_path):
    policy = Policy(min_gain=-1, significance={"p_value": 1.0}, max_regression={"default": 1}, min_queries=5,
                    answers={"queries": 3})
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy.model_dump(mode="json")))
    start = tmp_path / "start.yaml"
    start.write_text(PipelineConfig.model_validate({"name": "start", **BM25, "lexical": {"tokenizer": "regex"}})
                     .to_yaml())
    project = open_project(tmp_path, None, start)
    held = tune_and_heldout(DEMO_SET)[1].sample(10, seed=0)
    candidate = PipelineConfig.model_validate({"name": "english", **BM25})
    judging = AnswerJudging(llm_client)
    report, version = guard_and_register(project, candidate, [held], policy, Components(tmp_path / "e.sqlite"),
                                         answers=judging)
    rules = {r.rule: r for r in report.rules}
    held_rules = [f"no significant regression [{m}]" for m in ANSWER_METRICS]
    assert set(held_rules) <= set(rules) and "answer metrics" not in rules
    assert report.candidate["answers"]["judge_model"] == "smollm2-135m"
    assert report.candidate["answers"]["llm_calls"] == judging.spend.calls > 0
    judged = report.candidate["sets"][held.name].get("faithfulness_judged", 0)
    assert 0 < judged <= 3
    # the candidate's answer means are metrics of the decision run in MLflow, beside the retrieval ones
    runs = project.registry.client.search_runs([project.registry.experiment_id])
    metrics = runs[0].data.metrics
    assert any(key.endswith("faithfulness") for key in metrics) and any(key.endswith("ndcg_10") or "ndcg" in key
                                                                       for key in metrics)
    # without an LLM, the same guard says answers were skipped and decides on retrieval alone
    report, _ = guard_and_register(project, candidate, [held], policy, Components(tmp_path / "e.sqlite"),
                                   answers_skipped="no LLM endpoint configured")
    assert {r.rule: r for r in report.rules}["answer metrics"].measured == "skipped"


class Slow(LLMClient):
    """The real client without a server: every call takes 0.1 s; answers are cited, verdicts alternate."""

    def __init__(self):
        super().__init__(LLMSettings(base_url="http://127.0.0.1:9/v1", model="slow", max_concurrency=1))

    def _call(self, messages, params, timeout=None):
        time.sleep(0.1)
        self.calls += 1
        return '{"reason": "r", "score": %d}' % (self.calls % 2) if "response_format" in params else "It is so [x#0]."


def test_a_short_allowance_still_yields_paired_verdicts_because_the_champion_goes_first_with_half(tmp_path):
    policy = Policy(min_gain=-1, significance={"p_value": 1.0}, max_regression={"default": 1}, min_queries=5,
                    answers={"queries": 30})
    start = tmp_path / "start.yaml"
    start.write_text(PipelineConfig.model_validate({"name": "start", **BM25, "lexical": {"tokenizer": "regex"}})
                     .to_yaml())
    project = open_project(tmp_path, None, start)
    held = tune_and_heldout(DEMO_SET)[1].sample(30, seed=0)
    judging = AnswerJudging(Slow(), deadline=time.monotonic() + 4)  # about 10 queries in all, far from 2 x 30
    report, _ = guard_and_register(project, PipelineConfig.model_validate({"name": "english", **BM25}), [held],
                                   policy, Components(tmp_path / "e.sqlite"), answers=judging)
    champion = report.champion["sets"][held.name].get("faithfulness_judged", 0)
    candidate = report.candidate["sets"][held.name].get("faithfulness_judged", 0)
    assert champion >= 2 and candidate >= 2 and judging.spend.skipped > 0  # both sides got some, the rest not reached
    rule = next(r for r in report.rules if r.rule == "no significant regression [faithfulness]")
    assert rule.measured is not None and f"on {min(champion, candidate)} queries" in rule.why
