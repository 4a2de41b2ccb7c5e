"""How many tokens a chat request costs, and how many the server's context holds, asked of the server itself.

A prompt that overflows the context is refused whole ("request (7154 tokens) exceeds the available context size"),
so callers that send long text (failure examples quoting Korean pages) count before they send. The server's own
tokenizer is exact: llama.cpp (``/apply-template`` + ``/tokenize``) and vLLM (``/tokenize`` with messages) have one.
Elsewhere a safe over-estimate stands in. Every request here is short and bounded; a failure never raises, it
falls back (to the estimate, to the configured context size).
"""

from __future__ import annotations

import math
import re
from typing import Any

import httpx

TIMEOUT_S = 5.0
"""Seconds for one counting or props request: the server answers these in milliseconds when it is up."""
PER_MESSAGE = 8
"""Chat-template tokens around one message (role markers, separators), padded: ChatML spends 5."""
PER_REQUEST = 16
"""Tokens of the template's start and the assistant's opening, padded."""


def server_root(base_url: str) -> str:
    """The server's root for its non-OpenAI endpoints: ``base_url`` without the trailing ``/v1``."""
    return base_url.rstrip("/").removesuffix("/v1")


PIECES = re.compile(r"[A-Za-z]+|\s+|.", re.DOTALL)
"""What a BPE tokenizer splits text into before it merges: letter runs, whitespace, single other characters."""


def estimate_text_tokens(text: str) -> int:
    """An upper bound in practice, from the pieces a BPE pre-tokenizer makes: a letter run one token per four
    letters (common words are one), a digit or a punctuation mark one token each (SmolLM2 and Qwen split every
    digit; JSON is ~2.3 characters a token on SmolLM2), a line break one, and a character outside ASCII its UTF-8
    bytes (a byte-level BPE never spends more; SmolLM2, with few Hangul merges, spends ~3 a Korean syllable,
    Qwen ~1). Spaces join the next word."""
    tokens = 0
    for piece in PIECES.findall(text):
        if piece[0].isspace():
            tokens += piece.count("\n")
        elif piece.isascii():
            tokens += math.ceil(len(piece) / 4) if piece.isalpha() else 1
        else:
            tokens += len(piece.encode("utf-8"))
    return tokens


def estimate_chat_tokens(messages: list[dict[str, Any]]) -> int:
    """A chat request's prompt tokens without the server's tokenizer, erring high (10% over the text's bound plus
    the template's overhead): where a request is refused when it overflows, too many is the cheap mistake."""
    text = sum(estimate_text_tokens(str(message.get("content") or "")) for message in messages)
    return math.ceil(1.1 * text) + PER_MESSAGE * len(messages) + PER_REQUEST


class ServerTokens:
    """The counting and context endpoints of one server; which of them it has is learned once and remembered."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = TIMEOUT_S):
        self.base_url, self.root, self.model = base_url.rstrip("/"), server_root(base_url), model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s
        self.counter: str | None = None
        """'llama.cpp', 'vllm' or 'estimate' once known."""
        self._context: int | None = None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return _json(httpx.post(self.root + path, json=body, headers=self.headers, timeout=self.timeout_s))

    def _get(self, url: str) -> dict[str, Any] | None:
        return _json(httpx.get(url, headers=self.headers, timeout=self.timeout_s))

    def _count_llama(self, messages: list[dict[str, Any]]) -> int | None:
        """llama.cpp: the prompt its chat template makes of the messages, tokenized as a completion tokenizes it."""
        templated = self._post("/apply-template", {"messages": messages})
        if not templated or not isinstance(templated.get("prompt"), str):
            return None
        tokens = (self._post("/tokenize", {"content": templated["prompt"], "add_special": True}) or {}).get("tokens")
        return len(tokens) if isinstance(tokens, list) else None

    def _count_vllm(self, messages: list[dict[str, Any]]) -> int | None:
        """vLLM: its ``/tokenize`` applies the chat template itself and says the count (and its context)."""
        reply = self._post("/tokenize", {"model": self.model, "messages": messages}) or {}
        if isinstance(reply.get("max_model_len"), int) and self._context is None:
            self._context = reply["max_model_len"]
        return reply["count"] if isinstance(reply.get("count"), int) else None

    def count(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of a chat request by the server's tokenizer; the estimate where it has none or fails."""
        ways = {"llama.cpp": self._count_llama, "vllm": self._count_vllm}
        if self.counter == "estimate":
            return estimate_chat_tokens(messages)
        for name in [self.counter] if self.counter else list(ways):
            try:
                counted = ways[name](messages)
            except (httpx.HTTPError, ValueError):  # down, slow or not JSON: this time, the estimate
                return estimate_chat_tokens(messages)
            if counted is not None:
                self.counter = name
                return counted
        if self.counter is None:
            self.counter = "estimate"  # it answered, but has neither endpoint: not asked again
        return estimate_chat_tokens(messages)

    def context(self, fallback: int) -> int:
        """Tokens one request may fill (prompt and answer): llama.cpp's per-slot ``n_ctx`` (``/props``; it divides
        its context between ``--parallel`` slots), vLLM's ``max_model_len`` (``/v1/models``); ``fallback`` when the
        server says neither. Asked once; a failed ask is asked again next time."""
        if self._context is not None:
            return self._context
        try:
            props = self._get(self.root + "/props") or {}
            n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
            if isinstance(n_ctx, int) and n_ctx > 0:
                self._context = n_ctx
                return n_ctx
            models = (self._get(self.base_url + "/models") or {}).get("data") or []
            lengths = {m.get("id"): m.get("max_model_len") for m in models if isinstance(m, dict)}
            length = lengths.get(self.model) or next((v for v in lengths.values() if isinstance(v, int)), None)
            if isinstance(length, int) and length > 0:
                self._context = length
                return length
        except (httpx.HTTPError, ValueError):
            return fallback
        self._context = fallback  # the server answered and does not say: the configured size stands
        return fallback


def _json(response: httpx.Response) -> dict[str, Any] | None:
    """The reply's JSON object when the request succeeded, else None (an endpoint the server does not have)."""
    if response.status_code != 200:
        return None
    data = response.json()
    return data if isinstance(data, dict) else None
