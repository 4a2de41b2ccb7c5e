"""Answer a query from retrieved chunks with the LLM, citing chunk ids; Korean or English by the query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evalsets import language_of
from pipelines.llm.client import LLMClient


SYSTEM = {
    "en": ("You answer questions about the company's documents. Use only the numbered context passages. "
           "After each sentence cite the passage ids you used in square brackets, e.g. [doc-1#0]. "
           "If the context does not contain the answer, say you do not know."),
    "ko": ("당신은 회사 문서에 대한 질문에 답합니다. 주어진 문맥 구절만 사용하세요. 각 문장 뒤에 사용한 구절의 id를 "
           "대괄호로 인용하세요. 예: [doc-1#0]. 문맥에 답이 없으면 모른다고 답하세요. 한국어로 답하세요."),
}


def query_language(text: str) -> str:
    """'ko' when the query contains Hangul, else 'en' (the two languages the prompts cover)."""
    return language_of(text)


@dataclass
class Answer:
    text: str
    citations: list[str]
    language: str
    model: str


class Generator:
    def __init__(self, client: LLMClient, max_context_chars: int = 6000):
        self.client = client
        self.max_context_chars = max_context_chars

    def messages(self, query: str, chunks: list[dict[str, Any]]) -> list[dict[str, str]]:
        language = query_language(query)
        context, used = [], 0
        for chunk in chunks:
            piece = f"[{chunk['chunk_id']}]\n{chunk['text']}"
            if used + len(piece) > self.max_context_chars and context:
                break
            context.append(piece)
            used += len(piece)
        label = "문맥" if language == "ko" else "Context"
        question = "질문" if language == "ko" else "Question"
        return [{"role": "system", "content": SYSTEM[language]},
                {"role": "user", "content": f"{label}:\n\n" + "\n\n".join(context) + f"\n\n{question}: {query}"}]

    def answer(self, query: str, chunks: list[dict[str, Any]]) -> Answer:
        text = self.client.chat(self.messages(query, chunks))
        known = {c["chunk_id"] for c in chunks}
        cited = [c for c in re.findall(r"\[([^\[\]]+)\]", text) if c in known]
        return Answer(text.strip(), list(dict.fromkeys(cited)), query_language(query), self.client.model)
