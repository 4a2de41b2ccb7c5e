"""Search spaces: which pipeline configs a study may try. YAML or a Python dict (what the agent proposes).

A parameter is a fixed value, a list of choices, or a range ``{low, high[, step][, log]}``.
Everything is validated up front: unknown keys, values outside the allowed lists, ranges that
break the pipeline's own limits, and models that are not in the registry are refused with a
message naming the field.

Nothing here lists kinds: a chunker or reranker choice is the kind's own config model with its tuned fields
widened to a value, a list or a range; fusion kinds and BM25 tokenizers are checked against their registries,
and :func:`describe_space` writes the schema text from the same models and limits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Union, get_args, get_origin

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SerializeAsAny, ValidationError,
                      ValidationInfo, create_model, field_validator, model_validator)
from pydantic.fields import FieldInfo

from experiments.metrics import parse_metric
from pipelines.chunking import CHUNKERS
from pipelines import GenerationConfig, LexicalConfig
from pipelines.embedders import resolve_model
from pipelines.fusion import FUSIONS
from pipelines.lexical import TOKENIZERS
from pipelines import ConfigRegistry, KindConfig
from pipelines.rerankers import RERANKERS
from pipelines import ModelCatalog, catalog_or_env, load_model, problems_of, validate_as


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Range(_Strict):
    """A range a trial samples from: ``low`` must not be above ``high``."""

    @model_validator(mode="after")
    def _ordered(self) -> "_Range":
        if self.low > self.high:  # type: ignore[attr-defined]  # both subclasses declare them
            raise ValueError(f"low ({self.low}) is above high ({self.high})")  # type: ignore[attr-defined]
        return self


class IntRange(_Range):
    low: int
    high: int
    step: int = 1
    log: bool = False


class FloatRange(_Range):
    low: float
    high: float
    step: float | None = None
    log: bool = False


IntParam = Union[int, list[int], IntRange]
FloatParam = Union[float, list[float], FloatRange]


def _param_type(annotation: Any) -> Any:
    """What a space may give for a config field of this type (None: the field is not tunable)."""
    if annotation is int:
        return IntParam
    if annotation is float:
        return FloatParam
    if annotation is bool or get_origin(annotation) is Literal:
        return Union[annotation, list[annotation]]
    return None


def tuned_fields(config: type[KindConfig]) -> tuple[str, ...]:
    """The fields of a kind a trial draws, in draw order (the kind's ``tuned``, else its tunable fields)."""
    if config.tuned is not None:
        return config.tuned
    return tuple(name for name, info in config.model_fields.items()
                 if name != "kind" and _param_type(info.annotation) is not None)


class Choice(_Strict):
    """One kind in a space: the kind's config fields, the tuned ones widened to a value, a list or a range
    (None: not drawn, the config's default holds)."""

    kind: str
    config: ClassVar[type[KindConfig]]

    def params(self) -> dict[str, Any]:
        """The tuned fields this choice gives, in draw order."""
        return {name: getattr(self, name) for name in tuned_fields(self.config) if getattr(self, name) is not None}

    def fixed(self) -> dict[str, Any]:
        """The fields a trial does not draw (a reranker's model), as given."""
        tuned = tuned_fields(self.config)
        return {name: getattr(self, name) for name in type(self).model_fields if name not in tuned and name != "kind"}

    def at(self, end: str) -> dict[str, Any]:
        """The config with every drawn field at its 'low' or 'high' end, as the kind makes a draw consistent."""
        return self.config.clamp({"kind": self.kind, **self.fixed(), **_ends(self.params())(end)})

    @property
    def label(self) -> str:
        model = getattr(self, "model", None)
        return f"{self.kind}:{model}" if model and self.kind != "none" else self.kind


@lru_cache(maxsize=None)
def choice_model(config: type[KindConfig], defaults: tuple[tuple[str, Any], ...] = ()) -> type[Choice]:
    """The space's model of one kind, derived from its config model; ``defaults``: the space's own defaults."""
    given, tuned = dict(defaults), tuned_fields(config)
    fields: dict[str, Any] = {"kind": (Literal[config.kind_name()], config.kind_name())}
    for name, info in config.model_fields.items():
        if name in tuned:
            fields[name] = (Optional[_param_type(info.annotation)], given.get(name))
        elif name != "kind":
            fields[name] = (info.annotation, given.get(name, ... if info.is_required() else info.default))
    model = create_model(f"{config.__name__}Choice", __base__=Choice, **fields)
    model.config = config
    return model


RERANKER_DEFAULTS = (("top_n", 20), ("blend", 0.0))
"""A space's reranker choice re-scores a short head, reranker only, unless it says otherwise."""

OLD_CHUNKER_FIELDS = {"unit": "chars", "size": None, "overlap": None, "include_title": True}
"""What spaces written before per-kind choices (study specs, logged space.yaml) held for every chunker kind:
dropped where a kind has no such field."""


def _choice(registry: ConfigRegistry, defaults: tuple[tuple[str, Any], ...] = (),
            legacy: dict[str, Any] | None = None) -> Any:
    """The pydantic type of a choice of any kind of ``registry`` (looked up when validated)."""

    def parse(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        model = choice_model(registry.config_class(value.get("kind")), defaults)
        old = legacy or {}
        kept = {k: v for k, v in value.items() if k in model.model_fields or k not in old or old[k] != v}
        return model.model_validate(kept)

    return Annotated[SerializeAsAny[Choice], BeforeValidator(parse)]


ChunkerChoice = _choice(CHUNKERS, legacy=OLD_CHUNKER_FIELDS)
RerankerChoice = _choice(RERANKERS, RERANKER_DEFAULTS)


def _tokenizer_or_none(name: str) -> str:
    return name if name == "none" else TOKENIZERS.checked(name)


class LexicalSpace(_Strict):
    tokenizers: list[Annotated[str, AfterValidator(_tokenizer_or_none)]] = Field(min_length=1)
    """'none' lets a trial run without BM25 (dense only)."""
    k1: FloatParam = 1.5
    b: FloatParam = 0.75


class FusionSpace(_Strict):
    """Fusion kinds a trial picks from; the other fields are every kind's tuned fields (derived per registry)."""

    kinds: list[Annotated[str, AfterValidator(FUSIONS.checked)]] = Field(default_factory=lambda: ["rrf"],
                                                                         min_length=1)

    def params(self, kind: str) -> dict[str, Any]:
        """The fields of ``kind`` a trial draws, as this space gives them."""
        return {name: getattr(self, name) for name in tuned_fields(FUSIONS.config_class(kind))}


def _fusion_fields(configs: tuple[type[KindConfig], ...]) -> dict[str, FieldInfo]:
    """Every field some fusion kind tunes (the kinds' configs in registry order)."""
    return {name: config.model_fields[name] for config in configs for name in tuned_fields(config)}


@lru_cache(maxsize=None)
def _fusion_space_model(configs: tuple[type[KindConfig], ...]) -> type[FusionSpace]:
    fields = {name: (_param_type(info.annotation), info.default) for name, info in _fusion_fields(configs).items()}
    return create_model("FusionSpace", __base__=FusionSpace, **fields)


def fusion_space(value: Any = None) -> Any:
    """A fusion space for the kinds registered now (a mapping; None: the defaults)."""
    model = _fusion_space_model(tuple(FUSIONS.configs()))
    value = {} if value is None else value
    return model.model_validate(value) if isinstance(value, dict) else value


class GenerationSpace(_Strict):
    """How many top chunks the generator gets and their budget (see ``pipelines.GenerationConfig``). Retrieval
    metrics do not see these: the study's answer stage (its finalists, judged) is what tells draws apart."""

    contexts: IntParam = 5
    context_tokens: IntParam = 1500
    max_answer_tokens: IntParam = 256

    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}


class SearchSpace(_Strict):
    """What a study samples from. ``dense_models`` may include 'none' (BM25 only) and
    ``lexical.tokenizers`` 'none' (dense only); leaving ``lexical`` out means dense only."""

    name: str = "space"
    metric: str = "ndcg@10"
    dense_models: list[str] = Field(min_length=1)
    chunkers: list[ChunkerChoice] = Field(default_factory=lambda: [choice_model(CHUNKERS.config_class("whole"))()],
                                          min_length=1)
    lexical: LexicalSpace | None = None
    fusion: Annotated[SerializeAsAny[FusionSpace], BeforeValidator(fusion_space)] = Field(default_factory=fusion_space)
    rerankers: list[RerankerChoice] = Field(
        default_factory=lambda: [choice_model(RERANKERS.config_class("none"), RERANKER_DEFAULTS)()], min_length=1)
    candidates: IntParam = 100
    k: int = Field(100, ge=1, le=10_000)
    generation: GenerationSpace = Field(default_factory=GenerationSpace)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        parse_metric(value)
        return value.lower()

    @field_validator("dense_models")
    @classmethod
    def _models_in_registry(cls, models: list[str], info: ValidationInfo) -> list[str]:
        for model in models:
            if model != "none":
                try:
                    spec = resolve_model(model, _catalog(info))
                except KeyError as err:
                    raise ValueError(err.args[0]) from None
                if spec.loader == "remote-reranker":
                    raise ValueError(f"{model} is a served reranker, not an embedding model: offer it as "
                                     f"rerankers: [{{kind: remote, model: {model}}}]")
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
    def _consistent(self, info: ValidationInfo) -> SearchSpace:
        tokenizers = self.lexical.tokenizers if self.lexical else ["none"]
        if "none" in self.dense_models and tokenizers == ["none"]:
            raise ValueError("'none' as a dense model needs a lexical tokenizer other than 'none'")
        for chunker in self.chunkers:
            _within_limits(f"chunker {chunker.kind!r}", chunker.config, chunker.at)
        self._numbers_within_pipeline_limits()
        for choice in self.rerankers:
            _within_limits(f"reranker {choice.label}", choice.config, choice.at)
            if choice.config.model_kind == "embedding":
                try:
                    resolve_model(choice.model or "", _catalog(info))
                except KeyError as err:
                    raise ValueError(err.args[0]) from None
        labels = [c.label for c in self.rerankers]
        if len(set(labels)) != len(labels):
            raise ValueError("rerankers lists the same reranker twice")
        return self

    def _numbers_within_pipeline_limits(self) -> None:
        """Each numeric range, at both ends, must be a value the pipeline config itself accepts."""
        if self.lexical:
            _within_limits("lexical", LexicalConfig, _ends({"k1": self.lexical.k1, "b": self.lexical.b}))
        _within_limits("generation", GenerationConfig, _ends(self.generation.params()))
        for config in FUSIONS.configs():  # every field of the space, whichever kinds it lists
            kind = config.kind_name()
            _within_limits("fusion", config, _ends({"kind": kind, **self.fusion.params(kind)}))

    def with_dense_models(self, models: Sequence[str], catalog: ModelCatalog | None = None) -> SearchSpace:
        """This space offering ``models`` (names in ``catalog``) too, after its own dense models (each once)."""
        return self._with(catalog, dense_models=list(dict.fromkeys([*self.dense_models, *models])))

    def with_rerankers(self, choices: Sequence[dict[str, object]], catalog: ModelCatalog | None = None
                       ) -> SearchSpace:
        """This space offering the reranker ``choices`` (space entries, as in YAML) too, after its own."""
        return self._with(catalog, rerankers=[*(r.model_dump(mode="json") for r in self.rerankers), *choices])

    def _with(self, catalog: ModelCatalog | None, **changes: object) -> SearchSpace:
        """A copy with ``changes``, validated as a whole in ``catalog`` (a new choice is checked against the rest of
        the space, and its model must resolve where the study will load it)."""
        return space_from_dict({**self.model_dump(mode="json"), **changes}, f"space {self.name}", catalog)

    def to_yaml(self) -> str:
        """The space as YAML (logged with every study, so a study is reproducible from its logs)."""
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=False), sort_keys=False,
                              allow_unicode=True)


