"""The pipeline config: typed, validated, YAML in and out. One config = one reproducible pipeline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.chunking import CHUNKERS, WholeChunking
from pipelines.embedders.registry import checked_model_name
from pipelines.fusion import FUSIONS, RRFConfig
from pipelines.lexical import TOKENIZERS
from pipelines.strict_yaml import load_model
from pipelines.registry import KindConfig
from pipelines.rerankers import RERANKERS, NoRerankerConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ChunkingField = CHUNKERS.field()
"""Any registered chunker kind's config (the kind's own model validates it)."""
FusionField = FUSIONS.field(default_kind="rrf")
RerankerField = RERANKERS.field(default_kind="none")


class DenseConfig(_Strict):
    model: str = Field(description="registry name, local sentence-transformers directory, or cached hub name")
    index: Literal["flat", "hnsw"] = "flat"
    hnsw_m: int = Field(32, ge=4, le=128)
    ef_search: int = Field(128, ge=8, le=4096)

    _model = field_validator("model")(checked_model_name)


class LexicalConfig(_Strict):
    tokenizer: Annotated[str, AfterValidator(TOKENIZERS.checked)] = "regex"
    k1: float = Field(1.5, ge=0.0, le=5.0)
    b: float = Field(0.75, ge=0.0, le=1.0)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"


class GenerationConfig(_Strict):
    """What the generator is given: the top chunks of the ranking, cut to a context budget.

    The budget is in estimated tokens (a Hangul syllable about one token, other text about four characters a
    token, see ``pipelines.generator.estimate_tokens``), so one number fits Korean and English alike.
    """

    contexts: int = Field(5, ge=1, le=50, description="top chunks given to the generator")
    context_tokens: int = Field(1500, ge=100, le=32_000, description="estimated-token budget for those chunks")
    max_answer_tokens: int = Field(256, ge=16, le=8192, description="longest answer the generator may write")


class PipelineConfig(_Strict):
    """Chunker -> (dense and/or BM25) -> fusion -> optional reranker -> documents (max chunk score)."""

    name: str = "pipeline"
    chunking: ChunkingField = Field(default_factory=WholeChunking)
    dense: DenseConfig | None = None
    lexical: LexicalConfig | None = None
    fusion: FusionField = Field(default_factory=RRFConfig)
    reranker: RerankerField = Field(default_factory=NoRerankerConfig)
    candidates: int = Field(100, ge=1, le=10_000, description="chunks taken from each retriever")
    k: int = Field(100, ge=1, le=10_000, description="documents returned per query")
    generation: GenerationConfig = Field(default_factory=GenerationConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "PipelineConfig":
        if self.dense is None and self.lexical is None:
            raise ValueError("a pipeline needs a dense retriever, a lexical one, or both")
        if self.dense is not None and self.lexical is not None and self.fusion.kind == "none":
            raise ValueError("dense and lexical retrievers together need fusion 'rrf' or 'weighted'")
        return self

    def models(self) -> list[str]:
        """Every model the pipeline uses: the dense one, then those its kinds name (for licences)."""
        parts = [getattr(self, name) for name in type(self).model_fields]
        return ([self.dense.model] if self.dense else []) + [m for p in parts if isinstance(p, KindConfig)
                                                             for m in p.models()]

    def sha256(self) -> str:
        """The config's content address: sha256 of its canonical JSON (sorted keys, defaults filled in).

        Decisions name configs by this hash, so what was evaluated is provably what gets approved and served.
        """
        return self._address(self.model_dump(mode="json"))

    def behaviour_sha256(self) -> str:
        """The address of what the pipeline does: the config without its name.

        A config's identity for reuse (per-query scores already measured) and for looks (a config looked at
        once is not looked at again before a human decision): two studies that find the same pipeline under
        two names found one pipeline.
        """
        data = self.model_dump(mode="json")
        del data["name"]
        return self._address(data)

    @staticmethod
    def _address(data: dict) -> str:
        for name in LATER_FIELDS:  # added after configs were first addressed: at its default, left out
            if data[name] == LATER_FIELDS[name]().model_dump(mode="json"):
                del data[name]
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> "PipelineConfig":
        return cls.model_validate(yaml.safe_load(text) or {})


LATER_FIELDS = {"generation": GenerationConfig}
"""Parts added after the first decisions were recorded: their defaults do not enter the content address, so a
config approved before they existed keeps its address (and its decision log stays valid)."""


class ConfigError(ValueError):
    """A config file the user can fix; the message names the file and the offending fields."""


def load_config(path: Path | str) -> PipelineConfig:
    return load_model(path, PipelineConfig, ConfigError, "config")


def save_config(config: PipelineConfig, path: Path | str) -> None:
    Path(path).write_text(config.to_yaml(), encoding="utf-8")
