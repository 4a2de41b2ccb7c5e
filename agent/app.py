"""The Typer app and what every command shares (console, errors, project paths)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from pipelines import Components, ModelCatalog, PipelineConfig

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
"""Every command that takes it resolves model names in the project's catalog (``ProjectPaths.catalog``: its
trained models, its `models.yaml`), passed to what it builds; the environment of this process is left alone."""


def fail(message: str, code: int = 2) -> None:
    """The message as it is (not wrapped at the terminal's width, not read as markup), then exit ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def at_least(value: float | None, minimum: float, option: str) -> None:
    """A numeric option below its minimum: one line and exit 2 (Typer's own range check draws a box)."""
    if value is not None and value < minimum:
        fail(f"{option} must be at least {minimum:g}, not {value:g}")


_SAFE_NAME = re.compile(r"\w[\w.+-]{0,99}")
SAFE_NAME_RULE = "letters, digits, '.', '_', '+' and '-', starting with a letter or digit, at most 100"


def safe_name(value: str, what: str) -> str:
    """``value`` when it can be used as a file name as it is (no path separator, no '..', not hidden), else a
    one-line error: names of configs and studies become file and folder names under .evolve/."""
    if not _SAFE_NAME.fullmatch(value):
        fail(f"{what} {value!r} cannot be a file name (it names files under .evolve/): use {SAFE_NAME_RULE}")
    return value


def file_stem(*labels: str) -> str:
    """A file name from labels that may hold anything (a config's name, a split): the labels joined by '-', every
    character :func:`safe_name` does not allow (but '@'), and every run of two or more punctuation characters
    ('../'), made one '-'."""
    return re.sub(r"[^\w+@]{2,}|[^\w.+@-]", "-", "-".join(labels)).strip(".-") or "unnamed"


def load_pipeline(path: Path, catalog: ModelCatalog) -> PipelineConfig:
    """The pipeline config at ``path``, every model it names resolvable in ``catalog``; a user mistake (no such
    file, not UTF-8, bad YAML, a bad field, an unknown model) is one line and exit 2."""
    from pipelines import ConfigError, load_config

    try:
        pipeline = load_config(path)
    except ConfigError as err:
        fail(str(err))
    check_models(pipeline, str(path), catalog)
    return pipeline


def check_models(pipeline: PipelineConfig, where: str, catalog: ModelCatalog) -> None:
    """Every embedding model ``pipeline`` names is one evolve can load from ``catalog``, else one line naming
    ``where``."""
    from pipelines.embedders import resolve_model

    embedding_reranker = getattr(pipeline.reranker, "model_kind", None) == "embedding"
    from pipelines import is_trained

    trained = [m for m in pipeline.models() if is_trained(m)]  # verified against their ids too
    for model in filter(None, [pipeline.dense.model if pipeline.dense else None,
                               pipeline.reranker.model if embedding_reranker else None, *trained]):
        try:
            resolve_model(model, catalog)
        except KeyError as err:
            fail(f"{where}: {err.args[0]}")


def project_components(project_dir: Path) -> Components:
    """The parts a command builds pipelines from: the project's embedding cache, its model catalog."""
    from agent.paths import ProjectPaths
    from pipelines import Components

    paths = ProjectPaths.of(project_dir)
    return Components(paths.embedding_cache, paths.catalog)


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> Table:
    table = Table(title=title)
    table.add_column("run")
    names = list(rows[0][1]) if rows else []
    for name in names:
        table.add_column(name, justify="right")
    for label, values in rows:
        table.add_row(label, *(f"{values[n]:.4f}" for n in names))
    return table