def _within_limits(where: str, model: type[BaseModel], at: Any) -> None:
    """``at(end)`` validates as ``model`` at both ends, else a ValueError naming where and which end."""
    for extreme in ("low", "high"):
        try:
            model.model_validate(at(extreme))
        except ValidationError as err:
            raise ValueError(f"{where} at its {extreme} end: {problems_of(err)}") from None


def _ends(params: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    """end -> ``params`` with each value at that end."""
    return lambda end: {name: _extreme(value, end) for name, value in params.items()}


def _extreme(param: Any, end: str) -> Any:
    if isinstance(param, (IntRange, FloatRange)):
        return param.low if end == "low" else param.high
    if isinstance(param, list):
        return min(param) if end == "low" else max(param)
    return param


class SpaceError(ValueError):
    """A search space the user (or the agent) must fix; names the source and the fields."""


def _catalog(info: ValidationInfo) -> ModelCatalog | None:
    """The catalog a space's model names resolve in: the validation context's (None: this process's)."""
    return (info.context or {}).get("catalog")


def space_from_dict(data: dict[str, Any], source: str = "space", catalog: ModelCatalog | None = None) -> SearchSpace:
    """``data`` as a space whose model names resolve in ``catalog`` (default: this process's)."""
    return validate_as(SearchSpace, data, SpaceError, source, {"catalog": catalog})


def load_space(path: Path | str, catalog: ModelCatalog | None = None) -> SearchSpace:
    return load_model(path, SearchSpace, SpaceError, "search space", context={"catalog": catalog})


def _limits(info: FieldInfo) -> str:
    """The values a config field accepts, as its validation enforces them: '16..100000', '>= 0', '"a" | "b"'."""
    if get_origin(info.annotation) is Literal:
        return " | ".join(json.dumps(value) for value in get_args(info.annotation))
    if info.annotation is bool:
        return "true | false"
    rules = {name: getattr(rule, name) for rule in info.metadata for name in ("ge", "gt", "le", "lt")
             if getattr(rule, name, None) is not None}
    if "ge" in rules and "le" in rules:
        return f"{rules['ge']:g}..{rules['le']:g}"
    return " and ".join(f"{symbol} {rules[name]:g}" for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="),
                                                                          ("lt", "<")) if name in rules) or "any"


