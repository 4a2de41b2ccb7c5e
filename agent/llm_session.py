"""The LLM for a command: the configured endpoint (vLLM), or a local CPU server evolve starts and stops."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

BaseUrlOption = Annotated[Optional[str], typer.Option("--llm-base-url", envvar="EVOLVE_LLM_BASE_URL",
                                                      help="OpenAI-compatible endpoint (vLLM), e.g. http://gpu1:8000/v1. "
                                                           "Without one, evolve starts a local CPU server.")]
ModelOption = Annotated[Optional[str], typer.Option("--llm-model", envvar="EVOLVE_LLM_MODEL",
                                                    help="Model name served at --llm-base-url.")]
LocalModelOption = Annotated[str, typer.Option("--local-model", envvar="EVOLVE_LOCAL_LLM",
                                               help="Local GGUF model when no endpoint is given "
                                                    "(smollm2-135m, qwen2.5-coder-1.5b, or a .gguf path).")]


@contextmanager
def llm_client(project_dir: Path, base_url: str | None, model: str | None, local_model: str = "smollm2-135m",
               threads: int = 1) -> Iterator:
    from pipelines.llm import LLMCache, LLMClient, LLMSettings, LocalLLMServer

    cache = LLMCache(project_dir / ".evolve" / "llm_cache.duckdb")
    if base_url:
        yield LLMClient(LLMSettings(base_url=base_url, model=model or "default"), cache)
        return
    with LocalLLMServer(local_model, threads=threads, log=project_dir / ".evolve" / "local-llm.log") as settings:
        yield LLMClient(settings, cache)
