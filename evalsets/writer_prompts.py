"""How the LLM is asked to write an evaluation item: the prompts `evolve evalset synthesize` can use, each with the
JSON schema its reply is decoded by (the fields in the order the model writes them).

- ``question-first``: one question and its short answer, nothing else asked (the first prompt; kept to compare).
- ``evidence-first``: the passage's sentence that holds a fact, the short answer inside it, then the question asking
  for it (answer-aware question generation).
- ``named-subject``: the question first, naming what it asks about (a person who has not read the passage types
  it), a short answer or one or two sentences for how and why, then the sentence of the passage that holds it.
- ``cited-answer``: the first prompt's request, with the question first, then the passage's sentence that answers
  it, then the answer read from that sentence (the answer is grounded in a cited sentence, not recalled).

The measured share of kept items a person accepts, per prompt, model and language, is in
``bench/results/synth_acceptance.md``; :data:`DEFAULT_PROMPT` says why it is the default.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field


class QA(BaseModel):
    question: str = Field(min_length=5, max_length=400)
    answer: str = Field(min_length=1, max_length=600)


class GroundedQA(BaseModel):
    """Evidence, answer, question: the question is formed around a fact the model has already copied out."""
    evidence: str = Field(min_length=5, max_length=800, json_schema_extra={"maxLength": 400})
    answer: str = Field(min_length=1, max_length=600, json_schema_extra={"maxLength": 200})
    question: str = Field(min_length=5, max_length=400, json_schema_extra={"maxLength": 200})


class QAWithEvidence(BaseModel):
    """Question, answer, then the passage's sentence that holds the answer (checked against the passage)."""
    question: str = Field(min_length=5, max_length=400, json_schema_extra={"maxLength": 200})
    answer: str = Field(min_length=1, max_length=600, json_schema_extra={"maxLength": 300})
    evidence: str = Field(min_length=5, max_length=800, json_schema_extra={"maxLength": 400})




@dataclass(frozen=True)
class WriterPrompt:
    name: str
    korean: str
    english: str
    schema: type[BaseModel]


_KO_EXAMPLE_PASSAGE = ("제목: 휴가 규정\n구절: 연차휴가는 입사일 기준으로 매년 15일이 부여되며, 3년 이상 근속하면 "
                       "2년마다 1일씩 가산됩니다.")
_KO_EXAMPLE_EVIDENCE = "연차휴가는 입사일 기준으로 매년 15일이 부여되며, 3년 이상 근속하면 2년마다 1일씩 가산됩니다."
_EN_EXAMPLE_PASSAGE = ("Title: Leave policy\nPassage: Employees receive 15 days of annual leave each year from their "
                       "start date, plus one day for every two years after the third.")
_EN_EXAMPLE_EVIDENCE = ("Employees receive 15 days of annual leave each year from their start date, plus one day for "
                        "every two years after the third.")

QUESTION_FIRST = WriterPrompt(
    "question-first",
    "다음 문서 구절만 보고 답할 수 있는 구체적인 질문 하나와 짧은 정답을 한국어로 만드세요.",
    "Write one specific question that can be answered from this passage alone, and its short correct answer.",
    QA)

EVIDENCE_FIRST = WriterPrompt(
    "evidence-first",
    f"""아래 구절에서 사실 하나를 골라 검색 시스템의 평가 항목을 만드세요. 순서대로 씁니다.
1. evidence: 그 사실이 적힌 문장 하나를 구절에서 그대로 복사합니다.
2. answer: 그 문장 속의 짧은 정답입니다. 이름, 숫자, 날짜, 기간, 용어처럼 한두 단어에서 한 구절로 쓰고, 문장을 통째로 쓰지 않습니다.
3. question: 구절을 보지 못한 사람이 검색창에 입력할 자연스러운 한국어 질문 하나입니다. 그 답이 바로 answer가 되도록 묻고, 묻는 대상(사람, 제도, 사건, 제품의 이름)을 질문 안에 직접 씁니다. '이 문서', '위 글', '이 규정' 같은 표현과 정답은 질문에 넣지 않습니다.

예시
{_KO_EXAMPLE_PASSAGE}
{{"evidence": "{_KO_EXAMPLE_EVIDENCE}", "answer": "15일", "question": "입사하면 연차휴가는 매년 며칠 받나요?"}}""",
    f"""Pick one fact from the passage below and write an evaluation item for a search system, in this order.
1. evidence: copy the one sentence of the passage that states the fact, word for word.
2. answer: the short answer inside that sentence: a name, number, date, period or term, a few words at most, not a whole sentence.
3. question: the natural question a person who has not seen the passage would type into a search box, whose answer is exactly that answer. Name what it asks about (the product, feature, person or rule) in the question. Do not write 'this passage', 'the document', 'the example' or the answer itself in the question. Do not ask about values inside code samples or made-up examples, or about navigation text.

Example
{_EN_EXAMPLE_PASSAGE}
{{"evidence": "{_EN_EXAMPLE_EVIDENCE}", "answer": "15 days", "question": "How many days of annual leave do employees get each year?"}}""",
    GroundedQA)

