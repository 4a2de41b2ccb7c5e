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
    from pipelines import PipelineConfig

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

def _use_project(project_dir: Path) -> Path:
    """Every command that takes --project-dir: the project's trained models and its model registry file
    (`models.yaml`, served models) are what model names resolve to, in this process and the workers and servers it
    starts. A variable the user set wins; one an earlier command of this process set is replaced."""
    from agent.paths import ProjectPaths
    from pipelines import TRAINED_ROOT_ENV
    from pipelines.remote import REGISTRY_ENV

    for variable in (TRAINED_ROOT_ENV, REGISTRY_ENV):
        if os.environ.pop(f"_EVOLVE_FROM_PROJECT_{variable}", None) == "1":  # an earlier command set it, not the user
            os.environ.pop(variable, None)
    paths = ProjectPaths.of(project_dir)
    for variable, value in ((TRAINED_ROOT_ENV, paths.trained_models),
                            (REGISTRY_ENV, paths.model_registry if paths.model_registry.is_file() else None)):
        marker = f"_EVOLVE_FROM_PROJECT_{variable}"
        if not os.environ.get(variable) and value is not None:
            os.environ[variable] = str(value)
            os.environ[marker] = "1"
    return project_dir


ProjectDir = Annotated[Path, typer.Option("--project-dir", envvar="EVOLVE_PROJECT_DIR", callback=_use_project,
                                          help="Where evolve keeps its state (caches, results, runs).")]


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


def load_pipeline(path: Path) -> PipelineConfig:
    """The pipeline config at ``path``, every model it names resolvable; a user mistake (no such file, not
    UTF-8, bad YAML, a bad field, an unknown model) is one line and exit 2."""
    from pipelines import ConfigError, load_config

    try:
        pipeline = load_config(path)
    except ConfigError as err:
        fail(str(err))
    check_models(pipeline, str(path))
    return pipeline


def check_models(pipeline: PipelineConfig, where: str) -> None:
    """Every embedding model ``pipeline`` names is one evolve can load, else one line naming ``where``."""
    from pipelines.embedders import resolve_model

    embedding_reranker = getattr(pipeline.reranker, "model_kind", None) == "embedding"
    from pipelines import is_trained

    trained = [m for m in pipeline.models() if is_trained(m)]  # verified against their ids too
    for model in filter(None, [pipeline.dense.model if pipeline.dense else None,
                               pipeline.reranker.model if embedding_reranker else None, *trained]):
        try:
            resolve_model(model)
        except KeyError as err:
            fail(f"{where}: {err.args[0]}")


def cache_path(project_dir: Path) -> Path:
    from agent.paths import ProjectPaths

    return ProjectPaths.of(project_dir).embedding_cache


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> Table:
    table = Table(title=title)
    table.add_column("run")
    names = list(rows[0][1]) if rows else []
    for name in names:
        table.add_column(name, justify="right")
    for label, values in rows:
        table.add_row(label, *(f"{values[n]:.4f}" for n in names))
    return table
