"""The one LLM client: OpenAI protocol (vLLM in production, llama.cpp on a laptop), used by everything.

Bounded concurrency, retries with backoff on connection errors and 5xx, a request cache, clear
errors for a server that is down or a model it does not serve, and structured output validated
with pydantic (``json_schema`` response format, with one repair round when a small model slips).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pipelines.http_deadline import bounded_client, within
from pipelines.llm.cache import LLMCache, request_key
from pipelines.llm.tokens import ServerTokens
from pipelines.remote import redact  # the one redaction of a server's text, for every served model

T = TypeVar("T", bound=BaseModel)


class LLMError(RuntimeError):
    """The LLM could not give a usable answer (after retries / repair)."""


class LLMUnavailable(LLMError):
    """The endpoint does not answer, or does not serve the configured model."""


class LLMAuthError(LLMUnavailable):
    """The endpoint refused the key (HTTP 401/403), or wants one and none is set: unavailable until the key is
    fixed, so whatever goes on without an LLM (serve's /search, the loop's heuristic proposer) goes on."""


class LLMConfigError(LLMUnavailable):
    """The LLM settings cannot be used as given: credentials in the base URL, a key file that cannot be read."""


API_KEY_VARIABLE = "EVOLVE_LLM_API_KEY"
API_KEY_FILE_VARIABLE = "EVOLVE_LLM_API_KEY_FILE"
SET_KEY = f"set {API_KEY_VARIABLE} or {API_KEY_FILE_VARIABLE}"
"""What an error about the key tells the user to do."""


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The endpoint's key: ``EVOLVE_LLM_API_KEY``, else the contents of the file ``EVOLVE_LLM_API_KEY_FILE`` names
    (a secret file, e.g. the NixOS module's ``llm.apiKeyFile`` as a systemd credential); None when neither is set.
    Never an option: a key on a command line is in every ``ps``."""
    env = os.environ if environ is None else environ
    key, path = (env.get(API_KEY_VARIABLE) or "").strip(), (env.get(API_KEY_FILE_VARIABLE) or "").strip()
    if key and path:
        raise LLMConfigError(f"both {API_KEY_VARIABLE} and {API_KEY_FILE_VARIABLE} are set: set one of them")
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise LLMConfigError(f"{API_KEY_FILE_VARIABLE}: cannot read {path} "
                                 f"({getattr(err, 'strerror', None) or type(err).__name__})") from None
        if not key:
            raise LLMConfigError(f"{API_KEY_FILE_VARIABLE}: {path} is empty")
    if any(c.isspace() or not c.isprintable() for c in key):
        raise LLMConfigError(f"the LLM key ({API_KEY_FILE_VARIABLE if path else API_KEY_VARIABLE}) has spaces, "
                             f"line breaks or control characters inside it: one key on one line")
    return key or None


