"""The failure set from bad ratings, in-process with a scripted resolver in place of the LLM judge: a marked
document is taken as it is, a rating without one is resolved among the documents its request returned, and
every query left out is counted with its reason."""

import json
from dataclasses import dataclass

from evalsets import build_failure_set, load_evalset
from evalsets.failures import JudgeUnavailable, gating_subset
from guardrails.policy import Policy
from helpers import write_evalset


@dataclass
class Verdict:
    index: int | None
    resolved: bool
    reason: str
    judge_model: str = "scripted-judge"


class Scripted:
    """Answers each question with its scripted verdict and remembers what it was shown."""

    def __init__(self, verdicts):
        self.verdicts, self.seen = verdicts, {}

    def __call__(self, question, texts):
        self.seen[question] = texts
        return self.verdicts[question]


def hits(*chunk_ids):
    return json.dumps([{"rank": rank, "doc_id": chunk.split("#")[0], "chunk_id": chunk, "score": 1.0 / rank}
                       for rank, chunk in enumerate(chunk_ids, start=1)])


def rating(query, request_id, results=None, correct=None, source="api"):
    return {"query": query, "request_id": request_id, "results": results, "correct_doc_id": correct,
            "source": source}


ROWS = [
    rating("marked by the user", "r1", hits("d1#0"), correct="d0"),
    rating("which doc answers", "r2", hits("d2#0", "d1#3", "d2#1", "gone#0")),
    rating("  WHICH doc answers ", "r3", hits("d0#0")),  # the same question again: its returned docs join in
    rating("nothing answers", "r4", hits("d0#0")),
    rating("the judge rambles", "r5", hits("d1#0")),
    rating("the judge counts wrong", "r6", hits("d1#0")),
    rating("from the helpdesk", None, None, source="import"),  # no request: nothing was returned to judge
    rating("marked but unknown", "r7", hits("d2#0"), correct="nope"),
]
VERDICTS = {"which doc answers": Verdict(1, True, "passage 2 states it"),
            "nothing answers": Verdict(None, True, "none of them says"),
            "the judge rambles": Verdict(None, False, "no valid verdict: not JSON"),
            "the judge counts wrong": Verdict(4, True, "out of range")}


def corpus(tmp_path):
    docs = [{"doc_id": f"d{i}", "title": f"Title {i}", "text": f"document {i} text"} for i in range(3)]
    return write_evalset(tmp_path / "data", docs, [{"query_id": "q", "text": "q"}], [("q", "d0", 1)]) / "corpus.jsonl"


def test_the_judge_names_the_document_of_a_rating_without_one_and_the_rest_is_counted(tmp_path, capsys):
    from agent.project import gating_failure_set

    resolver, progress = Scripted(VERDICTS), []
    report = build_failure_set(ROWS, corpus(tmp_path), tmp_path / "failures", resolver,
                               lambda stage, done, total: progress.append((done, total)))

    # only ratings without a marked document reach the judge, with the returned corpus documents' texts, best first
    assert set(resolver.seen) == set(VERDICTS)
    assert resolver.seen["which doc answers"] == ["Title 2\ndocument 2 text", "Title 1\ndocument 1 text",
                                                  "Title 0\ndocument 0 text"]
    assert progress == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]  # the helpdesk rating counts, asks nothing
    assert report.queries == 2 and report.with_correct_doc == 1 and report.judged == 1
    assert report.judge_model == "scripted-judge" and report.duplicates_merged == 1
    assert {reason: texts for reason, texts in report.left_out.items() if texts} == {
        "unknown_doc": ["marked but unknown"], "nothing_returned": ["from the helpdesk"],
        "judged_none": ["nothing answers"], "judge_invalid": ["the judge counts wrong", "the judge rambles"]}
    assert report.queries + len(report.skipped_no_answer) == len(ROWS) - report.duplicates_merged
    assert report.skipped_unknown_doc == ["nope"]

    failures = load_evalset(tmp_path / "failures")  # the standard layout, validated
    by_text = {q.text: q for q in failures.queries}
    assert {text: set(failures.qrels[q.query_id]) for text, q in by_text.items()} == {
        "marked by the user": {"d0"}, "which doc answers": {"d1"}}
    judged = by_text["which doc answers"]
    assert judged.metadata == {"relevant_by": "judge", "judge": {
        "model": "scripted-judge", "reason": "passage 2 states it", "passage": 2, "doc_id": "d1",
        "chunk_id": "d1#3"}}
    assert judged.extra == {"sources": ["api"], "request_ids": ["r2", "r3"]}
    assert by_text["marked by the user"].metadata == {"relevant_by": "user"}
    assert "1 named by the LLM judge (scripted-judge)" in (tmp_path / "failures" / "README.md").read_text()

    # the loop's path: the policy's sources decide what gates, and the judge's record goes along
    gating = gating_failure_set(tmp_path / "failures", Policy())
    assert {q.text: q.metadata.get("judge", {}).get("doc_id") for q in gating.queries} == {
        "marked by the user": None, "which doc answers": "d1"}
    assert "2 of 2 queries gate promotion" in capsys.readouterr().out
    assert not gating_subset(failures, ["import"]).queries


def test_without_a_judge_ratings_without_a_document_are_left_out_as_not_judged(tmp_path):
    report = build_failure_set(ROWS, corpus(tmp_path), tmp_path / "failures")
    assert report.queries == 1 and report.judged == 0 and report.judge_model == ""
    assert len(report.left_out["not_judged"]) == 4 and report.left_out["nothing_returned"] == ["from the helpdesk"]


def test_a_judge_that_cannot_be_had_is_asked_once_and_the_rest_is_counted(tmp_path):
    asked = []

    def unavailable(question, texts):
        asked.append(question)
        raise JudgeUnavailable("no LLM endpoint answers")

    report = build_failure_set(ROWS, corpus(tmp_path), tmp_path / "failures", unavailable)
    assert len(asked) == 1 and report.judge_unavailable == "no LLM endpoint answers"
    assert report.queries == 1 and len(report.left_out["not_judged"]) == 4
