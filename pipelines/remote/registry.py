"""The project's model registry file (``models.yaml``): embedders and rerankers served over the network.

On a cluster the strong models run as servers (vLLM, llama.cpp, TEI, Ollama) shared by every worker. Each entry
declares one endpoint; evolve then treats its ``name`` like a packaged model in configs, search spaces, proposals
and the guard's licence rules::

    models:
      - name: bge-m3@gpu1
        kind: embedder               # or reranker
        protocol: openai             # embedders: openai | ollama | tei; rerankers: rerank | score | tei
        base_url: http://gpu1:8001/v1
        model: BAAI/bge-m3           # the id the server knows it by
        api_key_env: EVOLVE_EMBED_KEY    # or api_key_file: /run/secrets/embed-key (never the key itself)
        licence: MIT
        languages: multilingual
        dim: 1024
        batch_size: 32
        concurrency: 4
        timeout_s: 60

Which file a process reads is its :class:`pipelines.catalog.ModelCatalog`'s: the project's ``models.yaml`` (or
``$EVOLVE_MODEL_REGISTRY``); without one, no remote model is known.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.strict_yaml import load_model

REGISTRY_ENV = "EVOLVE_MODEL_REGISTRY"
REGISTRY_FILE = "models.yaml"
EMBEDDING_PROTOCOLS = ("openai", "ollama", "tei")
RERANK_PROTOCOLS = ("rerank", "score", "tei")


class RegistryError(ValueError):
    """The registry file cannot be used (one line naming the file and the field)."""


class RemoteModel(BaseModel):
    """One model behind an endpoint. Credentials are named (an environment variable or a file), never written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="what configs and search spaces call it (unique; not a packaged model's name)")
    kind: Literal["embedder", "reranker"]
    protocol: str = Field(description="embedder: openai (/v1/embeddings; vLLM, llama.cpp, TEI, LiteLLM), ollama "
                                      "(/api/embed), tei (/embed); reranker: rerank (/v1/rerank: vLLM, llama.cpp, "
                                      "Jina, Cohere), score (vLLM /score), tei (/rerank)")
    base_url: str = Field(description="e.g. http://gpu1:8001/v1 (the path the protocol's route is appended to)")
    model: str = Field("", description="the id the server knows the model by (sent in each request)")
    api_key_env: str | None = Field(None, description="environment variable holding the bearer token")
    api_key_file: Path | None = Field(None, description="file holding the bearer token (e.g. a NixOS secret)")
    licence: str = Field("unknown", description="the served weights' licence (the guard's licence rule reads it)")
    languages: str = "unknown"
    dim: int | None = Field(None, ge=1, le=65536)
    max_length: int | None = Field(None, ge=1)
    query_prefix: str = ""
    passage_prefix: str = ""
    truncate_chars: int | None = Field(None, ge=16, description="cut each text to this many characters before it "
                                                                 "is sent: for servers that refuse an input longer "
                                                                 "than their context (llama.cpp) instead of "
                                                                 "truncating it (vLLM, TEI)")
    truncate_tokens: int | None = Field(None, ge=1, description="openai protocol: ask the server to keep only the "
                                                                 "first this many tokens of each input (vLLM's "
                                                                 "truncate_prompt_tokens; sent only when set)")
    batch_size: int = Field(32, ge=1, le=4096, description="texts (or documents) per request")
    concurrency: int = Field(4, ge=1, le=256, description="requests in flight at once from one process")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="the most one request may take, connect through the "
                                                             "last byte of the reply (a trickling server is cut "
                                                             "off); a call takes at most (retries + 1) x this, "
                                                             "plus the backoffs")
    max_reply_mb: float | None = Field(None, gt=0, le=4096, description="largest reply read, in MB (a longer one "
                                                                        "fails the call); default: room for "
                                                                        "batch_size vectors of dim (8,192 when not "
                                                                        "given) numbers, 64 bytes each, + 1 MB")
    retries: int = Field(4, ge=0, le=20, description="retries of a failed request, with exponential backoff")
    backoff_s: float = Field(0.5, ge=0, le=60, description="first backoff; doubled after each retry")
    cooldown_s: float = Field(30.0, ge=0, le=3600, description="after the retries are spent, calls fail at once "
                                                               "for this long before the server is tried again")
    revision: int = Field(1, ge=1, description="raise it after deliberately changing the weights behind this "
                                               "name: a new fingerprint is then taken instead of a refusal")
    fingerprint_tolerance: float = Field(1e-3, gt=0, lt=1, description="largest probe difference (1 - cosine for "
                                                                         "embeddings, relative for scores) still "
                                                                         "counted as the same weights")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@/+-]*", value) or value.startswith(("trained:", "python:")):
            raise ValueError(f"{value!r}: letters, digits and . _ @ / + - only, not starting with trained: or python:")
        return value

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        if "@" in value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("credentials never go in the registry file, a base_url's user:password@ neither; "
                             "name the key with api_key_env or api_key_file")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _protocol_fits_kind(self) -> "RemoteModel":
        allowed = EMBEDDING_PROTOCOLS if self.kind == "embedder" else RERANK_PROTOCOLS
        if self.protocol not in allowed:
            raise ValueError(f"protocol {self.protocol!r} is not one for {self.kind}s: one of {', '.join(allowed)}")
        if self.api_key_env and self.api_key_file:
            raise ValueError("give api_key_env or api_key_file, not both")
        return self

    @property
    def cache_name(self) -> str:
        """The model part of its cache keys before the weights' fingerprint: name, served model id, revision."""
        return f"remote:{self.name}|{self.model}|r{self.revision}"

    @property
    def reply_limit(self) -> int:
        """The most bytes of one reply read (``max_reply_mb``, or room for a full batch with a generous margin)."""
        if self.max_reply_mb is not None:
            return int(self.max_reply_mb * 2 ** 20)
        per_item = 64 * (self.dim or 8192) if self.kind == "embedder" else 512
        return self.batch_size * per_item + 2 ** 20

    @property
    def endpoint(self) -> str:
        """What error messages name: the model at its URL."""
        return f"{self.name} ({self.model or 'default model'} at {self.base_url})"

    def api_key(self) -> str | None:
        """The bearer token from the named variable or file (read when a request is made, never stored)."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise RegistryError(f"{self.name}: environment variable {self.api_key_env} (api_key_env) is not set")
            return value.strip()
        if self.api_key_file:
            try:
                return self.api_key_file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise RegistryError(f"{self.name}: api_key_file {self.api_key_file}: {err.strerror}") from None
        return None


class ModelRegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[RemoteModel] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: object) -> object:
        for entry in (data or {}).get("models") or [] if isinstance(data, dict) else []:
            if isinstance(entry, dict) and {"api_key", "key", "token", "password"} & set(entry):
                raise ValueError(f"{entry.get('name', '?')}: credentials never go in the registry file; name them "
                                 f"with api_key_env (an environment variable) or api_key_file")
        return data

    @model_validator(mode="after")
    def _unique(self) -> "ModelRegistryFile":
        names = [m.name for m in self.models]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"names used twice: {', '.join(doubled)}")
        return self


def load_registry(path: Path | str) -> dict[str, RemoteModel]:
    """The entries of a registry file by name; RegistryError names the file and the problem."""
    return {m.name: m for m in load_model(path, ModelRegistryFile, RegistryError, "model registry",
                                          empty_ok=True).models}
