"""`evolve llm check`: does the LLM endpoint answer, with which model, how fast."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from agent.app import ProjectDir, app, console, fail
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, llm_client

llm_app = typer.Typer(help="The LLM endpoint (vLLM in production, a local llama.cpp server otherwise).",
                      no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("check")
def llm_check(base_url: BaseUrlOption = None, model: ModelOption = None, local_model: LocalModelOption = None,
              project_dir: ProjectDir = Path(".")) -> None:
    """Does the configured endpoint answer, with which model, how fast? (Starts the local server if none is set.)"""
    from pipelines.llm import LLMUnavailable
    from pipelines.llm import ModelUnavailable

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
