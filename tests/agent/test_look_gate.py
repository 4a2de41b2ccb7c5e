"""The look gate in the loop's guard step, on a real decision log (DuckDB) and MLflow registry: a candidate
spends a look only when its tuning evidence can matter; every other one is logged as not looked, spends no alpha
and reads no held-back query."""

import pytest

from agent.loop import nodes
from guardrails import Policy, approve, looks_and_skips
from guardrails.ledger import looks_since_human_decision
from helpers import loop_context
from pipelines import PipelineConfig

from helpers import bm25_space


def bm25(name: str, k1: float) -> PipelineConfig:
    return PipelineConfig.model_validate({"name": name, "lexical": {"tokenizer": "english", "k1": k1, "b": 0.5},
                                          "fusion": {"kind": "none"}})


@pytest.fixture
def loop(tiny_scifact, tmp_path):
    policy = Policy(min_gain=0.005, significance={"p_value": 1.0}, max_regression={"default": 1}, min_queries=1,
                    max_latency_p95_ms=60_000, looks_gate={"record_margin": 0.01, "record_units": "absolute"})
    return loop_context(tmp_path, tiny_scifact, policy, bm25("start", 0.2))


def iterate(ctx, iteration: int, config: PipelineConfig, gain: float) -> dict:
    """The guard and decision nodes of one iteration whose study found ``config``, ``gain`` ahead of the champion
    on every tuning query."""
    state = {"run_id": "r", "iteration": iteration, "study": f"r-it{iteration}", "best": config,
             "proposal": bm25_space(), "proposer": "heuristic", "rationale": "why", "history": [],
             "tuning": {"behaviour_sha256": config.behaviour_sha256(), "differences": [gain] * 8}}
    state |= nodes.guard_candidate(ctx, state)
    return state | nodes.record_decision(ctx, state)


def test_only_candidates_whose_tuning_evidence_can_matter_spend_a_look(loop):
    project = loop.project
    behind = iterate(loop, 0, bm25("behind", 1.0), -0.02)
    assert behind["history"][-1].outcome.startswith("not looked: tuning gain over the champion -0.0200")
    assert "candidate" not in behind["guard"]  # no held-back query was scored
    assert looks_since_human_decision(project.log.rows()) == 0, "a candidate behind the champion spent a look"

    small = iterate(loop, 1, bm25("small", 1.1), 0.004)  # ahead, but by less than min_gain
    assert small["history"][-1].outcome.startswith("not looked")
    assert looks_since_human_decision(project.log.rows()) == 0

    ahead = iterate(loop, 2, bm25("ahead", 1.2), 0.05)
    assert ahead["history"][-1].looked and looks_since_human_decision(project.log.rows()) == 1

    renamed = iterate(loop, 3, bm25("ahead-again", 1.2), 0.06)  # the same pipeline under another name
    assert "was looked at since the last human decision" in renamed["history"][-1].outcome
    no_record = iterate(loop, 4, bm25("close", 1.3), 0.055)  # a new pipeline, but not 0.01 past the record
    assert "not a new record" in no_record["history"][-1].outcome
    assert looks_since_human_decision(project.log.rows()) == 1
    record = iterate(loop, 5, bm25("record", 1.4), 0.07)
    assert record["history"][-1].looked and looks_since_human_decision(project.log.rows()) == 2
    assert looks_and_skips(project.log.rows()) == (2, 4)

    rows = project.log.rows()
    skipped = [r for r in rows if r.action == "not-looked"]
    assert len(skipped) == 4 and all(r.reason.startswith("not looked: ") for r in skipped)
    assert all(r.info["tuning"]["queries"] == 8 for r in skipped)
    looked = [r for r in rows if r.action in ("register", "guard-reject")]
    assert [r.info["look"] for r in looked] == [1, 2]
    assert looked[0].info["tuning"]["score"] == pytest.approx(0.05)
    outcome = looked[0].info["report"]["decision"]["per_query_outcome"]  # what review and the version page show
    heldout = sum(len(s.queries) for s in loop.split.heldout)
    assert sum(outcome.values()) == heldout and set(outcome) == {"wins", "losses", "ties"}

    # a human decision starts a new stretch: the counts, the record and the looked-at pipelines reset
    version = next(r.version for r in looked if r.action == "register")
    approve(project, version, "tested")
    assert looks_and_skips(project.log.rows()) == (0, 0)
    again = iterate(loop, 6, bm25("ahead-after-approval", 1.2), 0.02)
    assert again["history"][-1].looked
    assert looks_since_human_decision(project.log.rows()) == 1