def _http_url(value: str) -> str | None:
    """Why ``value`` cannot be an LLM base URL, without repeating a secret in it; None when it can."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:  # URLs are printed and logged: never with a password in them
        masked = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()
        return f"the LLM base URL {masked} has credentials in it (user:password@; URLs are printed and logged): " \
               f"give it without them and the key with {API_KEY_VARIABLE} or {API_KEY_FILE_VARIABLE}"
    if not re.match(r"https?://[^/\s]+", value):
        return f"the LLM base URL {redact(value, limit=120)!r} is not an http(s) URL"
    return None


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    base_url: str = Field(description="OpenAI-compatible endpoint, e.g. http://gpu1:8000/v1 (vLLM)")
    model: str = Field(description="served model name")
    api_key: SecretStr | None = Field(None, description="sent as 'Authorization: Bearer KEY'; never printed")
    timeout_s: float = Field(120, gt=0)
    max_concurrency: int = Field(4, ge=1, le=256)
    max_retries: int = Field(3, ge=0, le=10)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, le=32_768)
    context_tokens: int = Field(4096, ge=1, le=1_048_576,
                                description="tokens a request may fill (prompt and answer) when the server does not "
                                            "say (it is asked first: llama.cpp /props, vLLM /v1/models)")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        why = _http_url(value)
        if why:
            raise ValueError(why)
        return value

    @property
    def key(self) -> str | None:
        """The key itself, for the request header and for masking it in error text; None: none is sent."""
        key = self.api_key  # a SecretStr; a plain str where a model_copy(update=...) put one
        return key.get_secret_value() if isinstance(key, SecretStr) else key or None

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None,
                 environ: Mapping[str, str] | None = None, **overrides: Any) -> "LLMSettings | None":
        """The one way an endpoint's settings are made, for every command and worker: ``base_url`` and ``model`` as
        given (the CLI's options), else ``EVOLVE_LLM_BASE_URL`` / ``EVOLVE_LLM_MODEL``; the key from
        :func:`api_key_from_env`; ``EVOLVE_LLM_CONTEXT_TOKENS``; then ``overrides``. None when no endpoint is
        configured. Raises LLMConfigError (one line, no secret in it) for settings that cannot be used."""
        env = os.environ if environ is None else environ
        base_url = (base_url or env.get("EVOLVE_LLM_BASE_URL") or "").strip()
        if not base_url:
            return None
        why = _http_url(base_url)
        if why:
            raise LLMConfigError(why)
        key = api_key_from_env(env)
        context = env.get("EVOLVE_LLM_CONTEXT_TOKENS")
        try:
            return cls(base_url=base_url, model=model or env.get("EVOLVE_LLM_MODEL") or "default", api_key=key,
                       **({"context_tokens": context} if context else {}), **overrides)
        except ValidationError as err:
            raise LLMConfigError(f"LLM settings: {_short(err)}") from None


class LLMClient:
    def __init__(self, settings: LLMSettings, cache: LLMCache | None = None):
        from openai import OpenAI

        self.settings = settings
        self.cache = cache
        # retries are ours (same policy, counted); the http client bounds each call whole, not read by read, so an
        # LLM that trickles its reply ends at the deadline instead of holding a slot (pipelines.http_deadline)
        self._client = OpenAI(base_url=settings.base_url, api_key=settings.key or "unused",
                              timeout=settings.timeout_s, max_retries=0,
                              http_client=bounded_client(settings.timeout_s, settings.max_concurrency))
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self.calls = 0
        self._tokens = ServerTokens(settings.base_url, settings.model, settings.key)

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

    def said(self, text: object, limit: int = 300) -> str:
        """An error's text fit to print or store: one line, trimmed, the key and anything like a secret masked."""
        return redact(str(text), self.settings.key, limit=limit)

    def refused(self, err: Any) -> LLMError:
        """The error for a status the server answered with (an ``openai.APIStatusError``): 401/403 is an
        :class:`LLMAuthError` naming the endpoint and what to set; its body is trimmed and redacted."""
        body = err.body
        reason = body["message"] if isinstance(body, dict) and isinstance(body.get("message"), str) else body
        reason = self.said(reason if reason is not None else err.message, limit=160)
        status = err.status_code
        if status in (401, 403):
            what = "refused the key" if self.settings.key else "wants a key and none is set"
            return LLMAuthError(f"the LLM at {self.settings.base_url} {what} ({status}: {reason}): {SET_KEY}")
        return LLMError(f"LLM request refused ({status}) by {self.settings.base_url}: {reason}")

    def check(self) -> dict[str, Any]:
        """Is the endpoint up and does it serve our model? Returns models and the latency of a tiny call."""
        import openai

        started = time.perf_counter()
        try:
            with within(self.settings.timeout_s):
                served = [m.id for m in self._client.models.list().data]
        except (openai.APIConnectionError, openai.APITimeoutError) as err:
            raise LLMUnavailable(f"no LLM server answers at {self.settings.base_url} ({self.said(err)})") from None
        except openai.APIStatusError as err:
            refused = self.refused(err)
            if not isinstance(refused, LLMAuthError):  # no model list: nothing this endpoint serves can be used
                refused = LLMUnavailable(str(refused))
            raise refused from None
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
                with self._slots, within(timeout if timeout is not None else self.settings.timeout_s):
                    self.calls += 1
                    response = self._client.chat.completions.create(model=self.model, messages=messages, **params,
                                                                    **options)
                return response.choices[0].message.content or ""
            except openai.NotFoundError as err:
                raise LLMUnavailable(f"model {self.model!r} is not served at {self.settings.base_url}: "
                                     f"{self.said(err)}") from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
                raise self.refused(err) from None
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
                raise self.refused(err) from None
        if isinstance(last, (openai.APIConnectionError, openai.APITimeoutError)):
            raise LLMUnavailable(f"no LLM server answers at {self.settings.base_url} after "
                                 f"{self.settings.max_retries + 1} tries ({self.said(last)})") from None
        raise LLMError(f"LLM call failed after {self.settings.max_retries + 1} tries: {self.said(last)}") from None

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