def _field_text(name: str, info: FieldInfo) -> str:
    return f'"{name}": {_limits(info)}' + (f" ({info.description})" if info.description else "")


def _summary(cls: type) -> str:
    """The first line of a class's docstring, as plain text."""
    return (cls.__doc__ or "").strip().split("\n")[0].replace("``", "").rstrip(".")


def _kind_text(registry: ConfigRegistry, kind: str, extra: list[str] | None = None) -> str:
    config = registry.config_class(kind)
    fields = [f'"kind": "{kind}"', *(extra or [])]
    fields += [_field_text(name, config.model_fields[name]) for name in tuned_fields(config)]
    doc = _summary(config if kind == "none" else registry.get(kind))
    return "{" + ", ".join(fields) + "}" + (f": {doc}" if doc else "")


def served_rerankers(catalog: ModelCatalog | None = None) -> list[str]:
    """The rerankers of the catalog's model registry (default: this process's), which the 'remote' kind offers."""
    return [n for n, m in catalog_or_env(catalog).served().items() if m.kind == "reranker"]


def describe_space(models: list[str], catalog: ModelCatalog | None = None) -> str:
    """The schema of a space as text for an LLM, written from the registries and the limits validation enforces.

    ``models``: the embedding models a proposal may name (dense models, and reranker kinds whose model is an
    embedding model); the served rerankers of the project's model registry are offered to the 'remote' kind;
    reranker kinds that need other weights are left out, a proposal could not name them.
    """
    names = json.dumps(models)
    chunkers = [_kind_text(CHUNKERS, kind) for kind in CHUNKERS.kinds()]
    served = json.dumps(served_rerankers(catalog))
    offered = {None: None, "embedding": names, **({"remote-reranker": served} if served != "[]" else {})}
    rerankers = [_kind_text(RERANKERS, kind, [f'"model": one of {offered[config.model_kind]}']
                            if config.model_kind else [])
                 for kind, config in zip(RERANKERS.kinds(), RERANKERS.configs()) if config.model_kind in offered]
    tokenizers = "; ".join(f"{name}: {_summary(TOKENIZERS.get(name))}" for name in TOKENIZERS.kinds())
    fusion_fields = [_field_text(name, info) for name, info in _fusion_fields(tuple(FUSIONS.configs())).items()]
    return "\n".join([
        "A search space is JSON with these keys (nothing else):",
        '- "name": short string',
        '- "metric": "ndcg@10"',
        f'- "dense_models": list from {names} (or "none" for BM25 only)',
        '- "chunkers": list of objects, each kind at most once, from:',
        *(f"  {text}" for text in chunkers),
        f'- "lexical": {{"tokenizers": list from {json.dumps(TOKENIZERS.kinds())} (or ["none"] for dense only), '
        + ", ".join(_field_text(n, LexicalConfig.model_fields[n]) for n in ("k1", "b")) + "}",
        f"  tokenizers: {tokenizers}",
        f'- "fusion": {{"kinds": list from {json.dumps(sorted(FUSIONS.classes))}, ' + ", ".join(fusion_fields) + "}",
        '- "rerankers": list of objects, from:',
        *(f"  {text}" for text in rerankers),
        '- "generation": {' + ", ".join(_field_text(n, info) for n, info in GenerationConfig.model_fields.items())
        + "} (what the answer generator is given; judged on the study's finalists)",
        'A number may be a number, a list of numbers or a range {"low": .., "high": ..}; a quoted or true/false '
        "value may be a value or a list; a key left out keeps its default. Values outside these limits are refused.",
    ])


