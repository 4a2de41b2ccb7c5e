"""A judge calibrated per language: agreement measured on each language's labelled items, stored with the run, and
read back for the guard (which holds a judge to ``answers.min_judge_kappa`` on the held-back set's language)."""

from __future__ import annotations

from types import SimpleNamespace

from agent.llm_session import judge_agreement
from agent.paths import ProjectPaths
from experiments import CalibrationStore, Judge, LabelledItem, calibrate


class Verdicts:
    """A judge that says 1 to every English item and 0 to every Korean one (right answers rejected)."""

    model = "judge-a"
    settings = SimpleNamespace(max_concurrency=1)

    def structured(self, messages, schema, **params):
        korean = any("\uac00" <= ch <= "\ud7a3" for m in messages for ch in m["content"])
        return schema.model_validate({"reason": "-", "score": 0 if korean else 1})


def items() -> list[LabelledItem]:
    english = [LabelledItem(id=f"en{i}", question="How many requests per minute?", answer="50 a minute",
                            reference="50 requests per minute", label=i % 2) for i in range(10)]
    korean = [LabelledItem(id=f"ko{i}", question="임종석이 지명수배된 날은?", answer="1989년 2월 15일에 수배되었다",
                           reference="1989년 2월 15일", label=1 - i % 3 // 2) for i in range(12)]
    return english + korean


def test_agreement_is_measured_and_stored_per_language_and_the_guard_reads_it(tmp_path):
    report = calibrate(Judge(Verdicts()), {"labels.jsonl": items()})
    by_language = {part.source: part for part in report.languages}
    assert set(by_language) == {"language:en", "language:ko"}
    assert by_language["language:en"].n == 10 and by_language["language:en"].kappa == 0.0  # always 1: chance
    assert by_language["language:ko"].n == 12 and by_language["language:ko"].tp == 0  # rejects the right ones
    store = CalibrationStore(ProjectPaths.of(tmp_path).judge_calibration)
    store.record(report.overall, report.parts + report.languages)
    assert store.latest("judge-a").n == 22  # the pooled row is still what `latest` gives
    agreement = judge_agreement(tmp_path, "judge-a")
    assert agreement["n"] == 22 and set(agreement["languages"]) == {"en", "ko"}
    assert agreement["languages"]["ko"]["n"] == 12
    # a later run on English labels only: Korean is no longer known for this judge
    english = calibrate(Judge(Verdicts()), {"en.jsonl": items()[:10]})
    store.record(english.overall, english.parts + english.languages)
    assert set(judge_agreement(tmp_path, "judge-a")["languages"]) == {"en"}
