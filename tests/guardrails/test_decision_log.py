"""Decisions on the decision log in-process: a candidate judged under another policy needs an explicit yes,
and the actor recorded is the human behind sudo plus the given identity."""

import pytest
import yaml

from guardrails import DecisionError, approve
from helpers import PERMISSIVE


@pytest.fixture
def project(decision_project):
    """The decision-log project of tests/conftest.py: two guarded candidates, versions 1 and 2."""
    return decision_project


def test_a_candidate_judged_under_another_policy_needs_an_explicit_yes(project):
    project.policy_path.write_text(yaml.safe_dump({**PERMISSIVE.model_dump(mode="json"), "min_queries": 6}))
    with pytest.raises(DecisionError, match="accept-policy-mismatch"):
        approve(project, "1", "ok", actor="alice")
    approve(project, "1", "policy changed only min_queries", actor="alice", accept_policy_mismatch=True)
    intent = next(r for r in project.log.rows() if r.action == "approve" and r.phase == "intent")
    assert intent.info["accepted_policy_mismatch"] is True and intent.info["policy_matches_project"] is False
    assert intent.policy_sha256 != intent.info["project_policy_sha256"]


def test_the_actor_is_the_human_behind_sudo_plus_the_given_identity(project, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "minji")
    monkeypatch.setenv("EVOLVE_ACTOR", "minji@helpdesk")
    approve(project, "1", "ok")
    intent = next(r for r in project.log.rows() if r.action == "approve")
    assert intent.actor == "minji@helpdesk" and intent.os_user.startswith("minji (sudo as ")
