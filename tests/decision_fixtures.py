"""The decision-log project that tests/guardrails/test_decision_log.py and tests/e2e/test_decisions.py share:
the default champion and two guarded candidates (versions 1 and 2) on the bundled demo set."""

import pytest
import yaml

from agent.project import open_project
from conftest import DEMO_SET
from experiments.splits import tune_and_heldout
from guardrails import Policy, guard_and_register
from pipelines import Components, PipelineConfig


BM25 = {"fusion": {"kind": "none"}}
# lets anything through that is not worse by a whole metric point; latency is left out too (dense models on a
# loaded 2-core CI machine can pass the default 250 ms), the latency rule has its own test
PERMISSIVE = Policy(min_gain=-1, significance={"p_value": 1.0}, max_regression={"default": 1}, min_queries=5,
                    max_latency_p95_ms=60_000)


def bm25(name, **lexical):
    return PipelineConfig.model_validate({"name": name, "lexical": lexical, **BM25})


@pytest.fixture
def project(tmp_path):
    """A project with the default champion and two guarded candidates (versions 1 and 2), judged under the
    project's own policy file."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(PERMISSIVE.model_dump(mode="json")))
    default = tmp_path / "start.yaml"
    default.write_text(bm25("regex-start", tokenizer="regex", k1=0.3, b=0.1).to_yaml())
    proj = open_project(tmp_path, None, default)
    held = tune_and_heldout(DEMO_SET)[1].sample(20, seed=0)
    components = Components(tmp_path / "cache.sqlite")
    for config in (bm25("english", tokenizer="english"), bm25("english-k1", tokenizer="english", k1=1.5)):
        report, version = guard_and_register(proj, config, [held], PERMISSIVE, components)
        assert version and report.decision["config_sha256"] == config.sha256()
    return proj
