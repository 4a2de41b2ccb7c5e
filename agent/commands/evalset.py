"""`evolve evalset synthesize`: an evaluation set written by the LLM from raw documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.app import ProjectDir, app, console, fail
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, llm_client

evalset_app = typer.Typer(help="Evaluation sets: synthesize one from raw documents.", no_args_is_help=True)
app.add_typer(evalset_app, name="evalset")


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
    from evalsets import synthesize
    from pipelines.llm import LLMUnavailable

    try:
        with llm_client(project_dir, base_url, model, local_model) as client:
            with console.status(f"writing questions with {client.model}..."):
                report = synthesize(corpus, out, client, n, seed, not no_answerability_check)
    except (EvalSetError, LLMUnavailable) as err:
        fail(str(err))
    console.print(f"{report.kept} questions kept of {report.sampled} passages ({report.invalid} invalid replies, "
                  f"{report.unanswerable} unanswerable, {report.duplicates} duplicates) -> {out}")
