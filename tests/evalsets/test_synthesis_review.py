"""A person's verdicts on synthesized questions: recorded before anything changes, rejected questions out of the set
(and never written again), the share accepted per writer; the CLI driven through its prompts as a reviewer would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsets import (EvalSetError, acceptance, apply_rejections, load_evalset, passage_excerpt, pending,
                      record_verdict, synthesize)
from evalsets.review import REVIEWS, read_reviews
from helpers import evolve

DOCS = [("d0", "연차 규정", "연차는 입사 1년 후 15일이 주어진다. 미사용 연차는 최대 5일까지 이월할 수 있다."),
        ("d1", "출장 규정", "국내 출장의 일비는 하루 3만 원이다. 해외 출장은 본부장의 승인을 받아야 한다."),
        ("d2", "VPN 안내", "사무실 밖에서 사내 시스템에 접속하려면 VPN을 사용해야 한다.")]
SYNTHESIZED = [("syn-00000", "미사용 연차는 최대 며칠까지 이월할 수 있나요?", "5일", "d0"),
               ("syn-00001", "국내 출장비는 몇만 원입니다?", "3만 원", "d1"),  # the per-day allowance, not the expense
               ("syn-00002", "사내 시스템에 밖에서 접속하려면 무엇을 써야 하나요?", "VPN", "d2")]


def make_set(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"doc_id": d, "title": t, "text": x}, ensure_ascii=False) + "\n" for d, t, x in DOCS), "utf-8")
    queries = [{"query_id": "q-people", "text": "해외 출장은 누구의 승인을 받아야 하나요?", "answers": ["본부장"]}]
    queries += [{"query_id": i, "text": q, "answers": [a],
                 "metadata": {"source_doc": d, "generator": "qwen2.5-coder-1.5b", "writer_prompt": "question-first"}}
                for i, q, a, d in SYNTHESIZED]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), "utf-8")
    (folder / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq-people\td1\t1\n"
                                      + "".join(f"{i}\t{d}\t1\n" for i, _, _, d in SYNTHESIZED), "utf-8")
    return folder


def test_a_rejected_question_leaves_the_set_with_its_verdict_kept_and_the_share_is_measured(tmp_path):
    folder = make_set(tmp_path / "set")
    assert [q["query_id"] for q in pending(folder)] == ["syn-00000", "syn-00001", "syn-00002"]  # people's: not
    queries = {q["query_id"]: q for q in pending(folder)}
    record_verdict(folder, queries["syn-00000"], True, "kim")
    record_verdict(folder, queries["syn-00001"], False, "kim", "3만 원 is the daily allowance ")
    loaded = load_evalset(folder)  # still a valid set, without the rejected question and its qrels row
    assert sorted(q.query_id for q in loaded.queries) == ["q-people", "syn-00000", "syn-00002"]
    assert "syn-00001" not in (folder / "qrels.tsv").read_text("utf-8")
    assert [q["query_id"] for q in pending(folder)] == ["syn-00002"]
    reviews = read_reviews(folder)
    assert [r["verdict"] for r in reviews] == ["accept", "reject"]
    assert reviews[1]["reason"] == "3만 원 is the daily allowance" and reviews[1]["reviewer"] == "kim"
    assert reviews[1]["query"]["text"] == "국내 출장비는 몇만 원입니다?" and reviews[1]["qrels"] == ["syn-00001\td1\t1"]
    [share] = acceptance(folder)
    assert (share.generator, share.writer_prompt, share.accepted, share.reviewed) == (
        "qwen2.5-coder-1.5b", "question-first", 1, 2)
    low, high = share.interval
    assert 0.0 < low < 0.5 < high < 1.0
    assert apply_rejections(folder) == 0  # idempotent


def test_a_crash_between_the_verdict_and_the_rewrite_is_completed_and_an_edited_item_is_asked_again(tmp_path):
    folder = make_set(tmp_path / "set")
    query = pending(folder)[2]
    # the verdict line was written, the process died before the set was rewritten
    (folder / REVIEWS).write_text(json.dumps({
        "query_id": query["query_id"], "question": query["text"], "answers": query["answers"], "verdict": "reject",
        "reason": "", "reviewer": "kim", "at": "2026-12-07T00:00:00+00:00", "generator": "m", "writer_prompt": "p",
        "query": query, "qrels": []}, ensure_ascii=False) + "\n", "utf-8")
    assert apply_rejections(folder) == 1
    assert "syn-00002" not in {q.query_id for q in load_evalset(folder).queries}
    # a verdict is on the words it was given on: a question edited since is reviewed again
    accepted = pending(folder)[0]
    record_verdict(folder, accepted, True, "kim")
    lines = (folder / "queries.jsonl").read_text("utf-8").replace("최대 며칠까지", "며칠까지")
    (folder / "queries.jsonl").write_text(lines, "utf-8")
    assert [q["query_id"] for q in pending(folder)] == ["syn-00000", "syn-00001"]


def test_the_excerpt_is_around_the_cited_sentence_else_the_answer():
    text = "가" * 1000 + " 미사용 연차는 최대 5일까지 이월할 수 있다. " + "나" * 1000
    excerpt = passage_excerpt(text, "5일")
    assert "최대 5일까지" in excerpt and excerpt.startswith("...") and excerpt.endswith("...")
    assert len(excerpt) < 700
    assert passage_excerpt("짧은 글", "없는 답") == "짧은 글"


class Scripted:
    model = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)

    def structured(self, messages, schema, **params):
        return schema.model_validate_json(self.replies.pop(0))


def test_synthesis_does_not_write_a_rejected_question_again_nor_reuse_its_id(tmp_path):
    folder = make_set(tmp_path / "set")
    rejected = pending(folder)[1]
    record_verdict(folder, rejected, False, "kim")
    again = json.dumps({"question": rejected["text"], "answer": "3만 원"}, ensure_ascii=False)
    with pytest.raises(EvalSetError, match="1 near duplicate"):  # the same words from the same page: dropped
        synthesize(folder, folder, Scripted([again]), n=1, check_answerable=False, only={"d1"})
    new = json.dumps({"question": "해외 출장은 누구의 승인이 필요한가요?", "answer": "본부장"}, ensure_ascii=False)
    assert synthesize(folder, folder, Scripted([new]), n=1, check_answerable=False, only={"d1"}).kept == 1
    ids = [q.query_id for q in load_evalset(folder).queries]
    assert "syn-00001" not in ids and len(ids) == len(set(ids)) == 4


def test_the_cli_takes_verdicts_from_its_prompts_saves_each_and_goes_on_where_it_stopped(tmp_path):
    folder = make_set(tmp_path / "set")
    first = evolve("evalset", "review", "--set", str(folder), "--reviewer", "kim",
                   input="y\nn\n3만 원 is the daily allowance\nq\n")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "미사용 연차는 최대 5일까지" in first.stdout  # the passage is shown around the answer
    assert "1 synthesized questions left to review" in first.stdout.replace("\n", " ")
    assert "1/2" in first.stdout and "50% [" in first.stdout
    assert [r["verdict"] for r in read_reviews(folder)] == ["accept", "reject"]
    assert "syn-00001" not in {q.query_id for q in load_evalset(folder).queries}
    # the next review starts at the one left; a closed input (EOF) ends it cleanly with what was given
    second = evolve("evalset", "review", "--set", str(folder), input="")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "사내 시스템에 밖에서" in second.stdout and "0 verdicts given now" in second.stdout
    table_only = evolve("evalset", "review", "--set", str(folder), "--limit", "0")
    assert table_only.returncode == 0 and "Q:" not in table_only.stdout and "1/2" in table_only.stdout
    missing = evolve("evalset", "review", "--set", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "no queries.jsonl" in missing.stdout + missing.stderr


def test_a_broken_review_file_or_queries_file_is_one_line_naming_it_and_changes_nothing(tmp_path):
    folder = make_set(tmp_path / "set")
    before = (folder / "queries.jsonl").read_text("utf-8")
    (folder / REVIEWS).write_text('{"query_id": "syn-00000", \n', "utf-8")
    broken = evolve("evalset", "review", "--set", str(folder), input="y\n")
    assert broken.returncode == 2 and "reviews.jsonl:1: bad JSON" in broken.stderr
    assert "Traceback" not in broken.stderr and (folder / "queries.jsonl").read_text("utf-8") == before
    (folder / REVIEWS).unlink()
    (folder / "queries.jsonl").write_text(before + "not json\n", "utf-8")
    bad_queries = evolve("evalset", "review", "--set", str(folder), input="y\n")
    assert bad_queries.returncode == 2 and "queries.jsonl:5: bad JSON" in bad_queries.stderr
    assert not (folder / REVIEWS).exists()
