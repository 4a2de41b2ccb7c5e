"""Correctness without a judge on short references: real KorQuAD v1 dev items, Korean normalisation, and the guard
report naming what decided each answer rule."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from experiments import CONTAINMENT, is_short_reference, score_short_answer
from experiments.short_answers import char_f1, contains_reference, exact_match, short_references, token_f1
from guardrails import Policy, check_candidate
from guardrails.evidence import Evidence, SetScores
from pipelines import PipelineConfig

KORQUAD = Path(os.environ.get("EVOLVE_SHARED_DATA", "/work/shared/data")) / "korquad-v1-dev"


@pytest.fixture(scope="module")
def korquad() -> dict[str, dict]:
    path = KORQUAD / "queries.jsonl"
    if not path.is_file():
        pytest.skip(f"KorQuAD v1 dev is not at {KORQUAD}")
    return {q["query_id"]: q for q in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_korquad_references_are_short_and_sentences_are_not(korquad):
    references = [a for q in korquad.values() for a in q["answers"]]
    short = [r for r in references if is_short_reference(r)]
    assert len(short) / len(references) > 0.99  # spans: names, years, numbers
    assert korquad["6548850-0-0"]["answers"] == ["1989년 2월 15일"] and is_short_reference("1989년 2월 15일")
    assert not is_short_reference("은메달을 획득하였다.")  # a KorQuAD reference that is a sentence
    assert not is_short_reference("나는 나를 파괴할 권리가 있다")  # a final ending without punctuation
    assert not is_short_reference("결정내용은 붙임과 같습니다.")
    assert not is_short_reference("The model reads the whole context window before it answers the question.")
    assert is_short_reference("깜빡임") and is_short_reference("G.O.O.D. Music")
    assert short_references(["임수경", "결정내용은 붙임과 같습니다."]) == []  # one long reference: the judge decides


def test_a_sentence_that_gives_the_korquad_span_is_correct_whatever_its_particles_and_date_format(korquad):
    date = korquad["6548850-0-0"]["answers"]  # 임종석이 ... 지명수배 된 날은? -> 1989년 2월 15일
    scores = score_short_answer("임종석은 1989. 2. 15. 여의도 시위 주도 혐의로 지명수배되었습니다.", date)
    assert scores["answer_correctness"] == 1.0 and scores["answer_exact_match"] == 0.0
    assert 0.0 < scores["answer_f1"] < 1.0
    assert score_short_answer("1989-02-15", date)["answer_exact_match"] == 1.0
    person = korquad["6548850-0-1"]["answers"]  # 평양축전에 대표로 파견 된 인물은? -> 임수경
    assert score_short_answer("대표로 파견된 인물은 임수경이다.", person)["answer_correctness"] == 1.0
    assert score_short_answer("임수경", person) == {"answer_correctness": 1.0, "answer_exact_match": 1.0,
                                                   "answer_f1": 1.0, "answer_token_f1": 1.0}
    wrong = score_short_answer("대표로 파견된 인물은 임종석이다.", person)
    assert wrong["answer_correctness"] == 0.0 and wrong["answer_exact_match"] == 0.0
    assert score_short_answer("1989년 6월 30일입니다.", date)["answer_correctness"] == 0.0  # another date


def test_korquad_official_character_f1_and_morpheme_f1():
    # KorQuAD v1's F1: characters without spaces, as multisets; punctuation and case do not count
    assert char_f1("임수경", "임수경") == 1.0 and char_f1("《임수경》", "임수경") == 1.0
    assert char_f1("임수경이", "임수경") == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert char_f1("홍길동", "임수경") == 0.0
    # morphemes: particles and endings dropped, so the inflected answer matches the span fully
    assert token_f1("훈민정음을 창제하였다", "훈민정음 창제") == 1.0
    assert exact_match("1,000명", "1000명") and exact_match("2023년 08월 05일", "2023.8.5")
    assert contains_reference("세종은 훈민정음을 창제하였다", "훈민정음 창제")
    assert not contains_reference("세종은 훈민정음을 반포하였다", "훈민정음 창제")


def evidence(name: str, correct: list[float], faithful: list[float], short: bool) -> Evidence:
    rows = {f"q{i}": {"ndcg@10": 0.7 if name == "cand" else 0.5} for i in range(40)}
    for i, (c, f) in enumerate(zip(correct, faithful)):
        rows[f"q{i}"].update({"answer_correctness": c, "faithfulness": f})
        if short:
            rows[f"q{i}"].update({"answer_exact_match": 0.0, "answer_f1": 0.5, "answer_token_f1": 0.5})
    texts = {f"q{i}": "평양축전에 대표로 파견 된 인물은?" for i in range(40)}
    return Evidence(PipelineConfig.model_validate({"name": name, "lexical": {}, "fusion": {"kind": "none"}}),
                    [SetScores("korquad", rows, texts=texts)], 10.0, 1.0, {}, {"judge_model": "judge-a"})


LENIENT = {"min_gain": -1, "significance": {"p_value": 0.05}}


def test_the_guard_names_containment_as_what_decided_correctness_and_keeps_it_under_a_distrusted_judge():
    champion = evidence("champ", [1.0] * 30, [1.0] * 30, short=True)
    candidate = evidence("cand", [1.0] * 10 + [0.0] * 20, [1.0] * 30, short=True)
    report = check_candidate(candidate, champion, Policy(**LENIENT))
    correct = next(r for r in report.rules if r.rule == "no significant regression [answer_correctness]")
    assert not correct.passed and f"decided by {CONTAINMENT} on 30 queries" in correct.why
    faithful = next(r for r in report.rules if r.rule == "no significant regression [faithfulness]")
    assert "decided by the judge judge-a on 30 queries" in faithful.why
    assert report.candidate["sets"]["korquad"]["answer_f1"] == 0.5
    # a judge below the policy's kappa on Korean: its faithfulness verdicts drop out, containment still refuses
    policy = Policy(**LENIENT, answers={"min_judge_kappa": 0.6})
    weak = check_candidate(candidate, champion, policy,
                           judge_agreement={"kappa": 0.9, "n": 200, "languages": {"ko": {"kappa": 0.16, "n": 58},
                                                                                  "en": {"kappa": 0.93, "n": 60}}})
    names = [r.rule for r in weak.rules]
    assert "judge agreement [judge-a]" in names and "no significant regression [faithfulness]" not in names
    assert weak.failed_rules == ["no significant regression [answer_correctness]"]
    line = next(r for r in weak.rules if r.rule == "judge agreement [judge-a]")
    assert line.measured == 0.16 and "on ko 0.160 (n=58)" in line.why
    # the same judge trusted on Korean: both rules apply
    trusted = check_candidate(candidate, champion, policy,
                              judge_agreement={"kappa": 0.5, "n": 200, "languages": {"ko": {"kappa": 0.7, "n": 58}}})
    assert "no significant regression [faithfulness]" in [r.rule for r in trusted.rules]


def test_long_references_stay_with_the_judge_and_an_uncalibrated_language_is_not_trusted():
    champion = evidence("champ", [1.0] * 30, [1.0] * 30, short=False)
    candidate = evidence("cand", [1.0] * 10 + [0.0] * 20, [1.0] * 30, short=False)
    report = check_candidate(candidate, champion, Policy(**LENIENT))
    correct = next(r for r in report.rules if r.rule == "no significant regression [answer_correctness]")
    assert "judged by judge-a; decided by the judge judge-a on 30 queries" in correct.why
    policy = Policy(**LENIENT, answers={"min_judge_kappa": 0.6})
    english_only = check_candidate(candidate, champion, policy,
                                   judge_agreement={"kappa": 0.93, "n": 60, "languages": {"en": {"kappa": 0.93}}})
    assert english_only.passed  # nothing the judge decided counts on a Korean set it was never calibrated on
    assert next(r for r in english_only.rules if r.rule == "judge agreement [judge-a]").measured == "not calibrated"
