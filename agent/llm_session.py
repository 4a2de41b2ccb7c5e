"""The one way a command connects to an LLM: the configured endpoint (vLLM), else a local CPU server
that evolve starts on 127.0.0.1 and stops when the command ends. Every client shares the request cache.

The endpoint's settings come from one place, ``LLMSettings.from_env``: the base URL and model of the options below
(or their variables) and the key from ``EVOLVE_LLM_API_KEY`` or the file ``EVOLVE_LLM_API_KEY_FILE`` names."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from agent.paths import ProjectPaths

if TYPE_CHECKING:
    from pipelines.llm import LLMClient

BaseUrlOption = Annotated[Optional[str], typer.Option("--llm-base-url", envvar="EVOLVE_LLM_BASE_URL",
                                                      help="OpenAI-compatible endpoint (vLLM), e.g. http://gpu1:8000/v1. "
                                                           "Without one, evolve starts a local CPU server. Its key: "
                                                           "EVOLVE_LLM_API_KEY or EVOLVE_LLM_API_KEY_FILE (a file).")]
ModelOption = Annotated[Optional[str], typer.Option("--llm-model", envvar="EVOLVE_LLM_MODEL",
                                                    help="Model name served at --llm-base-url.")]
LocalModelOption = Annotated[Optional[str], typer.Option("--local-model", envvar="EVOLVE_LOCAL_LLM",
                                                         help="Local GGUF model when no endpoint is given "
                                                              "(smollm2-135m, qwen2.5-coder-1.5b, or a .gguf path; "
                                                              "default: the best one installed).")]
DEFAULT_LOCAL_MODELS = ("qwen2.5-coder-1.5b", "smollm2-135m")
"""Tried in this order: the 1.5B judges and proposes far better than SmolLM2."""


def best_local_model(choice: str | None = None) -> str:
    """The chosen local model, else the best one that is installed."""
    from pipelines.llm import ModelUnavailable, resolve_gguf

    for name in ([choice] if choice else list(DEFAULT_LOCAL_MODELS)):
        try:
            resolve_gguf(name)
            return name
        except ModelUnavailable:
            continue
    return choice or DEFAULT_LOCAL_MODELS[-1]


def connect_llm(stack: ExitStack, project_dir: Path, base_url: str | None, model: str | None,
                local_model: str | None = None, *, threads: int | None = None, max_retries: int | None = None,
                say: Callable[[str], None] | None = None) -> LLMClient:
    """An LLMClient for the endpoint, or for a local server whose shutdown is registered on ``stack``.

    Raises LLMUnavailable (LLMConfigError: settings that cannot be used) / ModelUnavailable / RuntimeError when
    neither can be had.
    """
    from pipelines.llm import LLMCache, LLMClient, LLMSettings, LocalLLMServer

    paths = ProjectPaths.of(project_dir)
    cache = LLMCache(paths.llm_cache)
    retries = {} if max_retries is None else {"max_retries": max_retries}
    settings = LLMSettings.from_env(base_url, model, **retries)
    if settings is not None:
        return LLMClient(settings, cache)
    name = best_local_model(local_model)
    # no ctx: the model's trained context (SmolLM2 8k, Qwen2.5 32k), so the proposer's failure examples fit
    server = LocalLLMServer(name, threads=threads or min(4, os.cpu_count() or 1), log=paths.llm_log)
    if say:
        say(f"no LLM endpoint configured: starting a local {name} server on 127.0.0.1 "
            f"({server.context:,}-token context)")
    stack.callback(server.stop)  # registered first: a server that fails half-way through start is stopped too
    settings = server.start()
    return LLMClient(settings.model_copy(update=retries), cache)


def try_connect_llm(stack: ExitStack, project_dir: Path, base_url: str | None, model: str | None,
                    local_model: str | None, say: Callable[[str], None] | None = None) -> tuple[LLMClient | None, str]:
    """:func:`connect_llm`, checked with one call; (None, why) when no LLM answers, for commands that go on
    without one (the loop proposes with the heuristic, a guard skips answer metrics)."""
    from pipelines.llm import LLMUnavailable, ModelUnavailable

    try:
        client = connect_llm(stack, project_dir, base_url, model, local_model, max_retries=1 if base_url else None,
                             say=say)
        client.check()
        return client, ""
    except (LLMUnavailable, ModelUnavailable, RuntimeError) as err:
        return None, f"LLM unavailable: {err}"


def judge_agreement(project_dir: Path, judge_model: str) -> dict[str, object] | None:
    """The judge model's latest agreement with human labels (`evolve judge calibrate`), pooled and per language of
    the labelled questions, as the guard step takes it for the policy's ``answers.min_judge_kappa``; None when it
    was never calibrated in this project."""
    from experiments import CalibrationStore, CalibrationStoreBusy

    store = CalibrationStore(ProjectPaths.of(project_dir).judge_calibration)
    try:
        found = store.latest(judge_model)
        languages = store.latest_languages(judge_model) if found is not None else {}
    except CalibrationStoreBusy:  # another process holds the file: treated as not calibrated (the safe side)
        return None
    if found is None:
        return None
    out: dict[str, object] = {"kappa": found.kappa, "n": found.n, "accuracy": found.accuracy, "source": found.source}
    if languages:  # the guard reads the held-back set's language (a run recorded before languages: the pooled one)
        out["languages"] = {lang: {"kappa": c.kappa, "n": c.n, "accuracy": c.accuracy} for lang, c in languages.items()}
    return out


@contextmanager
def llm_client(project_dir: Path, base_url: str | None, model: str | None, local_model: str | None = None,
               threads: int | None = None) -> Iterator[LLMClient]:
    """:func:`connect_llm` for the length of a ``with`` block."""
    with ExitStack() as stack:
        yield connect_llm(stack, project_dir, base_url, model, local_model, threads=threads)
