"""The LLM a benchmark talks to: an endpoint (``--base-url``, e.g. vLLM) or a local llama.cpp server it starts
and stops, always on a cold request cache (a temporary file), so every call is timed for real."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.llm import LLMCache, LLMClient, LLMSettings, LocalLLMServer
from pipelines.llm.models import LOCAL_MODELS, ModelUnavailable, _sha256


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="local GGUF model (when no --base-url)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint instead of a local server (its key: "
                                           "EVOLVE_LLM_API_KEY or EVOLVE_LLM_API_KEY_FILE)")
    parser.add_argument("--served-model", default="default", help="model name at --base-url")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads of the local server (1 when the "
                                                                 "CPU is shared: 2 threads wait on each other)")
    parser.add_argument("--gguf", type=Path, help="serve this file as --model (e.g. the joined "
                                                  "~/.cache/evolve/models/qwen2.5-coder-1.5b.gguf where its packages "
                                                  "are not installed); checked against the model's pinned sha256")


def checked_gguf(model: str, path: Path) -> Path:
    """``path`` when it is ``model``'s pinned file (or the model pins none), else refused."""
    pinned = LOCAL_MODELS[model].sha256 if model in LOCAL_MODELS else None
    if pinned and _sha256(path) != pinned:
        raise ModelUnavailable(f"{path}: sha256 does not match the one pinned for {model}")
    return path


@contextmanager
def bench_client(args: argparse.Namespace, cache_path: Path | None = None) -> Iterator[LLMClient]:
    """A client on a cold cache; ``cache_path`` keeps the calls (a long run that is killed resumes from it)."""
    cache = LLMCache(cache_path or Path(tempfile.mkdtemp()) / "bench-llm-cache.duckdb")
    if args.base_url:
        yield LLMClient(LLMSettings.from_env(args.base_url, args.served_model), cache)  # the key as evolve reads it
    else:
        gguf = checked_gguf(args.model, args.gguf) if args.gguf else None
        with LocalLLMServer(args.model, threads=args.threads, ctx=4096, gguf=gguf) as settings:
            yield LLMClient(settings, cache)
