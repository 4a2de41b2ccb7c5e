"""LLM-judged answer metrics: correctness vs a reference, faithfulness to the context, context relevance.

Implemented on our own client rather than ragas: ragas 0.4 sends ``json_object`` prompts written for
large hosted models, and the small local judges we can run offline follow an explicit binary rubric
with ``json_schema`` output far more reliably (MODELS.md). Each score is a 0/1 verdict with a reason,
and every score carries the judge's model name, so scores of different judges are never mixed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from pipelines import PASSAGES_SYSTEM, context_block
from pipelines.llm import LLMClient, LLMError

REASON_CHARS = 240
"""The longest reason a server that decodes by the JSON schema lets a judge write (the schema's ``maxLength``; the
reply is not refused for a longer one). Unbounded, SmolLM2 wrote reasons until its 200-token cap cut the JSON and a
repair round followed: six faithfulness verdicts took 15.3 s with 2 of 6 invalid, bounded at 160 characters 5.9 s
with 0 invalid. The 1.5B's verdicts do not change under it (the 72 business-document calibration items: the same
verdict on all 71 judged before, bench/results/judge_calibration-ko-business-bounded-qwen2.5-coder-1.5b.md)."""


class Verdict(BaseModel):
    reason: str = Field(description="one short sentence", json_schema_extra={"maxLength": REASON_CHARS})
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
CHUNK_RUBRIC = ("You find which numbered passage answers a question.\n"
                "Reply with the number of the passage that contains the answer, or 0 when none of them does.")


class ChunkChoice(BaseModel):
    reason: str = Field(description="one short sentence", json_schema_extra={"maxLength": REASON_CHARS})
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

    def _verdict(self, metric: str, content: str, contexts: list[Any] | None = None) -> JudgedScore:
        """With ``contexts``, the request opens like the generator's over them (same system prompt, same context
        block), so a server's prompt cache reads the passages once for the answer and its verdicts."""
        if contexts is None:
            messages = [{"role": "system", "content": RUBRICS[metric] + "\n" + REPLY},
                        {"role": "user", "content": content}]
        else:
            messages = [{"role": "system", "content": PASSAGES_SYSTEM},
                        {"role": "user", "content": f"{context_block(contexts)}\n\n{RUBRICS[metric]}\n{REPLY}\n\n"
                                                    f"{content}"}]
        limit = {"timeout": seconds} if self.timeout and (seconds := self.timeout()) is not None else {}
        try:
            verdict = self.client.structured(messages, Verdict, max_tokens=200, **limit)
        except LLMError as err:
            return JudgedScore(metric, None, f"no valid verdict: {err}", self.model)
        return JudgedScore(metric, float(verdict.score), verdict.reason, self.model)

    def correctness(self, question: str, answer: str, reference: str) -> JudgedScore:
        return self._verdict("correctness", f"Question: {question}\nReference answer: {reference}\nAnswer: {answer}")

    def faithfulness(self, answer: str, contexts: list[Any]) -> JudgedScore:
        """``contexts``: texts, or the chunk dicts the generator was given (then the prompts share a prefix)."""
        return self._verdict("faithfulness", f"Answer: {answer}", contexts)

    def context_relevance(self, question: str, contexts: list[Any]) -> JudgedScore:
        return self._verdict("context_relevance", f"Question: {question}", contexts)

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
