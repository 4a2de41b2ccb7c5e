"""A study's answer stage: its best distinct trials answer tuning queries, the best judged answers win."""

import re
from types import SimpleNamespace

from mlflow import MlflowClient

from agent.loop.nodes import _judge_finalists
from experiments import ANSWER_METRICS
from experiments.study import StudyRunner, StudySpec
from guardrails import Policy
from helpers import DEMO_SET
from pipelines import Components
from pipelines.llm import LLMClient, LLMSettings

SPACE = {"name": "generation", "dense_models": ["none"], "lexical": {"tokenizers": ["english"]},
         "generation": {"contexts": [1, 3], "context_tokens": 8000, "max_answer_tokens": 32}}


class ContextCounting(LLMClient):
    """The real client (structured output, the judge's parsing), answering without a server: every answer is
    judged right when it was written from ``right`` passages, else wrong."""

    def __init__(self, right: int):
        super().__init__(LLMSettings(base_url="http://127.0.0.1:9/v1", model="counting", max_concurrency=1,
                                     context_tokens=32_768))  # no server: passages are never cut to its context
        self.right = right

    def _call(self, messages, params, timeout=None):
        self.calls += 1
        if "response_format" not in params:
            return "It is so."
        passages = len(re.findall(r"\n\n\[[^\[\]\n]+#\d+\]\n", messages[-1]["content"]))  # chunk ids
        return '{"reason": "counted", "score": %d}' % (passages == self.right)


def test_the_finalist_with_the_best_judged_answers_becomes_the_candidate_and_its_run_gets_the_means(tmp_path):
    spec = StudySpec(study_name="gen", evalset=str(DEMO_SET), space=SPACE, n_trials=8, seed=1, max_tune_queries=20)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path, components=Components(
        tmp_path / "cache.sqlite"))
    runner.run()
    finalists = runner.finalists(2)
    assert sorted(c.generation.contexts for c, _, _ in finalists) == [1, 3]  # distinct configs, best first
    assert finalists[0][1] >= finalists[1][1]
    lines = []
    second = finalists[1][0].generation.contexts  # the judge prefers the answers of the retrieval runner-up
    ctx = SimpleNamespace(policy=Policy(answers={"finalists": 2, "finalist_queries": 3}),
                          llm=ContextCounting(right=second), components=runner.components, say=lines.append,
                          metric="ndcg@10")
    chosen, scored, seconds = _judge_finalists(ctx, runner, seconds=600)
    assert chosen is not None and chosen[0].generation.contexts == second and chosen[0].name == "gen-best"
    assert chosen[1] == finalists[1][1]  # with its own tuning value
    # faithfulness and context relevance see the passages; correctness (no passages in its prompt) is 0 for both
    assert [e["answers"] for e in scored] == [{m: 0.0 for m in ANSWER_METRICS}, {"answer_correctness": 0.0,
                                                                               "faithfulness": 1.0,
                                                                               "context_relevance": 1.0}]
    assert seconds > 0 and any("answers best: it is the study's candidate" in line for line in lines)
    # the finalists' answer means are on their trials' MLflow runs
    client = MlflowClient(runner.tracking_uri)
    for entry in scored:
        run = client.search_runs([runner.tracker.experiment_id], f"tags.`evolve.trial_number` = '{entry['trial']}'")[0]
        assert run.data.metrics["answers.faithfulness"] == entry["answers"]["faithfulness"]
    # answers that do not tell the finalists apart keep the retrieval winner
    ctx.llm = ContextCounting(right=99)
    assert _judge_finalists(ctx, runner, seconds=600)[0] is None
    # with too little time the stage does not run and the retrieval winner stays
    assert _judge_finalists(ctx, runner, seconds=3) == (None, [], 0.0)
