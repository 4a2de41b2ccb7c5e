"""`evolve llm check` and `evolve evalset synthesize`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agent.app import ProjectDir, app, console, fail
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, llm_client

llm_app = typer.Typer(help="The LLM endpoint (vLLM in production, a local llama.cpp server otherwise).",
                      no_args_is_help=True)
evalset_app = typer.Typer(help="Evaluation sets: synthesize one from raw documents.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")
app.add_typer(evalset_app, name="evalset")


@llm_app.command("check")
def llm_check(base_url: BaseUrlOption = None, model: ModelOption = None, local_model: LocalModelOption = None,
              project_dir: ProjectDir = Path(".")) -> None:
    """Does the configured endpoint answer, with which model, how fast? (Starts the local server if none is set.)"""
    from pipelines.llm import LLMUnavailable
    from pipelines.llm.models import ModelUnavailable

    try:
        with llm_client(project_dir, base_url, model, local_model) as client:
            report = client.check()
    except (LLMUnavailable, ModelUnavailable, RuntimeError) as err:
        fail(str(err), code=1)
    table = Table(title="LLM endpoint" + ("" if base_url else " (local server started for this check)"))
    table.add_column("fact")
    table.add_column("value")
    for key, value in report.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)


@evalset_app.command("synthesize")
def synthesize_command(
    corpus: Annotated[Path, typer.Option(help="Documents (corpus.jsonl: doc_id, title, text).")],
    out: Annotated[Path, typer.Option(help="Folder for the new evaluation set.")],
    n: Annotated[int, typer.Option(help="Passages to sample (one question each, before filtering).")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    no_answerability_check: Annotated[bool, typer.Option("--no-answerability-check",
                                                         help="Keep questions the judge finds unanswerable.")] = False,
    base_url: BaseUrlOption = None, model: ModelOption = None, local_model: LocalModelOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Ask the LLM to write questions (+ reference answers) for sampled passages; filter; write the layout."""
    from evalsets import EvalSetError
    from evalsets.synthesize import synthesize
    from pipelines.llm import LLMUnavailable

    try:
        with llm_client(project_dir, base_url, model, local_model) as client:
            with console.status(f"writing questions with {client.model}..."):
                report = synthesize(corpus, out, client, n, seed, not no_answerability_check)
    except (EvalSetError, LLMUnavailable) as err:
        fail(str(err))
    console.print(f"{report.kept} questions kept of {report.sampled} passages ({report.invalid} invalid replies, "
                  f"{report.unanswerable} unanswerable, {report.duplicates} duplicates) -> {out}")
