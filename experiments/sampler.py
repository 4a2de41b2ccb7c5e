"""Turn an Optuna trial into a pipeline config drawn from a search space (conditional parameters).

What a kind draws comes from its choice in the space (the kind's tuned fields, see experiments.space), so the
sampler names no kind: trial parameters are '<chunker kind>.<field>', 'fusion.<field>' and 'reranker.<field>'.
"""

from __future__ import annotations

from typing import Any

import optuna

from experiments.space import Choice, FloatRange, IntRange, SearchSpace
from pipelines import PipelineConfig


def suggest(trial: optuna.Trial, name: str, param: Any) -> Any:
    """A fixed value is recorded as-is; a list is categorical; a range is int/float."""
    if isinstance(param, IntRange):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, FloatRange):
        if param.step is not None:
            return trial.suggest_float(name, param.low, param.high, step=param.step)
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    if isinstance(param, list):
        return param[0] if len(param) == 1 else trial.suggest_categorical(name, param)
    return param


def suggest_choice(trial: optuna.Trial, choice: Choice, prefix: str) -> dict[str, Any]:
    """The config part of one kind: its fixed fields and a draw of each tuned field, made consistent by the kind."""
    drawn = {name: suggest(trial, f"{prefix}{name}", value) for name, value in choice.params().items()}
    return choice.config.clamp({"kind": choice.kind, **choice.fixed(), **drawn})


def first_value(param: Any) -> Any:
    """A parameter's first value (a range's low end): what a cost estimate assumes before anything is drawn."""
    if isinstance(param, (IntRange, FloatRange)):
        return param.low
    return param[0] if isinstance(param, list) else param


def first_chunking(space: SearchSpace) -> Any:
    """The first chunker of a space with its first values, as a config."""
    choice = space.chunkers[0]
    return choice.config.model_validate(choice.config.clamp(
        {"kind": choice.kind, **choice.fixed(), **{name: first_value(v) for name, v in choice.params().items()}}))


def suggest_config(trial: optuna.Trial, space: SearchSpace) -> PipelineConfig:
    dense_model = suggest(trial, "dense_model", space.dense_models)
    tokenizers = space.lexical.tokenizers if space.lexical else ["none"]
    # always the same choices (TPE refuses a value space that changes between trials); "no dense model and
    # no BM25" is not a pipeline, so that draw becomes BM25 with the first tokenizer (the space has one)
    tokenizer = suggest(trial, "bm25_tokenizer", tokenizers)
    if dense_model == "none" and tokenizer == "none":
        tokenizer = next(t for t in tokenizers if t != "none")

    chunker_kind = suggest(trial, "chunker", [c.kind for c in space.chunkers])
    chunker = next(c for c in space.chunkers if c.kind == chunker_kind)
    config: dict[str, Any] = {"name": f"trial-{trial.number}", "chunking": suggest_choice(trial, chunker,
                                                                                          f"{chunker_kind}."),
                              "k": space.k, "candidates": suggest(trial, "candidates", space.candidates)}
    if dense_model != "none":
        config["dense"] = {"model": dense_model}
    if tokenizer != "none" and space.lexical is not None:
        config["lexical"] = {"tokenizer": tokenizer, "k1": suggest(trial, "bm25.k1", space.lexical.k1),
                             "b": suggest(trial, "bm25.b", space.lexical.b)}
    if "dense" in config and "lexical" in config:
        kind = suggest(trial, "fusion", space.fusion.kinds)
        config["fusion"] = {"kind": kind, **{name: suggest(trial, f"fusion.{name}", value)
                                             for name, value in space.fusion.params(kind).items()}}
    else:
        config["fusion"] = {"kind": "none"}

    label = suggest(trial, "reranker", [r.label for r in space.rerankers])
    choice = next(r for r in space.rerankers if r.label == label)
    if choice.kind != "none":
        config["reranker"] = suggest_choice(trial, choice, "reranker.")
    config["generation"] = {name: suggest(trial, f"generation.{name}", value)
                            for name, value in space.generation.params().items()}
    return PipelineConfig.model_validate(config)
