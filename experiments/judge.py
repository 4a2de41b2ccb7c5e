"""LLM-judged answer metrics: correctness vs a reference, faithfulness to the context, context relevance.

Implemented on our own client rather than ragas: ragas 0.4 sends ``json_object`` prompts written for
large hosted models, and the small local judges we can run offline follow an explicit binary rubric
with ``json_schema`` output far more reliably (MODELS.md). Each score is a 0/1 verdict with a reason,
and every score carries the judge's model name, so scores of different judges are never mixed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from evalsets import language_of
from pipelines import PASSAGES_SYSTEM, context_block
from pipelines.llm import LLMClient, LLMError


class Verdict(BaseModel):
    reason: str = Field(description="one short sentence")
    score: Literal[0, 1]


class FactsVerdict(BaseModel):
    """The Korean judge's verdict: the reference's key facts first, the verdict last, so a small model names what
    must be said before it decides (it rejected right Korean answers worded unlike the reference)."""

    key_facts: str = Field(description="the key facts (names, numbers, dates) the reference gives")
    reason: str = Field(description="one short sentence: does the answer give those facts?")
    score: Literal[0, 1]


@dataclass
class JudgedScore:
    metric: str
    value: float | None
    """1.0 / 0.0, or None when the judge could not produce a valid verdict."""
    reason: str
    judge_model: str


RUBRICS = {
    "correctness": ("You grade an answer against a reference answer.\n"
                    "Score 1 = the answer is correct: it gives what the reference answers (wording may differ, "
                    "and it may be longer or add details, as long as nothing contradicts the reference).\n"
                    "Score 0 = the answer is wrong, contradicts the reference, or does not give its main point."),
    "faithfulness": ("You check whether an answer is supported by the context passages.\n"
                     "Score 1 = every claim in the answer is supported by the context.\n"
                     "Score 0 = the answer states something the context does not support."),
    "context_relevance": ("You check whether the context passages contain what is needed to answer the question.\n"
                          "Score 1 = the context contains the answer.\nScore 0 = it does not."),
    "answer_quality": ("You grade an assistant's answer to a user's question, given the context passages it had.\n"
                       "Score 1 = the answer responds to the question and what it states is supported by the context "
                       "(or it rightly says the context does not contain the answer).\n"
                       "Score 0 = it does not answer the question, or states something the context does not support."),
}
REPLY = "Reply as JSON with a short reason, then score."
KOREAN_RUBRICS = {
    "correctness": ("당신은 답변이 참조 답변과 같은 내용을 말하는지 채점합니다.\n"
                    "먼저 참조 답변의 핵심 사실(이름, 숫자, 날짜 등)을 적고, 답변에 그 사실이 있는지 확인한 뒤 점수를 "
                    "매기세요.\n"
                    "1점 = 답변에 참조 답변의 핵심 사실이 있다. 표현이 다르거나, 더 길거나, 세부 내용을 덧붙여도 참조 "
                    "답변과 모순되지 않으면 1점입니다.\n"
                    "0점 = 답변에 핵심 사실이 없거나, 다른 사실을 말하거나, 참조 답변과 모순된다.\n"
                    "예시: 질문 \"훈민정음을 창제한 왕은?\", 참조 답변 \"세종대왕\", 답변 \"훈민정음은 조선의 네 번째 "
                    "임금인 세종이 1443년에 만들었습니다.\" -> 핵심 사실: 세종대왕. 답변이 세종이라고 말하므로 1점.\n"
                    "같은 질문에 답변 \"태종이 만들었습니다.\" -> 핵심 사실 세종대왕이 없으므로 0점."),
    "faithfulness": ("당신은 답변이 위 구절에 근거하는지 확인합니다.\n"
                     "1점 = 답변의 모든 내용이 구절에 있다.\n0점 = 답변이 구절에 없는 내용을 말한다."),
    "context_relevance": ("당신은 위 구절에 질문의 답이 있는지 확인합니다.\n"
                          "1점 = 구절에 답이 있다.\n0점 = 구절에 답이 없다."),
}
"""Korean questions get Korean instructions (a 1.5B judge given the English rubric rejected 25 of 30 right Korean
answers, bench/results/judge_calibration.md): the scale in words, and for correctness an example of a right answer
worded unlike its reference."""
KOREAN_REPLY = {"correctness": "JSON으로 답하세요: key_facts(참조 답변의 핵심 사실), reason(한 문장), score(1 또는 0) 순서.",
                "faithfulness": "JSON으로 답하세요: reason(한 문장), score(1 또는 0) 순서.",
                "context_relevance": "JSON으로 답하세요: reason(한 문장), score(1 또는 0) 순서."}
KOREAN_LABELS = {"Question": "질문", "Reference answer": "참조 답변", "Answer": "판정할 답변"}
CHUNK_RUBRIC = ("You find which numbered passage answers a question.\n"
                "Reply with the number of the passage that contains the answer, or 0 when none of them does.")


class ChunkChoice(BaseModel):
    reason: str = Field(description="one short sentence")
    passage: int = Field(ge=0, description="the passage that answers the question; 0 = none")


@dataclass
class ChunkVerdict:
    """Which of the given chunks answers a question: ``index`` into them, None = none does; ``resolved`` is False
    when the judge gave no valid verdict (then ``index`` means nothing)."""

    index: int | None
    resolved: bool
    reason: str
    judge_model: str


class Judge:
    def __init__(self, client: LLMClient, timeout: Callable[[], float | None] | None = None):
        self.client = client
        self.timeout = timeout
        """Seconds a verdict may still take (asked before each call: a caller's deadline); None: the client's."""

    @property
    def model(self) -> str:
        return self.client.model

    def _verdict(self, metric: str, content: str, contexts: list[Any] | None = None,
                 korean: bool = False) -> JudgedScore:
        """With ``contexts``, the request opens like the generator's over them (same system prompt, same context
        block), so a server's prompt cache reads the passages once for the answer and its verdicts. ``korean``:
        the Korean rubric, labels and (for correctness) the key-facts-first verdict."""
        rubric, reply, schema = RUBRICS.get(metric), REPLY, Verdict
        if korean and metric in KOREAN_RUBRICS:
            rubric, reply = KOREAN_RUBRICS[metric], KOREAN_REPLY[metric]
            schema = FactsVerdict if metric == "correctness" else Verdict
            for english, hangul in KOREAN_LABELS.items():
                content = content.replace(f"{english}: ", f"{hangul}: ")
        if contexts is None:
            messages = [{"role": "system", "content": rubric + "\n" + reply},
                        {"role": "user", "content": content}]
        else:
            messages = [{"role": "system", "content": PASSAGES_SYSTEM},
                        {"role": "user", "content": f"{context_block(contexts)}\n\n{rubric}\n{reply}\n\n"
                                                    f"{content}"}]
        limit = {"timeout": seconds} if self.timeout and (seconds := self.timeout()) is not None else {}
        try:
            verdict = self.client.structured(messages, schema, max_tokens=300 if schema is FactsVerdict else 200,
                                             **limit)
        except LLMError as err:
            return JudgedScore(metric, None, f"no valid verdict: {err}", self.model)
        return JudgedScore(metric, float(verdict.score), verdict.reason, self.model)

    def correctness(self, question: str, answer: str, reference: str) -> JudgedScore:
        return self._verdict("correctness", f"Question: {question}\nReference answer: {reference}\nAnswer: {answer}",
                             korean=language_of(question) == "ko")

    def faithfulness(self, answer: str, contexts: list[Any]) -> JudgedScore:
        """``contexts``: texts, or the chunk dicts the generator was given (then the prompts share a prefix)."""
        return self._verdict("faithfulness", f"Answer: {answer}", contexts, korean=language_of(answer) == "ko")

    def context_relevance(self, question: str, contexts: list[Any]) -> JudgedScore:
        return self._verdict("context_relevance", f"Question: {question}", contexts,
                             korean=language_of(question) == "ko")

    def answer_quality(self, question: str, answer: str, contexts: list[Any]) -> JudgedScore:
        """Is this served answer good? (what a user's good/bad rating of an /answer response says)"""
        return self._verdict("answer_quality", f"Question: {question}\nAnswer: {answer}", contexts)

    def answering_chunk(self, question: str, chunks: list[str]) -> ChunkVerdict:
        """Which chunk (if any) answers ``question``: for a bad rating that names no right document."""
        passages = "\n\n".join(f"[{number}] {text}" for number, text in enumerate(chunks, start=1))
        messages = [{"role": "system", "content": CHUNK_RUBRIC + "\nReply as JSON with a short reason, then passage."},
                    {"role": "user", "content": f"Passages:\n{passages}\n\nQuestion: {question}"}]
        try:
            choice = self.client.structured(messages, ChunkChoice, max_tokens=200)
        except LLMError as err:
            return ChunkVerdict(None, False, f"no valid verdict: {err}", self.model)
        if choice.passage > len(chunks):
            return ChunkVerdict(None, False, f"named passage {choice.passage} of {len(chunks)}", self.model)
        return ChunkVerdict(choice.passage - 1 if choice.passage else None, True, choice.reason, self.model)

    def correctness_many(self, items: list[tuple[str, str, str]]) -> list[JudgedScore]:
        """(question, answer, reference) triples, judged with the client's concurrency."""
        with ThreadPoolExecutor(self.client.settings.max_concurrency) as pool:
            return list(pool.map(lambda item: self.correctness(*item), items))


def mean_score(scores: list[JudgedScore]) -> dict[str, float | int | str]:
    valid = [s.value for s in scores if s.value is not None]
    models = {s.judge_model for s in scores}
    if len(models) > 1:
        raise ValueError(f"scores from different judges must not be mixed: {sorted(models)}")
    return {"mean": sum(valid) / len(valid) if valid else float("nan"), "judged": len(valid),
            "invalid": len(scores) - len(valid), "judge_model": models.pop() if models else ""}
