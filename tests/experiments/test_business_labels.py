"""The Korean business-document labels of the judge's calibration bench (bench/llm/business_labels.py) are well
formed: a labels file experiments/calibration.py reads, right and wrong answers to every question, long-form
references, and labels that agree with the facts each answer gives. No LLM."""

import json
from collections import Counter

import pytest

from bench.llm import business_labels
from bench.llm.business_labels import CORRECTIONS, LABEL, PASSAGES, SOURCE, answer_text
from evalsets import language_of
from experiments import read_labels


def gives(answer: str, fact: str) -> bool:
    return any(form in answer for form in fact.split("|"))


def test_a_labels_file_of_them_reads(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in business_labels.items()), "utf-8")
    read = read_labels(path)
    assert len(read) >= 60
    assert {i.source for i in read} == {SOURCE} and {i.metric for i in read} == {"correctness"}
    assert all(language_of(i.question) == "ko" and language_of(i.answer) == "ko" for i in read)
    assert {i.id.rsplit("-", 1)[1] for i in read} == set(LABEL)  # the kind is the id's last part, every kind present


def test_every_question_has_right_and_wrong_answers_and_labels_are_balanced():
    by_question: dict[str, set[int]] = {}
    for item in business_labels.items():
        by_question.setdefault(item["question"], set()).add(item["label"])
    assert len(by_question) >= 16 and all(labels == {0, 1} for labels in by_question.values())
    counts = Counter(i["label"] for i in business_labels.items())
    assert abs(counts[1] - counts[0]) <= len(business_labels.items()) // 5


@pytest.mark.parametrize("passage", PASSAGES, ids=lambda p: p.name)
def test_passages_are_long_and_references_long_form_and_grounded(passage):
    assert 800 <= len(passage.text) <= 2000
    assert 2 <= len(passage.questions) <= 3
    for question in passage.questions:
        assert len(question.reference) >= 50 and question.reference.endswith("다.")  # sentences, not a span
        for fact in question.key_facts:
            assert fact.split("|")[0] in passage.text, fact
            assert gives(question.reference, fact), fact


@pytest.mark.parametrize("passage", PASSAGES, ids=lambda p: p.name)
def test_right_answers_give_every_key_fact_and_the_others_miss_one(passage):
    for index, question in enumerate(passage.questions):
        for kind in question.answers:
            item_id = f"{SOURCE}-{passage.name}-{index + 1}-{kind}"
            if item_id in CORRECTIONS:
                continue
            answer = answer_text(passage, index, kind)
            assert answer != question.reference
            given = all(gives(answer, fact) for fact in question.key_facts)
            assert given == (LABEL[kind] == 1), (item_id, answer)
