"""The Typer app and what every command shares (console, errors, project paths)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# a tracking server that is down should cost seconds, not MLflow's default minutes of retries
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

app = typer.Typer(help="evolve: keeps a retrieval stack improving by itself, with a human approving every new default.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEMO_EVALSET = PACKAGE_ROOT / "evalsets" / "data" / "claude-docs-qa"
DEMO_CONFIG = PACKAGE_ROOT / "pipelines" / "configs" / "demo.yaml"

ProjectDir = Annotated[Path, typer.Option("--project-dir", envvar="EVOLVE_PROJECT_DIR",
                                          help="Where evolve keeps its state (caches, results, runs).")]


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def cache_path(project_dir: Path) -> Path:
    from pipelines.components import default_cache_path

    return default_cache_path(project_dir)


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> Table:
    table = Table(title=title)
    table.add_column("run")
    names = list(rows[0][1]) if rows else []
    for name in names:
        table.add_column(name, justify="right")
    for label, values in rows:
        table.add_row(label, *(f"{values[n]:.4f}" for n in names))
    return table