def _value_schema(info: FieldInfo) -> dict[str, Any]:
    """The JSON schema of one value of a config field, within the limits its validation enforces."""
    if get_origin(info.annotation) is Literal:
        return {"enum": list(get_args(info.annotation))}
    if info.annotation is bool:
        return {"type": "boolean"}
    schema: dict[str, Any] = {"type": "integer" if info.annotation is int else "number"}
    for rule in info.metadata:
        for name, key in (("ge", "minimum"), ("le", "maximum"), ("gt", "exclusiveMinimum"), ("lt", "exclusiveMaximum")):
            if getattr(rule, name, None) is not None:
                schema[key] = getattr(rule, name)
    return schema


def _param_schema(info: FieldInfo) -> dict[str, Any]:
    """A drawn field as a space gives it: one value, a list of values, or (numbers) a range {low, high}."""
    value = _value_schema(info)
    shapes = [value, {"type": "array", "items": value, "minItems": 1, "maxItems": 8}]
    if "type" in value and value["type"] != "boolean":
        shapes.append({"type": "object", "properties": {"low": value, "high": value}, "required": ["low", "high"],
                       "additionalProperties": False})
    return {"anyOf": shapes}


def _kind_schema(config: type[KindConfig], models: list[str] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"kind": {"enum": [config.kind_name()]}}
    if models is not None:
        properties["model"] = {"enum": models}
    properties.update({name: _param_schema(config.model_fields[name]) for name in tuned_fields(config)})
    return {"type": "object", "properties": properties, "required": ["kind", *(["model"] if models else [])],
            "additionalProperties": False}