NAMED_SUBJECT = WriterPrompt(
    "named-subject",
    f"""아래 구절만 보고 답할 수 있는 질문 하나와 정답을 한국어로 만드세요. 검색 시스템을 평가하는 데 씁니다.
- question: 구절을 보지 못한 사람이 검색창에 입력할 자연스러운 질문 하나입니다. 묻는 대상(제목의 사람, 제도, 사건, 제품의 이름)을 질문 안에 직접 씁니다. '이 문서', '위 글', '이 사건' 같은 표현과 정답은 질문에 넣지 않고, 구절의 문장을 그대로 옮겨 적지 않습니다.
- answer: 구절에 적힌 정답입니다. 이름, 숫자, 날짜 같은 사실이면 그 말만 쓰고, 방법이나 이유를 묻는 질문이면 한두 문장으로 씁니다.
- evidence: 정답이 적힌 구절의 문장 하나를 그대로 복사합니다.

예시
{_KO_EXAMPLE_PASSAGE}
{{"question": "입사하면 연차휴가는 매년 며칠 받나요?", "answer": "15일", "evidence": "{_KO_EXAMPLE_EVIDENCE}"}}""",
    f"""Write one question that can be answered from the passage below alone, and its answer. They evaluate a search system.
- question: the natural question a person who has not seen the passage would type into a search box. Name what it asks about (the product, feature, person or rule) in the question. Do not write 'this passage', 'the document', 'the example' or the answer in the question, and do not copy a sentence of the passage. Do not ask about values inside code samples or made-up examples, or about navigation text.
- answer: the answer as the passage gives it: just the name, number or date for a fact; one or two sentences when the question asks how or why.
- evidence: copy the one sentence of the passage that holds the answer, word for word.

Example
{_EN_EXAMPLE_PASSAGE}
{{"question": "How many days of annual leave do employees get each year?", "answer": "15 days", "evidence": "{_EN_EXAMPLE_EVIDENCE}"}}""",
    QAWithEvidence)



class CitedQA(BaseModel):
    """Question, then the passage's sentence that answers it, then the answer read from that sentence."""
    question: str = Field(min_length=5, max_length=400, json_schema_extra={"maxLength": 200})
    evidence: str = Field(min_length=5, max_length=800, json_schema_extra={"maxLength": 400})
    answer: str = Field(min_length=1, max_length=600, json_schema_extra={"maxLength": 300})


CITED_ANSWER = WriterPrompt(
    "cited-answer",
    ("다음 문서 구절만 보고 답할 수 있는 구체적인 질문 하나와 짧은 정답을 한국어로 만드세요. question을 먼저 쓰고, "
     "evidence에 그 질문의 답이 적힌 구절의 문장 하나를 그대로 복사한 뒤, answer에 그 문장에서 찾은 정답을 쓰세요."),
    ("Write one specific question that can be answered from this passage alone, and its short correct answer. Write "
     "the question first, then copy into evidence the one sentence of the passage that answers it, word for word, "
     "then write in answer the answer that sentence gives."),
    CitedQA)

Written = QA | GroundedQA | QAWithEvidence | CitedQA
PROMPTS = {prompt.name: prompt for prompt in (QUESTION_FIRST, EVIDENCE_FIRST, NAMED_SUBJECT, CITED_ANSWER)}
DEFAULT_PROMPT = "question-first"
"""Measured on the same passages (the 1.5B, seed 3; ``bench/results/synth_acceptance.md``), no prompt is better on
Korean and English together: on Korean question-first 20/33 acceptable, cited-answer 14/23, named-subject 17/30
(86% on the company pages but 31% on KorQuAD), evidence-first 11/31; on English question-first 9/17, named-subject
6/13. The first prompt stays the default; the others are there to measure with, and for a writer they suit."""
