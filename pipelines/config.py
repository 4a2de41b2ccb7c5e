"""The pipeline config: typed, validated, YAML in and out. One config = one reproducible pipeline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.embedders.registry import code_location_refused


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_code_location(model: str | None) -> str | None:
    """A config names models; it never names code to import (see code_location_refused)."""
    refused = code_location_refused(model) if model else None
    if refused:
        raise ValueError(refused)
    return model


class WholeChunking(_Strict):
    kind: Literal["whole"] = "whole"
    include_title: bool = True


class FixedChunking(_Strict):
    kind: Literal["fixed"] = "fixed"
    unit: Literal["chars", "tokens"] = "chars"
    size: int = Field(512, ge=16, le=100_000)
    overlap: int = Field(64, ge=0)
    include_title: bool = True

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "FixedChunking":
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


class SentenceChunking(_Strict):
    kind: Literal["sentence"] = "sentence"
    size: int = Field(800, ge=16, le=100_000, description="max characters per chunk")
    overlap: int = Field(0, ge=0, le=10, description="sentences repeated between chunks")
    include_title: bool = True


class ParagraphChunking(_Strict):
    kind: Literal["paragraph"] = "paragraph"
    size: int = Field(1200, ge=16, le=100_000, description="max characters per chunk")
    include_title: bool = True


class MarkdownChunking(_Strict):
    kind: Literal["markdown"] = "markdown"
    size: int = Field(1500, ge=16, le=100_000, description="max characters per section chunk")
    include_title: bool = True


ChunkingConfig = Annotated[
    WholeChunking | FixedChunking | SentenceChunking | ParagraphChunking | MarkdownChunking,
    Field(discriminator="kind"),
]


class DenseConfig(_Strict):
    model: str = Field(description="registry name, local sentence-transformers directory, or cached hub name")
    index: Literal["flat", "hnsw"] = "flat"
    hnsw_m: int = Field(32, ge=4, le=128)
    ef_search: int = Field(128, ge=8, le=4096)

    _model = field_validator("model")(_no_code_location)


class LexicalConfig(_Strict):
    tokenizer: Literal["regex", "english", "kiwi"] = "regex"
    k1: float = Field(1.5, ge=0.0, le=5.0)
    b: float = Field(0.75, ge=0.0, le=1.0)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"


class FusionConfig(_Strict):
    kind: Literal["none", "rrf", "weighted"] = "rrf"
    rrf_k: int = Field(60, ge=1, le=1000)
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="weighted: dense share, lexical gets the rest")


class RerankerConfig(_Strict):
    kind: Literal["none", "embedding", "cross-encoder"] = "none"
    model: str | None = None
    top_n: int = Field(50, ge=1, le=1000)
    blend: float = Field(0.0, ge=0.0, le=1.0, description="weight of the first-stage score kept")

    _model = field_validator("model")(_no_code_location)

    @model_validator(mode="after")
    def _model_given(self) -> "RerankerConfig":
        if self.kind != "none" and not self.model:
            raise ValueError(f"reranker kind {self.kind!r} needs a model")
        return self


class PipelineConfig(_Strict):
    """Chunker -> (dense and/or BM25) -> fusion -> optional reranker -> documents (max chunk score)."""

    name: str = "pipeline"
    chunking: ChunkingConfig = Field(default_factory=WholeChunking)
    dense: DenseConfig | None = None
    lexical: LexicalConfig | None = None
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    reranker: RerankerConfig = Field(default_factory=RerankerConfig)
    candidates: int = Field(100, ge=1, le=10_000, description="chunks taken from each retriever")
    k: int = Field(100, ge=1, le=10_000, description="documents returned per query")

    @model_validator(mode="after")
    def _consistent(self) -> "PipelineConfig":
        if self.dense is None and self.lexical is None:
            raise ValueError("a pipeline needs a dense retriever, a lexical one, or both")
        if self.dense is not None and self.lexical is not None and self.fusion.kind == "none":
            raise ValueError("dense and lexical retrievers together need fusion 'rrf' or 'weighted'")
        return self

    def sha256(self) -> str:
        """The config's content address: sha256 of its canonical JSON (sorted keys, defaults filled in).

        Decisions name configs by this hash, so what was evaluated is provably what gets approved and served.
        """
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> "PipelineConfig":
        return cls.model_validate(yaml.safe_load(text) or {})


class ConfigError(ValueError):
    """A config file the user can fix; the message names the file and the offending fields."""


def load_config(path: Path | str) -> PipelineConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"{path}: {problems}") from None


def save_config(config: PipelineConfig, path: Path | str) -> None:
    Path(path).write_text(config.to_yaml(), encoding="utf-8")