def space_json_schema(models: list[str], catalog: ModelCatalog | None = None) -> dict[str, Any]:
    """The JSON schema of a space a proposer may send, from the same registries and limits as validation: models
    and kinds as enums, numbers within their ranges, no other keys. Sent as the structured-output format, a server
    that enforces schemas (llama.cpp, vLLM) can only produce spaces of this shape (validation still checks)."""
    served = served_rerankers(catalog)
    offered = {None: None, "embedding": models, **({"remote-reranker": served} if served else {})}
    rerankers = [_kind_schema(config, offered[config.model_kind])
                 for config in RERANKERS.configs() if config.model_kind in offered]

    def listed(items: dict[str, Any], most: int) -> dict[str, Any]:
        return {"type": "array", "items": items, "minItems": 1, "maxItems": most}

    fusion = {"kinds": listed({"enum": sorted(FUSIONS.classes)}, len(FUSIONS.classes))}
    fusion.update({name: _param_schema(info) for name, info in _fusion_fields(tuple(FUSIONS.configs())).items()})
    lexical = {"tokenizers": {"type": "array", "prefixItems": [{"enum": TOKENIZERS.kinds()}],
                              "items": {"enum": [*TOKENIZERS.kinds(), "none"]}, "minItems": 1,
                              "maxItems": len(TOKENIZERS.kinds()) + 1},
               **{name: _param_schema(LexicalConfig.model_fields[name]) for name in ("k1", "b")}}
    properties = {
        "name": {"type": "string", "maxLength": 60},
        # the first entry a real model and (lexical) a real tokenizer: 'none' in one list needs a real choice in the
        # other, which a schema cannot say across lists; trials still draw BM25 only or dense only through 'none'
        "dense_models": {"type": "array", "prefixItems": [{"enum": models}], "items": {"enum": [*models, "none"]},
                         "minItems": 1, "maxItems": len(models) + 1},
        "chunkers": listed({"anyOf": [_kind_schema(c) for c in CHUNKERS.configs()]}, len(CHUNKERS.kinds())),
        "lexical": {"type": "object", "properties": lexical, "required": ["tokenizers"],
                    "additionalProperties": False},
        "fusion": {"type": "object", "properties": fusion, "required": ["kinds"], "additionalProperties": False},
        "rerankers": listed({"anyOf": rerankers}, len(rerankers) + 2),
        "generation": {"type": "object", "properties": {name: _param_schema(info) for name, info in
                                                         GenerationConfig.model_fields.items()},
                       "additionalProperties": False},
    }
    return {"type": "object", "properties": properties,
            "required": ["name", "dense_models", "chunkers", "lexical", "fusion", "rerankers"],
            "additionalProperties": False}
