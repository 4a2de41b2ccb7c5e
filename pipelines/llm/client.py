"""The one LLM client: OpenAI protocol (vLLM in production, llama.cpp on a laptop), used by everything.

Bounded concurrency, retries with backoff on connection errors and 5xx, a request cache, clear
errors for a server that is down or a model it does not serve, and structured output validated
with pydantic (``json_schema`` response format, with one repair round when a small model slips).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.llm.cache import LLMCache, request_key
from pipelines.llm.tokens import ServerTokens

T = TypeVar("T", bound=BaseModel)


class LLMError(RuntimeError):
    """The LLM could not give a usable answer (after retries / repair)."""


class LLMUnavailable(LLMError):
    """The endpoint does not answer, or does not serve the configured model."""


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="OpenAI-compatible endpoint, e.g. http://gpu1:8000/v1 (vLLM)")
    model: str = Field(description="served model name")
    api_key: str = "unused"
    timeout_s: float = Field(120, gt=0)
    max_concurrency: int = Field(4, ge=1, le=256)
    max_retries: int = Field(3, ge=0, le=10)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, le=32_768)
    context_tokens: int = Field(4096, ge=1, le=1_048_576,
                                description="tokens a request may fill (prompt and answer) when the server does not "
                                            "say (it is asked first: llama.cpp /props, vLLM /v1/models)")

    @classmethod
    def from_env(cls) -> "LLMSettings | None":
        """EVOLVE_LLM_BASE_URL / EVOLVE_LLM_MODEL / EVOLVE_LLM_API_KEY; None when no endpoint is configured."""
        base_url = os.environ.get("EVOLVE_LLM_BASE_URL")
        if not base_url:
            return None
        context = os.environ.get("EVOLVE_LLM_CONTEXT_TOKENS")
        return cls(base_url=base_url, model=os.environ.get("EVOLVE_LLM_MODEL", "default"),
                   api_key=os.environ.get("EVOLVE_LLM_API_KEY", "unused"),
                   **({"context_tokens": context} if context else {}))


class LLMClient:
    def __init__(self, settings: LLMSettings, cache: LLMCache | None = None):
        from openai import OpenAI

        self.settings = settings
        self.cache = cache
        self._client = OpenAI(base_url=settings.base_url, api_key=settings.api_key, timeout=settings.timeout_s,
                              max_retries=0)  # retries are ours: same policy for every call, counted
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self.calls = 0
        self._tokens = ServerTokens(settings.base_url, settings.model, settings.api_key)

    @property
    def model(self) -> str:
        return self.settings.model

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of a chat request as the server counts them (its tokenizer and chat template), or a safe
        over-estimate where it cannot say: callers fit long prompts before sending, as an overflow is refused whole.
        Never raises."""
        return self._tokens.count(messages)

    def context_tokens(self) -> int:
        """Tokens one request may fill, prompt and answer: what the server says (asked once per client), else
        ``settings.context_tokens``. Never raises."""
        return self._tokens.context(self.settings.context_tokens)

    def check(self) -> dict[str, Any]:
        """Is the endpoint up and does it serve our model? Returns models and the latency of a tiny call."""
        import openai

        started = time.perf_counter()
        try:
            served = [m.id for m in self._client.models.list().data]
        except (openai.APIConnectionError, openai.APITimeoutError) as err:
            raise LLMUnavailable(f"no LLM server answers at {self.settings.base_url} ({err})") from None
        list_ms = 1000 * (time.perf_counter() - started)
        if self.model not in served:
            raise LLMUnavailable(f"{self.settings.base_url} does not serve model {self.model!r}; "
                                 f"it serves: {', '.join(served) or 'nothing'}")
        started = time.perf_counter()
        reply = self.chat([{"role": "user", "content": "Reply with the single word: ok"}], max_tokens=5, use_cache=False)
        return {"base_url": self.settings.base_url, "model": self.model, "served_models": served,
                "models_ms": round(list_ms, 1), "chat_ms": round(1000 * (time.perf_counter() - started), 1),
                "reply": reply}

    def chat(self, messages: list[dict[str, Any]], use_cache: bool = True, timeout: float | None = None,
             **params: Any) -> str:
        """``timeout``: seconds for this request (a caller's time budget), not retried when it runs out."""
        params = {"temperature": self.settings.temperature, "max_tokens": self.settings.max_tokens, **params}
        key = request_key(self.model, messages, params)
        if use_cache and self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        text = self._call(messages, params, timeout)
        if self.cache is not None:
            self.cache.put(key, self.model, {"messages": messages, "params": params}, text)
        return text

    def _call(self, messages: list[dict[str, Any]], params: dict[str, Any], timeout: float | None = None) -> str:
        import openai

        last: Exception | None = None
        options = {"timeout": timeout} if timeout is not None else {}
        for attempt in range(self.settings.max_retries + 1):
            try:
                with self._slots:
                    self.calls += 1
                    response = self._client.chat.completions.create(model=self.model, messages=messages, **params,
                                                                    **options)
                return response.choices[0].message.content or ""
            except openai.NotFoundError as err:
                raise LLMUnavailable(f"model {self.model!r} is not served at {self.settings.base_url}: {err}") from None
            except openai.APITimeoutError as err:
                if timeout is not None:
                    raise LLMError(f"no reply within the {timeout:.0f} s this request was given") from None
                last = err
                if attempt < self.settings.max_retries:
                    time.sleep(min(8.0, 0.5 * 2 ** attempt) * (0.5 + random.random()))
            except (openai.APIConnectionError, openai.InternalServerError,
                    openai.RateLimitError) as err:
                last = err
                if attempt < self.settings.max_retries:
                    time.sleep(min(8.0, 0.5 * 2 ** attempt) * (0.5 + random.random()))
            except openai.APIStatusError as err:
                if err.status_code >= 500:
                    last = err
                    continue
                raise LLMError(f"LLM request refused ({err.status_code}): {err}") from None
        if isinstance(last, (openai.APIConnectionError, openai.APITimeoutError)):
            raise LLMUnavailable(f"no LLM server answers at {self.settings.base_url} after "
                                 f"{self.settings.max_retries + 1} tries ({last})") from None
        raise LLMError(f"LLM call failed after {self.settings.max_retries + 1} tries: {last}") from None

    def structured(self, messages: list[dict[str, Any]], schema: type[T], json_schema: dict[str, Any] | None = None,
                   **params: Any) -> T:
        """A reply that validates against ``schema``; one repair round shows the model its error. ``json_schema``:
        a tighter schema for the server to decode by than ``schema``'s own (enums where the model has open
        fields); the reply is still validated by ``schema``."""
        response_format = {"type": "json_schema",
                           "json_schema": {"name": schema.__name__, "schema": json_schema or schema.model_json_schema(),
                                           "strict": True}}
        text = self.chat(messages, response_format=response_format, **params)
        try:
            return schema.model_validate_json(text)
        except ValidationError as err:
            repair = messages + [{"role": "assistant", "content": text},
                                 {"role": "user", "content": "That reply is not valid for the required JSON schema: "
                                  f"{_short(err)}. Reply again with only the corrected JSON."}]
            text = self.chat(repair, response_format=response_format, **params)
            try:
                return schema.model_validate_json(text)
            except ValidationError as second:
                raise LLMError(f"{self.model} did not produce valid {schema.__name__} JSON: {_short(second)}; "
                               f"got {text[:200]!r}") from None


def _short(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in err.errors()[:3])


def parse_json_loose(text: str) -> Any:
    """The first JSON object in a reply (for servers without structured output)."""
    start, end = text.find("{"), text.rfind("}")
    return json.loads(text[start:end + 1]) if start >= 0 and end > start else None
