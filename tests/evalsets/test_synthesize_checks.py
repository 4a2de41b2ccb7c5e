"""Synthesized items a person would ask: the checks on the junk a small model wrote, on real KorQuAD questions, and
the built-in probe that refuses a model before it spends a corpus (a real llama.cpp server with SmolLM2)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from evalsets import EvalSetError, load_evalset, synthesize
from evalsets.question_checks import CHECKS, failed_check, opens_with_a_pointer, refers_to_text, trigrams
from evalsets.synthesize import evidence_holds
from evalsets.writer_probe import probe_writer
from evalsets.writer_prompts import DEFAULT_PROMPT

KORQUAD = Path(os.environ.get("EVOLVE_SHARED_DATA", "/work/shared/data")) / "korquad-v1-dev"
RULING = ("결정내용은 붙임과 같습니다. 2023-08-22 12:22:52.114.11.11 조세심판원은 청구인이 2021년 3월 5일 취득한 토지에 "
          "대하여 양도소득세 감면을 적용할 수 없다고 결정하였다. 감면 요건인 8년 자경 기간을 채우지 못하였기 때문이다.")


@pytest.mark.parametrize(("question", "answer", "why"), [
    # what SmolLM2 kept from 40 tax-ruling HWP files: a timestamp equal to its own answer
    ("2023-08-22 12:22:52.114.11.11", "2023-08-22 12:22:52.114.11.11", "own answer"),
    ("2023-08-22", "2023년 8월 22일", "own answer"),  # the same date written another way
    # a passage sentence turned into a 'question', answered by the same sentence with other endings (the 1.5B on
    # KorQuAD: bench/llm/synth_acceptance_labels.jsonl)
    ("감면 요건인 8년 자경 기간을 채우지 못하였다. 이 사실은 어떻게 설명하는가?", "8년 자경 기간을 채우지 못했습니다.",
     "own answer"),
    ("제2023-0012호", "2021년 3월 5일", "bare literal"),
    ("청구인은 토지를 8년 이상 자경하였다.", "yes", "not a question"),  # a statement answered "yes"
    # questions about the text rather than the matter (the 1.5B on business pages), and answers about the text
    ("이 문서는 어떤 감면을 다루는지?", "양도소득세 감면", "refers to the passage"),
    ("위 글에서 청구인이 받지 못한 감면은?", "양도소득세 감면", "refers to the passage"),
    ("결정의 기준은 어떻게 정의되어 있는지?", "이 문서는 감면 요건을 정의합니다.", "refers to the passage"),
    ("이 사건에서 청구인이 받지 못한 감면은?", "양도소득세 감면", "refers to the passage"),  # points back, names nothing
    ("청구인은 토지를 8년 이상 자경하였습니까?", "예", "uninformative answer"),
    ("결정 내용은 무엇인가요?", "결정내용은 붙임과 같습니다.", "uninformative answer"),  # from the 1.5B's six
    ("When did the claimant buy the land?", "2021년 3월 5일", "wrong language"),
    ("청구인이 토지를 취득한 날은?", "2020년 1월 1일", "ungrounded"),
    ("청구인이 토지를 취득한 날은?", "2021. 3. 5.", None),
    ("청구인이 양도소득세 감면을 받지 못한 이유는 무엇인가요?", "8년 자경 기간을 채우지 못하였기 때문", None),
    ("양도소득세 감면 요건을 설명하시오.", "8년 자경", None),  # an instruction is a fair item too
])
def test_each_check_catches_the_junk_it_names_and_lets_real_questions_through(question, answer, why):
    assert failed_check(question, answer, RULING) == why


def test_a_question_about_the_passage_itself_is_told_from_one_that_names_its_matter():
    assert failed_check("What does the passage say about the claimant?", "8 years", "The claimant farmed for 8 years "
                        "the land.") == "refers to the passage"
    assert refers_to_text("According to the document, when is the office closed?")
    # what the 1.5B wrote from the English demo pages (both labelled not acceptable)
    assert refers_to_text("What is the main purpose of this guide?")
    assert refers_to_text("What is the name of the model used in the code snippet?")
    # the same words where they name the matter, not the text: KorQuAD's and the demo set's own questions
    assert not refers_to_text("이 글로벌 기업의 본사는 어디인가?")
    assert not refers_to_text("다음 주 회의는 어디서 열리나요?")
    assert not refers_to_text('How does the "index" field relate to the text being streamed in a response?')
    # a question that opens by pointing back at what the passage named (the 1.5B on KorQuAD: '이 사건이 언제...')
    assert opens_with_a_pointer("이 사건이 언제 일어났나요?") and opens_with_a_pointer("해당 법안은 언제 통과됐나?")
    assert opens_with_a_pointer("This method improves recall by how much?")
    assert not opens_with_a_pointer("이사회는 언제 열리나요?") and not opens_with_a_pointer("When did this event start?")
    assert not opens_with_a_pointer("그린콘텐츠무브먼트의 대표는 누구인가?")


def test_a_reworded_repeat_is_a_near_duplicate():
    kept = [trigrams("청구인이 토지를 취득한 날은 언제인가?")]
    assert failed_check("청구인이 토지를 취득한 날은 언제인가요?", "2021년 3월 5일", RULING, kept) == "near duplicate"
    assert failed_check("청구인이 받지 못한 감면은 무엇인가?", "양도소득세 감면", RULING, kept) is None


def test_people_s_korquad_questions_pass_the_checks():
    path = KORQUAD / "queries.jsonl"
    if not path.is_file():
        pytest.skip(f"KorQuAD v1 dev is not at {KORQUAD}")
    docs = {d["doc_id"]: d["text"] for d in map(json.loads, (KORQUAD / "corpus.jsonl").open(encoding="utf-8"))}
    relevant = dict(row.split("\t")[:2] for row in (KORQUAD / "qrels.tsv").read_text().splitlines()[1:])
    queries = [json.loads(line) for line in path.open(encoding="utf-8")]
    sample = random.Random(0).sample(queries, 200)
    kept: list[set[str]] = []
    failed = []
    for q in sample:
        why = failed_check(q["text"], q["answers"][0], docs[relevant[q["query_id"]]], kept)
        if why is None:
            kept.append(trigrams(q["text"]))
        else:
            failed.append(why)
    assert len(failed) <= 2  # written by people: (almost) all pass


class Scripted:
    """Replies in order, as a model would give them (for the counting, not the model)."""

    model = "scripted"

    def __init__(self, replies: list[str]):
        self.replies = list(replies)

    def structured(self, messages, schema, **params):
        return schema.model_validate_json(self.replies.pop(0))


def written(question: str, answer: str, evidence: str) -> str:
    """A writer's reply, in the order the schema asks for it."""
    return json.dumps({"evidence": evidence, "answer": answer, "question": question}, ensure_ascii=False)


