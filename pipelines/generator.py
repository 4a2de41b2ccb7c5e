"""Answer a query from retrieved chunks with the LLM, citing chunk ids; Korean or English by the query."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evalsets import language_of
from pipelines.config import GenerationConfig
from pipelines.llm.client import LLMClient
from pipelines.llm.tokens import estimate_text_tokens

VERDICT_ROOM = 800
"""Tokens of a request over the passages that are not the passages: system prompt, instruction or rubric, the
question, the answer quoted in a verdict's request (beside ``max_answer_tokens`` kept for it) and a 200-token
verdict, padded."""
PASSAGES_SYSTEM = "You work with passages from the company's documents (Korean and English)."
"""One system prompt for the generator and the judge's context rubrics: with the context block right after it,
their requests for one query share a long prefix, which llama.cpp and vLLM keep cached (the context is read once,
not once per call)."""
INSTRUCTION = {
    "en": ("Answer the question below from the passages above, in one to three sentences. End each sentence with "
           "the ids of the passages it uses in square brackets, for example: The limit is 50 requests per minute "
           "[rate-limits#0]. If the passages do not contain the answer, say that you do not know."),
    "ko": ("위 구절을 근거로 아래 질문에 한두 문장의 한국어로 답하세요. 각 문장 끝에 근거로 쓴 구절의 id를 대괄호로 "
           "적으세요. 예: 서울은 대한민국의 수도이다 [korea#0]. 구절에 답이 없으면 모른다고 답하세요."),
}
"""What the generator is asked, after the passages (small models follow the last instruction best). The example is
a whole sentence with its citation: given an id alone as the example, a 1.5B model answered with an id alone."""


def context_block(chunks: list[dict[str, Any]] | list[str]) -> str:
    """The passages as every prompt over them starts (chunk dicts by their ids, plain texts numbered)."""
    pieces = [f"[{c['chunk_id']}]\n{c['text']}" if isinstance(c, dict) else f"[{n}]\n{c}"
              for n, c in enumerate(chunks, start=1)]
    return "Context:\n\n" + "\n\n".join(pieces)


def estimate_tokens(text: str) -> int:
    """Tokens a multilingual BPE model (Qwen, Llama 3) spends on ``text``, estimated without its tokenizer:
    about one per Hangul syllable, about one per four characters of other text. Used for the context budget,
    where a character budget would give Korean a third of the context English gets."""
    hangul = sum(1 for char in text if "\uac00" <= char <= "\ud7a3")
    return hangul + (len(text) - hangul + 3) // 4


def query_language(text: str) -> str:
    """'ko' when the query contains Hangul, else 'en' (the two languages the prompts cover)."""
    return language_of(text)


@dataclass
class Answer:
    text: str
    citations: list[str]
    language: str
    model: str
    contexts: list[dict[str, Any]] = field(default_factory=list)
    """The chunks the generator was given (what faithfulness is judged against)."""


class Generator:
    """Answers from the ranking's top chunks as a config's ``generation`` part says (how many, what budget)."""

    def __init__(self, client: LLMClient, generation: GenerationConfig | None = None):
        self.client = client
        self.generation = generation or GenerationConfig()

    def contexts(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The chunks the generator sees: the first ``contexts``, stopping before the budget runs out (the first
        one always goes in, cut to the budget). Two budgets hold: the config's ``context_tokens`` (estimated as a
        Qwen-like tokenizer counts) and the model's own context less the room the answer and each verdict on it
        need (:data:`VERDICT_ROOM`), counted with the safe over-estimate, so a long Korean page cannot overflow a
        4,096-token model whatever its tokenizer."""
        budget, room = self.generation.context_tokens, self.model_room()
        used, used_safe, kept = 0, 0, []
        for chunk in chunks[:self.generation.contexts]:
            cost, safe = estimate_tokens(chunk["text"]), estimate_text_tokens(chunk["text"])
            if kept and (used + cost > budget or used_safe + safe > room):
                break
            if not kept and (cost > budget or safe > room):
                chunk = {**chunk, "text": _cut(chunk["text"], budget, room)}
                cost, safe = estimate_tokens(chunk["text"]), estimate_text_tokens(chunk["text"])
            kept.append(chunk)
            used += cost
            used_safe += safe
        return kept

    def model_room(self) -> int:
        """Tokens (safe estimate) the passages may fill in the model's context: what the server says it holds
        (asked once; a client that cannot say: no limit beyond the config's)."""
        context = getattr(self.client, "context_tokens", None)
        if context is None:
            return 1 << 30
        return max(100, context() - self.generation.max_answer_tokens - VERDICT_ROOM)

    def messages(self, query: str, chunks: list[dict[str, Any]]) -> list[dict[str, str]]:
        """The chat request for ``query`` over the chunks the budget admits (see :meth:`contexts`)."""
        return self._messages(query, self.contexts(chunks))

    def _messages(self, query: str, given: list[dict[str, Any]]) -> list[dict[str, str]]:
        language = query_language(query)
        question = "질문" if language == "ko" else "Question"
        return [{"role": "system", "content": PASSAGES_SYSTEM},
                {"role": "user", "content": f"{context_block(given)}\n\n{INSTRUCTION[language]}\n\n"
                                            f"{question}: {query}"}]

    def answer(self, query: str, chunks: list[dict[str, Any]], timeout: float | None = None) -> Answer:
        """The answer and the ids it cites among the chunks it was given (invented ids are dropped)."""
        given = self.contexts(chunks)
        text = self.client.chat(self._messages(query, given), max_tokens=self.generation.max_answer_tokens,
                                timeout=timeout)
        known = {c["chunk_id"] for c in given}
        cited = [c for c in re.findall(r"\[([^\[\]]+)\]", text) if c in known]
        return Answer(text.strip(), list(dict.fromkeys(cited)), query_language(query), self.client.model, given)


def _cut(text: str, budget: int, room: int) -> str:
    """The longest prefix of ``text`` within ``budget`` estimated tokens and ``room`` safe-estimated ones."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(text[:middle]) <= budget and estimate_text_tokens(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low]
