"""`evolve promote` as a process: a hand-written config guarded like the loop's candidates, answers included when
an LLM answers (a real llama.cpp SmolLM2 server: the mechanics, not the verdicts)."""

import pytest
import yaml

from guardrails import DecisionLog, Policy
from helpers import DEMO_SET, evolve, llm_env

CONFIG = "name: english-bm25\nlexical: {tokenizer: english}\nfusion: {kind: none}\ngeneration: {contexts: 2, " \
         "context_tokens: 300, max_answer_tokens: 32}\n"
POLICY = Policy(min_gain=-1, significance={"p_value": 1.0}, max_regression={"default": 1}, min_queries=5,
                answers={"queries": 2})


@pytest.fixture(scope="module")
def llm(smollm2_server):
    return llm_env(smollm2_server)


@pytest.fixture
def project(tmp_path):
    """A project whose starting champion (default.yaml) is a cheap BM25 config too."""
    (tmp_path / "candidate.yaml").write_text(CONFIG)
    (tmp_path / "default.yaml").write_text(CONFIG.replace("english-bm25", "regex-bm25").replace("english", "regex"))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY.model_dump(mode="json")))
    return tmp_path


def promote(project, *args, env=None):
    return evolve("promote", "--config", str(project / "candidate.yaml"), "--evalset", str(DEMO_SET),
               "--heldout-limit", "8", "--policy", str(project / "policy.yaml"), "--project-dir", str(project),
               *args, cwd=project, env=env)


def test_promote_judges_answers_of_candidate_and_champion_with_the_llm(project, llm):
    done = promote(project, env=llm)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answers judged by smollm2-135m" in done.stdout
    assert "no significant regression [faithfulness]" in done.stdout
    (row,) = [r for r in DecisionLog(project / ".evolve" / "audit.duckdb").rows() if r.action == "register"]
    report = row.info["report"]
    assert report["candidate"]["answers"]["judge_model"] == "smollm2-135m"
    assert {r["rule"] for r in report["rules"]} >= {f"no significant regression [{m}]" for m in
                                                     ("answer_correctness", "faithfulness", "context_relevance")}


def test_promote_without_an_llm_decides_on_retrieval_and_says_so(project):
    done = promote(project, "--no-llm")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answers: not judged (no LLM (--no-llm))" in done.stdout
    (row,) = [r for r in DecisionLog(project / ".evolve" / "audit.duckdb").rows() if r.action == "register"]
    assert next(r for r in row.info["report"]["rules"] if r["rule"] == "answer metrics")["measured"] == "skipped"
