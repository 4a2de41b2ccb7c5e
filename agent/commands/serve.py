"""`evolve serve` (the champion behind an HTTP API) and `evolve feedback ...` (import, failure sets)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from agent.app import ProjectDir, app, cache_path, console, fail

feedback_app = typer.Typer(help="Feedback from users: import exports, turn bad ratings into a failure set.",
                           no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
FAILURES_SQL = """SELECT f.feedback_id, f.ts, f.rating, f.correct_doc_id, f.comment,
       coalesce(f.query, r.query) AS query, r.results, coalesce(f.config_version, r.config_version) AS config_version
FROM feedback f LEFT JOIN requests r ON f.request_id = r.request_id
WHERE f.rating = 'bad' ORDER BY f.ts"""


def server_file(project_dir: Path) -> Path:
    return project_dir / ".evolve" / "server.json"


def corpus_file(path: Path) -> Path:
    return path / "corpus.jsonl" if path.is_dir() else path


def running_server(project_dir: Path) -> dict[str, Any] | None:
    """The server of this project if its server.json exists and /health answers."""
    import httpx

    path = server_file(project_dir)
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    try:
        httpx.get(info["url"] + "/health", timeout=3).raise_for_status()
    except httpx.HTTPError:
        return None
    return info


def champion(project_dir: Path, config: Optional[Path], tracking_uri: Optional[str]) -> tuple[Any, str]:
    """(config, version label): --config, else the approved champion, else the packaged default."""
    from guardrails.decisions import PACKAGED_DEFAULT
    from pipelines import load_config

    if config:
        return load_config(config), f"file:{config.name}"
    champion_file = project_dir / "champion.yaml"
    if champion_file.exists():
        from agent.commands.guard import open_project

        version = open_project(project_dir, tracking_uri).registry.alias_version("champion")
        return load_config(champion_file), version or "champion.yaml"
    return load_config(PACKAGED_DEFAULT), "packaged-default"


@app.command("serve")
def serve_command(
    corpus: Annotated[Path, typer.Option(help="Documents to serve: an evaluation-set folder or a corpus.jsonl.")],
    config: Annotated[Optional[Path], typer.Option(help="Serve this config instead of the champion.")] = None,
    host: Annotated[str, typer.Option(help="Bind address; anything but loopback requires --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN", help="API token clients send as "
                                                 "'Authorization: Bearer TOKEN'.")] = None,
    snapshot_every: Annotated[float, typer.Option(help="Seconds between feedback snapshot exports.")] = 5.0,
    tracking_uri: Annotated[Optional[str], typer.Option(envvar="MLFLOW_TRACKING_URI")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Serve the champion pipeline: POST /search, /answer, /feedback; GET /health; OpenAPI at /docs."""
    import uvicorn

    from agent.progress import stage_progress
    from evalsets import EvalSetError
    from evalsets.feedback import FeedbackStore, SnapshotExporter, StoreLocked
    from evalsets.loader import read_corpus
    from pipelines import Components, ConfigError, Retriever
    from pipelines.serving import create_app

    if host not in LOCAL_HOSTS and not token:
        fail(f"binding to {host} exposes the API beyond this machine: give --token (or EVOLVE_API_TOKEN)")
    try:
        pipeline, version = champion(project_dir, config, tracking_uri)
        docs = read_corpus(corpus_file(corpus))
    except (ConfigError, EvalSetError) as err:
        fail(str(err))
    try:
        store = FeedbackStore(project_dir / ".evolve" / "feedback.duckdb")
    except StoreLocked as err:
        fail(str(err))
    console.print(f"serving [bold]{pipeline.name}[/] (version {version}) over {len(docs)} documents")
    with stage_progress(console) as report:
        retriever = Retriever(pipeline, Components(cache_path(project_dir))).build(docs, report)
    retriever.search(["warm-up"], use_query_cache=False)  # load the query model before the first user
    exporter = SnapshotExporter(store, snapshot_every)
    exporter.start()
    url = f"http://{host}:{port}"
    server_file(project_dir).write_text(json.dumps({"url": url, "pid": os.getpid(), "corpus": str(corpus.resolve()),
                                                    "config": pipeline.name, "config_version": version}))
    console.print(f"listening on {url} (OpenAPI: {url}/docs)")
    try:
        uvicorn.run(create_app(retriever, pipeline, version, store, token), host=host, port=port, log_level="warning")
    finally:
        exporter.stop()
        store.export_snapshot()
        store.close()
        server_file(project_dir).unlink(missing_ok=True)


@feedback_app.command("import")
def feedback_import(
    path: Annotated[Path, typer.Argument(help="JSONL: one object per line with rating (good|bad), query or "
                                              "request_id, optional comment, correct_doc_id, config_version.")],
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Import feedback exported from another system (helpdesk...). Every line is validated first."""
    from dataclasses import asdict

    from evalsets import EvalSetError
    from evalsets.failures import read_feedback_file
    from evalsets.feedback import FeedbackStore, StoreLocked

    try:
        events = list(read_feedback_file(path))
    except EvalSetError as err:
        fail(str(err))
    server = running_server(project_dir)
    if server:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=server["url"], headers=headers, timeout=30) as client:
            for event in events:
                client.post("/feedback/import", json=asdict(event)).raise_for_status()
        console.print(f"imported {len(events)} feedback events through the running server {server['url']}")
        return
    try:
        store = FeedbackStore(project_dir / ".evolve" / "feedback.duckdb")
    except StoreLocked as err:
        fail(str(err))
    try:
        for event in events:
            store.record_feedback(event)
        store.export_snapshot()
    finally:
        store.close()
    console.print(f"imported {len(events)} feedback events into {store.path}")


def bad_feedback_rows(project_dir: Path, token: Optional[str]) -> list[dict[str, Any]]:
    """Negative feedback with its query and served results: from the server's fresh snapshot, or the file."""
    from evalsets.feedback import FeedbackStore, read_snapshot

    server = running_server(project_dir)
    if server:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        folder = httpx.post(server["url"] + "/snapshot", headers=headers, timeout=60).json()["snapshot"]
        return read_snapshot(Path(folder), FAILURES_SQL)
    store = FeedbackStore(project_dir / ".evolve" / "feedback.duckdb")
    try:
        return store.rows(FAILURES_SQL)
    finally:
        store.close()


@feedback_app.command("failures")
def feedback_failures(
    out: Annotated[Path, typer.Option(help="Folder for the failure set (standard layout).")],
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus the feedback was about (default: the served one).")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Turn negative feedback into an evaluation set: query + the document the user marked right, deduplicated."""
    from evalsets import EvalSetError
    from evalsets.failures import build_failure_set

    if corpus is None:
        info = server_file(project_dir)
        if not info.exists():
            fail("give --corpus (no running server to take it from)")
        corpus = Path(json.loads(info.read_text())["corpus"])
    rows = bad_feedback_rows(project_dir, token)
    try:
        report = build_failure_set(rows, corpus_file(corpus), out)
    except EvalSetError as err:
        fail(str(err))
    console.print(f"{report.bad_events} bad ratings -> {report.queries} queries in {out} "
                  f"({report.with_correct_doc} with a user-marked document, {report.duplicates_merged} duplicates "
                  f"merged, {len(report.skipped_no_answer)} skipped without a known right document, "
                  f"{len(report.skipped_unknown_doc)} naming unknown documents)")
