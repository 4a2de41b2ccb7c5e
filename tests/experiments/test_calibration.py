"""Judge calibration: agreement math on known cases, the labels file, the DuckDB store."""

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from fractions import Fraction
from types import SimpleNamespace

import duckdb
import pytest
from sklearn.metrics import cohen_kappa_score

from evalsets import EvalSetError
from experiments import (Calibration, CalibrationStore, JudgedItem, LabelledItem, agreement, calibrate,
                         read_labels)
from experiments.judge import JudgedScore


def test_agreement_counts_the_confusion_and_leaves_invalid_verdicts_out():
    result = agreement([1, 1, 1, 0, 0, 0, 1], [1, 1, 0, 1, 0, 0, None])
    assert (result.tp, result.fp, result.fn, result.tn, result.n, result.invalid) == (2, 1, 1, 2, 6, 1)
    assert result.accuracy == pytest.approx(4 / 6)
    # po = 4/6, pe = (3*3 + 3*3) / 36 = 1/2, kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert result.kappa == pytest.approx(float(Fraction(1, 3)), abs=1e-12)


@pytest.mark.parametrize("labels, verdicts, kappa", [
    ([1, 0, 1, 0], [1, 0, 1, 0], 1.0),                       # perfect
    ([1, 0, 1, 0], [0, 1, 0, 1], -1.0),                      # always the other way
    ([1, 1, 0, 0], [1, 0, 1, 0], 0.0),                       # chance
    ([1, 1, 1, 0], [1, 1, 1, 1], 0.0),                       # a judge that always says 1 agrees by chance only
    # tp=20 fn=5 fp=10 tn=15: po = 35/50, pe = (25*30 + 25*20) / 2500 = 1/2, kappa = 0.4
    ([1] * 25 + [0] * 25, [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15, 0.4),
])
def test_kappa_exact_values_and_as_sklearn_computes_them(labels, verdicts, kappa):
    result = agreement(labels, verdicts)
    assert result.kappa == pytest.approx(kappa, abs=1e-12)
    assert result.kappa == pytest.approx(cohen_kappa_score(labels, verdicts), abs=1e-12)


def test_kappa_is_none_when_the_labels_are_one_class_or_nothing_was_judged():
    assert agreement([1, 1, 1], [1, 1, 1]).kappa is None      # sklearn: nan (0/0)
    assert agreement([1, 1, 1], [1, 0, 1]).kappa is None
    assert agreement([1, 1, 1], [1, 0, 1]).accuracy == pytest.approx(2 / 3)
    empty = agreement([1, 0], [None, None])
    assert (empty.n, empty.invalid, empty.accuracy, empty.kappa) == (0, 2, None, None)
    with pytest.raises(ValueError, match="2 labels but 1 verdicts"):
        agreement([1, 0], [1])


def line(**fields):
    base = {"id": "a", "question": "Who?", "answer": "Kim", "reference": "Kim Minji", "label": 1}
    return json.dumps({k: v for k, v in {**base, **fields}.items() if v is not ...}, ensure_ascii=False)


def test_a_labels_file_is_read_with_each_lines_metric(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join([
        line(),
        "",
        line(id="b", reference=..., contexts=["Kim leads the team."], label=0),
        line(id="c", reference=..., contexts=["ctx"], answer=..., metric="context_relevance", source="docs"),
    ]) + "\n", encoding="utf-8")
    items = read_labels(path)
    assert [(i.id, i.metric, i.label, i.source) for i in items] == [
        ("a", "correctness", 1, None), ("b", "answer_quality", 0, None), ("c", "context_relevance", 1, "docs")]


@pytest.mark.parametrize("bad, message", [
    ("{not json", "bad JSON"),
    ("[1, 0]", "expected a JSON object, got list"),
    (line(label=2), "label"),
    (line(label=True), "label: must be 1 or 0, not true/false"),
    (line(label="1"), "label"),
    (line(question="  "), "question: must not be blank"),
    (line(reference=...), "needs a 'reference' (judged for correctness) or 'contexts'"),
    (line(metric="answer_quality"), "metric answer_quality needs 'contexts'"),
    (line(answer=...), "metric correctness needs 'answer'"),
    (line(metric="relevance"), "metric"),
    (line(extra="x"), "extra: Extra inputs are not permitted"),
    (line(contexts="one string"), "contexts"),
    (line(id="x"), "id 'x' repeats line 1"),
])
def test_a_bad_line_is_named_with_its_number(tmp_path, bad, message):
    path = tmp_path / "labels.jsonl"
    path.write_text(line(id="x") + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(EvalSetError) as caught:
        read_labels(path)
    assert "1 bad line(s)" in str(caught.value)
    assert f"{path}:2: " in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(("content", "message"), [(None, "labels file not found"), (b"\n\n", "no labelled lines"),
                                                   (b'{"id": "\xe9"}\n', "not valid UTF-8")],
                         ids=["missing", "empty", "undecodable"])
def test_an_empty_missing_or_undecodable_labels_file_is_one_error(tmp_path, content, message):
    path = tmp_path / "labels.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EvalSetError, match=message):
        read_labels(path)


def calibration(model="judge-a", kappa=0.5, source="labels.jsonl", created=None, **extra):
    fields = dict(judge_model=model, metric="correctness", source=source, n=10, accuracy=0.8, kappa=kappa,
                  invalid=1, tp=4, fp=1, fn=1, tn=4)
    if created is not None:
        fields["created"] = created
    return Calibration(**{**fields, **extra})


def test_the_store_round_trips_and_latest_is_the_newest_pooled_row_of_that_model(tmp_path):
    path = tmp_path / ".evolve" / "judge_calibration.duckdb"
    store = CalibrationStore(path)
    assert store.latest("judge-a") is None                    # no file yet: never calibrated, nothing created
    assert not path.exists()
    now = datetime(2026, 1, 2, 3, 4, 5)
    store.record(calibration(kappa=0.2, created=now - timedelta(days=1)))
    newest = calibration(kappa=0.61, source="labels.jsonl + feedback", created=now)
    parts = [calibration(kappa=0.9, source="labels.jsonl", created=now),
             calibration(kappa=None, source="feedback", accuracy=None, n=0, created=now)]
    run_id = store.record(newest, parts)
    store.record(calibration(model="judge-b", kappa=None, created=now + timedelta(days=1)))
    assert len(run_id) == 32
    assert CalibrationStore(path).latest("judge-a") == newest  # a fresh handle: it is in the file
    assert store.latest("judge-b").kappa is None
    assert store.latest("judge-c") is None
    assert [c.kappa for c in store.history("judge-a")] == [0.61, 0.2]
    with duckdb.connect(str(path), read_only=True) as db:
        rows = db.execute("SELECT source, pooled, kappa, tp, fp, fn, tn FROM judge_calibration "
                          "WHERE run_id = ? ORDER BY pooled DESC, source", [run_id]).fetchall()
    assert rows == [("labels.jsonl + feedback", True, 0.61, 4, 1, 1, 4), ("feedback", False, None, 4, 1, 1, 4),
                    ("labels.jsonl", False, 0.9, 4, 1, 1, 4)]


def test_the_store_is_opened_per_call_so_another_process_can_write_between(tmp_path):
    path = tmp_path / "calibration.duckdb"
    store = CalibrationStore(path)
    store.record(calibration(created=datetime(2026, 1, 1)))
    code = ("import sys; from datetime import datetime; from experiments import Calibration, CalibrationStore; "
            "CalibrationStore(sys.argv[1]).record(Calibration(judge_model='judge-a', metric='correctness', "
            "source='other process', n=3, accuracy=1.0, kappa=1.0, invalid=0, created=datetime(2026, 1, 2)))")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
    assert store.latest("judge-a").source == "other process"


class FakeJudge:
    """Verdicts by rule (what the calibration code does with them is under test, not a model)."""

    model = "fake-judge"
    client = SimpleNamespace(settings=SimpleNamespace(max_concurrency=2))

    def __init__(self):
        self.asked = []

    def _score(self, metric, value):
        return JudgedScore(metric, value, "rule", self.model)

    def correctness(self, question, answer, reference):
        self.asked.append(("correctness", question))
        time.sleep(0.001)
        return self._score("correctness", None if answer == "garbled" else float(answer == reference))

    def answer_quality(self, question, answer, contexts):
        self.asked.append(("answer_quality", question))
        return self._score("answer_quality", float(any(answer in c for c in contexts)))


def test_calibrate_judges_each_item_with_its_metric_and_reports_per_source_and_pooled():
    judge = FakeJudge()
    labelled = [LabelledItem(id="1", question="q1", answer="A", reference="A", label=1),
                LabelledItem(id="2", question="q2", answer="B", reference="A", label=0),
                LabelledItem(id="3", question="q3", answer="garbled", reference="A", label=1),
                LabelledItem(id="4", question="q4", answer="B", reference="A", label=1, source="hard")]
    rated = [LabelledItem(id="f1", question="q5", answer="x", contexts=["x y"], label=1),
             LabelledItem(id="f2", question="q6", answer="x", contexts=["z"], label=1)]
    seen = []
    report = calibrate(judge, {"labels.jsonl": labelled, "feedback": rated},
                       lambda stage, done, total: seen.append((done, total)))
    assert sorted(judge.asked) == [("answer_quality", "q5"), ("answer_quality", "q6"), ("correctness", "q1"),
                                   ("correctness", "q2"), ("correctness", "q3"), ("correctness", "q4")]
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert [j.item.id for j in report.judged] == ["1", "2", "3", "4", "f1", "f2"]
    assert all(isinstance(j, JudgedItem) and j.seconds >= 0 for j in report.judged)
    parts = {p.source: p for p in report.parts}
    assert list(parts) == ["labels.jsonl", "hard", "feedback"]
    assert (parts["labels.jsonl"].n, parts["labels.jsonl"].invalid, parts["labels.jsonl"].kappa) == (2, 1, 1.0)
    assert (parts["hard"].n, parts["hard"].accuracy, parts["hard"].kappa) == (1, 0.0, None)
    assert (parts["feedback"].metric, parts["feedback"].confusion) == ("answer_quality",
                                                                       {"tp": 1, "fp": 0, "fn": 1, "tn": 0})
    overall = report.overall
    assert (overall.judge_model, overall.metric, overall.source) == ("fake-judge", "answer_quality+correctness",
                                                                     "labels.jsonl + hard + feedback")
    assert (overall.n, overall.invalid, overall.confusion) == (5, 1, {"tp": 2, "fp": 0, "fn": 2, "tn": 1})
    # po = 3/5, pe = (4*2 + 1*3) / 25 = 11/25, kappa = (15/25 - 11/25) / (14/25) = 2/7
    assert overall.kappa == pytest.approx(2 / 7, abs=1e-12)


def test_one_source_has_no_parts_and_no_items_is_an_error():
    report = calibrate(FakeJudge(), {"labels.jsonl": [LabelledItem(id="1", question="q", answer="A", reference="A",
                                                                   label=1)]})
    assert report.parts == [] and report.overall.source == "labels.jsonl"
    with pytest.raises(ValueError, match="no labelled items"):
        calibrate(FakeJudge(), {"labels.jsonl": []})