def test_every_check_is_counted_and_progress_is_reported_per_passage(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    texts = [RULING, RULING.replace("2021년 3월 5일", "2019년 7월 1일"), RULING.replace("8년", "10년")]
    corpus.write_text("".join(json.dumps({"doc_id": f"d{i}", "title": "결정", "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(texts)), "utf-8")
    reason = "감면 요건인 8년 자경 기간을 채우지 못하였기 때문이다."
    replies = [written("2023-08-22 12:22:52", "2023-08-22 12:22:52", "2023-08-22 12:22:52.114.11.11"),
               written("청구인이 양도소득세 감면을 받지 못한 이유는 무엇인가요?", "8년 자경 기간을 채우지 못함", reason),
               written("결정 내용은 무엇인가요?", "결정내용은 붙임과 같습니다.", "결정내용은 붙임과 같습니다."),
               # the answer is not in the sentence the model copied, or the sentence is not the passage's
               written("토지 취득일은 언제인가요?", "2021년 3월 5일", reason),
               written("감면 요건인 자경 기간은 몇 년인가요?", "8년", "감면 요건은 8년 이상 자경한 경우에 한한다.")]
    seen = []
    report = synthesize(corpus, tmp_path / "set", Scripted(replies), n=5, check_answerable=False,
                        progress=lambda done, total, outcome: seen.append((done, total, outcome)),
                        prompt="named-subject")  # a prompt that asks for the evidence sentence
    assert [s[:2] for s in seen] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert sorted(s[2] for s in seen) == ["kept", "own answer", "ungrounded", "ungrounded", "uninformative answer"]
    assert report.kept == 1 and set(report.failed) == set(CHECKS)
    assert report.failed["own answer"] == 1 and report.failed["uninformative answer"] == 1
    assert "1 own answer" in report.checks_line() and "2 ungrounded" in report.checks_line()
    kept = load_evalset(tmp_path / "set").queries
    assert [q.text for q in kept] == ["청구인이 양도소득세 감면을 받지 못한 이유는 무엇인가요?"]
    assert kept[0].metadata["evidence"] == reason and kept[0].metadata["writer_prompt"] == "named-subject"
    with pytest.raises(EvalSetError, match="1 own answer"):
        synthesize(corpus, tmp_path / "none", Scripted(replies[:1] * 3), n=1, check_answerable=False)


def test_evidence_must_be_the_passage_s_and_hold_the_answer():
    assert evidence_holds("감면 요건인 8년 자경 기간을 채우지 못하였기 때문이다", "8년", RULING)  # no full stop
    assert evidence_holds("감면요건인 8년 자경기간을 채우지 못하였기 때문이다.", "8년 자경 기간", RULING)  # spacing
    assert not evidence_holds("감면 요건인 8년 자경 기간을 채우지 못하였기 때문이다.", "2021년 3월 5일", RULING)
    assert not evidence_holds("감면 요건은 10년 이상 자경한 경우에 한한다.", "10년", RULING)


def test_the_probe_passes_a_model_that_gets_the_built_in_items_right_and_names_each_miss():
    right = [written("서울시립도서관의 휴관일은 언제인가요?", "매주 월요일", "매주 월요일은 휴관한다."),
             '{"reason": "5권", "answerable": 1}', '{"reason": "주차 요금은 없음", "answerable": 0}',
             '{"reason": "월요일", "answerable": 1}', '{"reason": "관장은 없음", "answerable": 0}']
    assert probe_writer(Scripted(right), "ko").passed
    yes_man = [written("2024-01-01", "2024-01-01", "매주 월요일은 휴관한다.")] + ['{"reason": "ok", "answerable": 1}'] * 4
    result = probe_writer(Scripted(yes_man), "ko")
    assert not result.passed and len(result.misses) == 3
    assert "(own answer)" in result.misses[0] and "'시간당 1,000원'" in result.misses[1]


def test_smollm2_is_refused_for_korean_by_the_cli_and_force_overrides(tmp_path, monkeypatch, smollm2_server):
    """`evolve evalset synthesize` with the real SmolLM2 server on a Korean corpus: one line naming a model that
    works, exit 2; --force goes on and shows progress per passage."""
    from typer.testing import CliRunner

    from agent.cli import app

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "d0", "title": "결정", "text": RULING}, ensure_ascii=False) + "\n",
                      "utf-8")
    settings = smollm2_server
    args = ["evalset", "synthesize", "--corpus", str(corpus), "--out", str(tmp_path / "set"), "--n", "1",
            "--llm-base-url", settings.base_url, "--llm-model", settings.model, "--project-dir", str(tmp_path)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert "built-in ko check" in refused.output and "qwen2.5-coder-1.5b" in refused.output
    forced = CliRunner().invoke(app, [*args, "--force"])
    said = " ".join(forced.output.split())  # the console wraps long lines
    assert "going on (--force)" in said and "passage 1/1:" in said


def test_every_writer_prompt_asks_for_a_question_and_answer_and_an_unknown_one_is_refused(tmp_path):
    from typer.testing import CliRunner

    from agent.cli import app
    from evalsets.writer_prompts import PROMPTS

    assert DEFAULT_PROMPT in PROMPTS
    for prompt in PROMPTS.values():
        fields = set(prompt.schema.model_json_schema()["properties"])
        assert {"question", "answer"} <= fields and prompt.korean and prompt.english
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "d0", "title": "결정", "text": RULING}, ensure_ascii=False) + "\n", "utf-8")
    refused = CliRunner().invoke(app, ["evalset", "synthesize", "--corpus", str(corpus), "--out", str(tmp_path / "s"),
                                       "--prompt", "freestyle", "--project-dir", str(tmp_path)])
    assert refused.exit_code == 2 and "is not one of" in refused.output and not (tmp_path / "s").exists()