def test_without_tuning_evidence_nothing_is_looked_at(loop):
    state = {"run_id": "r", "iteration": 0, "study": "r-it0", "best": bm25("x", 1.0),
             "proposal": bm25_space(), "proposer": "heuristic", "rationale": "why", "history": [], "tuning": None}
    state |= nodes.guard_candidate(loop, state)
    assert "no tuning evidence" in state["guard"]["not_looked"]
    state |= nodes.record_decision(loop, state)
    state |= nodes.record_decision(loop, {**state, "iteration": 0})  # resumed around the write: logged once
    assert [r.action for r in loop.project.log.rows()] == ["not-looked"]


def test_cross_fitted_looks_follow_a_schedule_that_reads_no_score(loop):
    """Under cross-fitting every query tunes some fold, so a gate on tuning scores would pick looks by the noise
    they test: looks there are thinned by time, whatever the tuning evidence says."""
    from datetime import datetime, timedelta, timezone

    from guardrails import TuningEvidence, look_verdict

    loop.folds = 5
    behind = iterate(loop, 0, bm25("behind", 1.0), -0.02)  # behind on tuning, but the schedule is due: a look
    assert behind["history"][-1].looked
    rows = loop.project.log.rows()
    soon = iterate(loop, 1, bm25("ahead", 1.2), 0.05)
    assert "look at most every 60 min" in soon["history"][-1].outcome
    assert looks_since_human_decision(loop.project.log.rows()) == 1
    later = datetime.now(timezone.utc) + timedelta(minutes=61)
    evidence = TuningEvidence(bm25("ahead", 1.2).behaviour_sha256(), (0.05,) * 8)
    assert look_verdict(rows, evidence, loop.policy, crossfit=True, now=later).look
    repeat = TuningEvidence(bm25("behind", 1.0).behaviour_sha256(), (0.05,) * 8)
    assert not look_verdict(rows, repeat, loop.policy, crossfit=True, now=later).look  # never twice at one pipeline
    champion = loop.project.champion_config().behaviour_sha256()
    itself = TuningEvidence(champion, (0.0,) * 8, champion)  # nothing beat trial 0: no candidate to look at
    assert "the champion itself" in look_verdict(rows, itself, loop.policy, crossfit=True, now=later).reason


def test_records_in_standard_errors_let_a_close_config_beat_a_noisy_far_one():
    """The shipped units: a far config's large but noisy tuning gain sets a record in standard errors that a
    smaller, steadier gain of a close config can beat (in absolute units it could not)."""
    from guardrails import TuningEvidence, look_verdict
    from guardrails.gate import tuning_details
    from guardrails.ledger import Row

    policy = Policy()
    assert policy.looks_gate.record_units == "standard_errors" and policy.looks_gate.record_margin == 0.5
    far = TuningEvidence("far", tuple([0.4, -0.3] * 50))  # +0.05, se 0.035: 1.4 standard errors
    close = TuningEvidence("close", tuple([0.03, 0.01] * 50))  # +0.02, se 0.001: 20 standard errors
    looked = Row(1, "2026-12-06T00:00:00Z", "guard-reject", "done", "d", None, "u", None, None, None, None, None,
                 None, "{}", "0" * 64, info={"behaviour_sha256": "far", "tuning": tuning_details(far, policy)})
    assert look_verdict([looked], close, policy).look
    absolute = policy.model_copy(update={"looks_gate": policy.looks_gate.model_copy(
        update={"record_units": "absolute", "record_margin": 0.0})})
    looked.info["tuning"] = tuning_details(far, absolute)
    assert not look_verdict([looked], close, absolute).look
