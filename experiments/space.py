"""Search spaces: which pipeline configs a study may try. YAML or a Python dict (what the agent proposes).

A parameter is a fixed value, a list of choices, or a range ``{low, high[, step][, log]}``.
Everything is validated up front: unknown keys, values outside the allowed lists, ranges that
break the pipeline's own limits, and models that are not in the registry are refused with a
message naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from experiments.metrics import parse_metric
from pipelines import PipelineConfig
from pipelines.embedders import resolve_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntRange(_Strict):
    low: int
    high: int
    step: int = 1
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class FloatRange(_Strict):
    low: float
    high: float
    step: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


IntParam = Union[int, list[int], IntRange]
FloatParam = Union[float, list[float], FloatRange]


class ChunkerChoice(_Strict):
    kind: Literal["whole", "fixed", "sentence", "paragraph", "markdown"]
    unit: Literal["chars", "tokens"] | list[Literal["chars", "tokens"]] = "chars"
    size: IntParam | None = None
    overlap: IntParam | None = None
    include_title: bool = True


class LexicalSpace(_Strict):
    tokenizers: list[Literal["none", "regex", "english", "kiwi"]] = Field(min_length=1)
    """'none' lets a trial run without BM25 (dense only)."""
    k1: FloatParam = 1.5
    b: FloatParam = 0.75


class FusionSpace(_Strict):
    kinds: list[Literal["rrf", "weighted"]] = Field(default_factory=lambda: ["rrf"], min_length=1)
    rrf_k: IntParam = 60
    dense_weight: FloatParam = 0.5


class RerankerChoice(_Strict):
    kind: Literal["none", "embedding", "cross-encoder"] = "none"
    model: str | None = None
    top_n: IntParam = 20
    blend: FloatParam = 0.0

    @property
    def label(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.model}"


class SearchSpace(_Strict):
    """What a study samples from. ``dense_models`` may include 'none' (BM25 only) and
    ``lexical.tokenizers`` 'none' (dense only); leaving ``lexical`` out means dense only."""

    name: str = "space"
    metric: str = "ndcg@10"
    dense_models: list[str] = Field(min_length=1)
    chunkers: list[ChunkerChoice] = Field(default_factory=lambda: [ChunkerChoice(kind="whole")], min_length=1)
    lexical: LexicalSpace | None = None
    fusion: FusionSpace = Field(default_factory=FusionSpace)
    rerankers: list[RerankerChoice] = Field(default_factory=lambda: [RerankerChoice()], min_length=1)
    candidates: IntParam = 100
    k: int = Field(100, ge=1, le=10_000)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        parse_metric(value)
        return value.lower()

    @field_validator("dense_models")
    @classmethod
    def _models_in_registry(cls, models: list[str]) -> list[str]:
        for model in models:
            if model != "none":
                try:
                    resolve_model(model)
                except KeyError as err:
                    raise ValueError(err.args[0]) from None
        if len(set(models)) != len(models):
            raise ValueError("dense_models lists a model twice")
        return models

    @field_validator("chunkers")
    @classmethod
    def _unique_kinds(cls, chunkers: list[ChunkerChoice]) -> list[ChunkerChoice]:
        kinds = [c.kind for c in chunkers]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each chunker kind may appear once (give it ranges instead)")
        return chunkers

    @model_validator(mode="after")
    def _consistent(self) -> "SearchSpace":
        tokenizers = self.lexical.tokenizers if self.lexical else ["none"]
        if "none" in self.dense_models and tokenizers == ["none"]:
            raise ValueError("'none' as a dense model needs a lexical tokenizer other than 'none'")
        for chunker in self.chunkers:
            for extreme in ("low", "high"):
                chunking = {"kind": chunker.kind, "include_title": chunker.include_title}
                if chunker.size is not None:
                    chunking["size"] = _extreme(chunker.size, extreme)
                if chunker.overlap is not None and chunker.kind in ("fixed", "sentence"):
                    chunking["overlap"] = min(_extreme(chunker.overlap, extreme), chunking.get("size", 10**9) - 1)
                try:
                    PipelineConfig.model_validate({"chunking": chunking, "lexical": {}, "fusion": {"kind": "none"}})
                except ValidationError as err:
                    raise ValueError(f"chunker {chunker.kind!r} at its {extreme} end: {_describe(err)}") from None
        self._numbers_within_pipeline_limits()
        for choice in self.rerankers:
            if choice.kind != "none" and not choice.model:
                raise ValueError(f"reranker kind {choice.kind!r} needs a model")
            if choice.kind == "embedding":
                try:
                    resolve_model(choice.model or "")
                except KeyError as err:
                    raise ValueError(err.args[0]) from None
        labels = [c.label for c in self.rerankers]
        if len(set(labels)) != len(labels):
            raise ValueError("rerankers lists the same reranker twice")
        return self

    def _numbers_within_pipeline_limits(self) -> None:
        """Each numeric range, at both ends, must be a value the pipeline config itself accepts."""
        from pipelines.config import FusionConfig, LexicalConfig, RerankerConfig

        checks: list[tuple[str, type[BaseModel], dict[str, Any]]] = []
        if self.lexical:
            checks.append(("lexical", LexicalConfig, {"k1": self.lexical.k1, "b": self.lexical.b}))
        checks.append(("fusion", FusionConfig, {"rrf_k": self.fusion.rrf_k, "dense_weight": self.fusion.dense_weight}))
        for choice in self.rerankers:
            if choice.kind != "none":
                checks.append((f"reranker {choice.label}", RerankerConfig,
                               {"kind": choice.kind, "model": choice.model, "top_n": choice.top_n,
                                "blend": choice.blend}))
        for where, model, params in checks:
            for extreme in ("low", "high"):
                try:
                    model.model_validate({k: _extreme(v, extreme) for k, v in params.items()})
                except ValidationError as err:
                    raise ValueError(f"{where} at its {extreme} end: {_describe(err)}") from None

    def to_yaml(self) -> str:
        """The space as YAML (logged with every study, so a study is reproducible from its logs)."""
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=False), sort_keys=False,
                              allow_unicode=True)


def _extreme(param: Any, end: str) -> Any:
    if isinstance(param, (IntRange, FloatRange)):
        return param.low if end == "low" else param.high
    if isinstance(param, list):
        return min(param) if end == "low" else max(param)
    return param


class SpaceError(ValueError):
    """A search space the user (or the agent) must fix; names the source and the fields."""


def _describe(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors())


def space_from_dict(data: dict[str, Any], source: str = "space") -> SearchSpace:
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as err:
        raise SpaceError(f"{source}: {_describe(err)}") from None


def load_space(path: Path | str) -> SearchSpace:
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"{path}: search space file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SpaceError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise SpaceError(f"{path}: expected a mapping at the top level")
    return space_from_dict(data, str(path))

