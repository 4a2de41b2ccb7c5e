"""The policy's answer rules: "no significant regression" on each judged metric, skipped or distrusted openly."""

from __future__ import annotations

import numpy as np
import pytest

from guardrails import Policy, check_candidate
from guardrails.evidence import Evidence, SetScores
from guardrails.policy import policy_sha256
from pipelines import PipelineConfig

BM25 = {"lexical": {}, "fusion": {"kind": "none"}}


def evidence(name: str, faithful: list[float], correct: list[float], judged: bool = True) -> Evidence:
    """60 held-back queries, where the candidate retrieves clearly better (so only answer rules can refuse it);
    the first len(faithful) carry answer verdicts."""
    rows = {f"q{i}": {"ndcg@10": 0.7 if name == "cand" else 0.5} for i in range(60)}
    for i, (f, c) in enumerate(zip(faithful, correct)):
        rows[f"q{i}"].update({"faithfulness": f, "answer_correctness": c})
    note = {"judge_model": "judge-a"} if judged else {"skipped": "no LLM answers at http://gpu1:8000/v1"}
    return Evidence(PipelineConfig.model_validate({"name": name, **BM25}), [SetScores("set", rows)], 10.0, 1.0, {},
                    note)


def rule(report, name):
    return next(r for r in report.rules if r.rule == name)


LENIENT = dict(min_gain=-1, significance={"p_value": 0.05})


def test_a_candidate_whose_answers_are_clearly_less_faithful_is_refused():
    champion = evidence("champ", [1.0] * 40, [1.0] * 20 + [0.0] * 20)
    candidate = evidence("cand", [1.0] * 20 + [0.0] * 20, [1.0] * 20 + [0.0] * 20)
    report = check_candidate(candidate, champion, Policy(**LENIENT))
    faithful = rule(report, "no significant regression [faithfulness]")
    # each held metric at 0.05 / 3 (Bonferroni), so noise refuses a candidate that is no worse at most 5% of looks
    assert not faithful.passed and faithful.measured < 0.05 / 3 and faithful.limit == pytest.approx(0.05 / 3)
    assert "0.500 vs champion 1.000 on 40 queries judged by judge-a" in faithful.why
    assert rule(report, "no significant regression [answer_correctness]").passed  # identical verdicts
    assert report.failed_rules == ["no significant regression [faithfulness]"]
    assert report.candidate["sets"]["set"]["faithfulness"] == 0.5
    assert report.candidate["sets"]["set"]["faithfulness_judged"] == 40
    # a policy that holds only correctness lets the same candidate through
    only_correct = Policy(**LENIENT, answers={"hold": ["answer_correctness"]})
    assert check_candidate(candidate, champion, only_correct).passed
    assert rule(check_candidate(candidate, champion, only_correct),
                "no significant regression [answer_correctness]").limit == 0.05  # one held metric: the whole level


def test_a_small_drop_on_few_queries_is_not_significant_and_the_report_says_what_it_could_detect():
    champion = evidence("champ", [1.0] * 10, [1.0] * 10)
    candidate = evidence("cand", [1.0] * 9 + [0.0], [1.0] * 10)
    result = rule(check_candidate(candidate, champion, Policy(**LENIENT)),
                  "no significant regression [faithfulness]")
    assert result.passed and result.measured > 0.05 and "smallest drop this detects" in result.why


def test_without_an_llm_the_answer_rules_say_they_were_skipped_and_do_not_block():
    champion = evidence("champ", [], [], judged=False)
    candidate = evidence("cand", [], [], judged=False)
    report = check_candidate(candidate, champion, Policy(**LENIENT))
    skipped = rule(report, "answer metrics")
    assert skipped.passed and skipped.measured == "skipped" and "no LLM answers at http://gpu1:8000/v1" in skipped.why
    assert not any(r.rule.startswith("no significant regression") for r in report.rules)


def test_answer_rules_of_a_judge_below_the_policy_agreement_are_reported_not_used():
    champion = evidence("champ", [1.0] * 40, [1.0] * 40)
    candidate = evidence("cand", [0.0] * 40, [0.0] * 40)
    policy = Policy(**LENIENT, answers={"min_judge_kappa": 0.6})
    weak = check_candidate(candidate, champion, policy, judge_agreement={"kappa": 0.31, "n": 120})
    line = rule(weak, "judge agreement [judge-a]")
    assert weak.passed and line.measured == 0.31 and "0.310 (n=120) is below the policy's 0.6" in line.why
    uncalibrated = check_candidate(candidate, champion, policy, judge_agreement=None)
    assert rule(uncalibrated, "judge agreement [judge-a]").measured == "not calibrated"
    trusted = check_candidate(candidate, champion, policy, judge_agreement={"kappa": 0.8, "n": 120})
    assert set(trusted.failed_rules) == {"no significant regression [faithfulness]",
                                         "no significant regression [answer_correctness]"}


def test_the_answers_section_at_its_defaults_keeps_the_policy_address_of_before():
    # the address Policy() had before the answers section existed (guardrails/policy.py LATER_FIELDS)
    assert policy_sha256(Policy()) == "3e45ad04016329833f1d79e9aaffbed14fcb7401803adfccf5d54cf4cf929ffc"
    assert policy_sha256(Policy(answers={"queries": 10})) != policy_sha256(Policy())
    with pytest.raises(ValueError):
        Policy(answers={"hold": ["bleu"]})


def test_noise_refuses_a_candidate_that_is_no_worse_in_at_most_the_policy_level_of_looks():
    """Candidate and champion answers drawn alike (judge noise only): the three answer rules together refuse in
    about p_value of the looks (without sharing the level out over them it would be about three times that)."""
    rng = np.random.default_rng(0)
    policy, refused, looks = Policy(min_gain=-1, significance={"p_value": 0.05, "resamples": 2000}), 0, 300
    for _ in range(looks):
        sides = []
        for name in ("champ", "cand"):
            rows = {f"q{i}": {"ndcg@10": 0.7 if name == "cand" else 0.5} for i in range(40)}
            for i in range(40):
                rows[f"q{i}"].update({m: float(rng.random() < 0.6) for m in
                                      ("answer_correctness", "faithfulness", "context_relevance")})
            sides.append(Evidence(PipelineConfig.model_validate({"name": name, **BM25}), [SetScores("set", rows)],
                                  10.0, 1.0, {}, {"judge_model": "judge-a"}))
        report = check_candidate(sides[1], sides[0], policy)
        refused += any(r.rule.startswith("no significant regression") and not r.passed for r in report.rules)
    assert policy.significance.p_value == 0.05 and refused / looks <= 0.07, refused / looks
