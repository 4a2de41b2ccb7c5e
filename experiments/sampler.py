"""Turn an Optuna trial into a pipeline config drawn from a search space (conditional parameters)."""

from __future__ import annotations

from typing import Any

import optuna

from experiments.space import FloatRange, IntRange, SearchSpace
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
    chunking: dict[str, Any] = {"kind": chunker_kind, "include_title": chunker.include_title}
    if chunker.size is not None and chunker_kind != "whole":
        chunking["size"] = suggest(trial, f"{chunker_kind}.size", chunker.size)
    if chunker_kind == "fixed":
        chunking["unit"] = suggest(trial, "fixed.unit", chunker.unit)
    if chunker.overlap is not None and chunker_kind in ("fixed", "sentence"):
        overlap = suggest(trial, f"{chunker_kind}.overlap", chunker.overlap)
        if chunker_kind == "fixed":
            overlap = min(overlap, chunking.get("size", 512) // 2)  # keep windows moving forward
        chunking["overlap"] = overlap

    config: dict[str, Any] = {"name": f"trial-{trial.number}", "chunking": chunking, "k": space.k,
                              "candidates": suggest(trial, "candidates", space.candidates)}
    if dense_model != "none":
        config["dense"] = {"model": dense_model}
    if tokenizer != "none" and space.lexical is not None:
        config["lexical"] = {"tokenizer": tokenizer, "k1": suggest(trial, "bm25.k1", space.lexical.k1),
                             "b": suggest(trial, "bm25.b", space.lexical.b)}
    if "dense" in config and "lexical" in config:
        kind = suggest(trial, "fusion", space.fusion.kinds)
        fusion: dict[str, Any] = {"kind": kind}
        if kind == "rrf":
            fusion["rrf_k"] = suggest(trial, "fusion.rrf_k", space.fusion.rrf_k)
        else:
            fusion["dense_weight"] = suggest(trial, "fusion.dense_weight", space.fusion.dense_weight)
        config["fusion"] = fusion
    else:
        config["fusion"] = {"kind": "none"}

    label = suggest(trial, "reranker", [r.label for r in space.rerankers])
    choice = next(r for r in space.rerankers if r.label == label)
    if choice.kind != "none":
        config["reranker"] = {"kind": choice.kind, "model": choice.model,
                              "top_n": suggest(trial, "reranker.top_n", choice.top_n),
                              "blend": suggest(trial, "reranker.blend", choice.blend)}
    return PipelineConfig.model_validate(config)
