"""`evolve serve` (the champion behind an HTTP API) and `evolve feedback ...` (import, failure sets)."""

from __future__ import annotations

import hmac
import json
import os
import secrets
import signal
import socket
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from agent.app import ProjectDir, app, at_least, cache_path, check_models, console, err_console, fail, load_pipeline
from agent.paths import ProjectPaths

feedback_app = typer.Typer(help="Feedback from users: import exports, turn bad ratings into a failure set.",
                           no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
FAILURES_SQL = """SELECT f.feedback_id, f.ts, f.rating, f.correct_doc_id, f.comment, f.source, f.request_id,
       coalesce(f.query, r.query) AS query, r.results, coalesce(f.config_version, r.config_version) AS config_version
FROM feedback f LEFT JOIN requests r ON f.request_id = r.request_id
WHERE f.rating = 'bad' ORDER BY f.ts"""


def server_file(project_dir: Path) -> Path:
    return ProjectPaths.of(project_dir).server_info


def feedback_db(project_dir: Path) -> Path:
    return ProjectPaths.of(project_dir).feedback_db


def corpus_file(path: Path) -> Path:
    return path / "corpus.jsonl" if path.is_dir() else path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(project_dir: Path) -> dict[str, Any] | None:
    """The server of this project: its server.json names a live process, and the server at its URL echoes
    the file's per-start nonce on /health (asked with no token: nothing secret is sent to a server before
    it has proved it is the one that wrote the file). Anything else is a stale file, said in one line."""
    import httpx

    path = server_file(project_dir)
    if not path.exists():
        return None

    def stale(why: str) -> None:
        err_console.print(f"ignoring stale {path}: {why}", highlight=False, soft_wrap=True)

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        url, nonce, pid = str(info["url"]), str(info["nonce"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return stale("unreadable, or written by an evolve without a server nonce")
    if info.get("host") == socket.gethostname() and not _pid_alive(pid):
        return stale(f"its server process {pid} is gone")
    try:
        with httpx.Client(trust_env=False, timeout=3) as client:
            health = client.get(url + "/health")
        health.raise_for_status()
        echoed = health.json().get("nonce")
    except (httpx.HTTPError, ValueError, AttributeError) as err:
        return stale(f"{url}/health does not answer as an evolve server ({type(err).__name__})")
    if not isinstance(echoed, str) or not hmac.compare_digest(echoed, nonce):
        return stale(f"the server at {url} is not the one that wrote it (its /health does not echo the nonce)")
    return info


def api_client(server: dict[str, Any], token: Optional[str], timeout: float) -> Any:
    """An HTTP client for a server that running_server() has verified; the token goes only there."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server["url"], headers=headers, timeout=timeout, trust_env=False)


def call_server(server: dict[str, Any], token: Optional[str], method: str, path: str, timeout: float,
                **request: Any) -> Any:
    """One request to a server running_server() has verified. A server that does not answer, or answers 401
    (no token given, or not its token), is one line; other statuses are the caller's to read."""
    import httpx

    try:
        with api_client(server, token, timeout) as client:
            response = client.request(method, path, **request)
    except httpx.HTTPError as err:
        fail(f"the server at {server['url']} did not answer {method} {path} ({type(err).__name__}: {err})")
    if response.status_code == 401:
        fail(f"the server at {server['url']} answered 401: "
             + ("it has an API token: pass --token or set EVOLVE_API_TOKEN" if not token else
                "it does not take the token given (--token / EVOLVE_API_TOKEN)"))
    return response


def response_detail(response: Any) -> Any:
    """The ``detail`` of a FastAPI error reply, else the start of its text."""
    if response.headers.get("content-type") == "application/json":
        try:
            return response.json().get("detail")
        except (ValueError, AttributeError):
            pass
    return response.text[:300]


def write_server_file(path: Path, info: dict[str, Any]) -> None:
    """Readable by this user only (it carries the nonce), swapped in whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
        json.dump(info, out)
    os.replace(tmp, path)


def remove_server_file(path: Path, nonce: str) -> None:
    """Remove server.json if it is still this server's (a newer server may have written its own)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("nonce") == nonce:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


class Stopped(Exception):
    """SIGTERM or SIGINT reached `evolve serve`: unwind through its cleanup."""


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped(signal.Signals(signum).name)


def champion(project_dir: Path, config: Optional[Path], tracking_uri: Optional[str]) -> tuple[Any, str, Any]:
    """(config, version label, project): --config, else the audited champion (checked against the decision
    log; MLflow is not needed), else the packaged default."""
    from agent.commands.guard import open_project, say_recovered

    project = open_project(project_dir, tracking_uri)
    if config:
        return load_pipeline(config), f"file:{config.name}", project
    say_recovered(project)
    pipeline, record = project.champion()
    check_models(pipeline, f"the champion config {pipeline.name} (version {record.version or 'default'})")
    return pipeline, record.version or "default", project


class MirrorWatch:
    """Compares the MLflow registry with the decision log now and then, off the request path (for /health)."""

    def __init__(self, project: Any, every_s: float = 60.0):
        import threading

        self.project, self.every_s = project, every_s
        self.state = "not checked yet"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="registry-mirror")

    def start(self) -> "MirrorWatch":
        self._thread.start()
        return self

    def _run(self) -> None:
        from guardrails import mirror_differences

        while True:
            try:
                problems = mirror_differences(self.project, self.project.log.rows())
                self.state = "; ".join(problems) if problems else "in sync with the decision log"
            except Exception as err:  # noqa: BLE001 - a watcher must not die: its state says what went wrong
                self.state = f"not checked: {type(err).__name__}: {err}"
            if self._stop.wait(self.every_s):
                return

    def stop(self) -> None:
        self._stop.set()


MIN_SNAPSHOT_EVERY = 0.5
"""Seconds: shorter snapshot intervals only spend a core on exports."""


def bind(host: str, port: int) -> socket.socket:
    """The API's socket, bound before the index is built: a port in use or an address that is not this
    machine's is one line at once, not a traceback after minutes of building."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        if sock is not None:
            sock.close()
        fail(f"cannot listen on {host}:{port}: {err.strerror or err}")
    return sock


def serve_limits(**given: Optional[int]) -> Any:
    """The server's ServeLimits: its defaults, but for the options given (each at least 1)."""
    from evalsets.feedback import MAX_TEXT
    from pipelines.serving import ServeLimits

    for name, value in given.items():
        at_least(value, 1, "--" + name.replace("_", "-"))
    if (given.get("max_query_chars") or 0) > MAX_TEXT:
        fail(f"--max-query-chars can be at most {MAX_TEXT} (the feedback model's query limit)")
    return ServeLimits(**{name: value for name, value in given.items() if value is not None})


@app.command("serve")
def serve_command(
    corpus: Annotated[Path, typer.Option(help="Documents to serve: an evaluation-set folder or a corpus.jsonl.")],
    config: Annotated[Optional[Path], typer.Option(help="Serve this config instead of the champion.")] = None,
    host: Annotated[str, typer.Option(help="Bind address; anything but loopback requires --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (1-65535; 0: any free port).")] = 8000,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN", help="API token clients send as "
                                                 "'Authorization: Bearer TOKEN'. With a token, everything but a "
                                                 "bare GET /health (status and nonce) needs it, /docs too.")] = None,
    snapshot_every: Annotated[float, typer.Option(help=f"Seconds between feedback snapshot exports (at least "
                                                       f"{MIN_SNAPSHOT_EVERY:g}; each writes the new rows).")] = 5.0,
    max_body_bytes: Annotated[Optional[int], typer.Option(help="Largest body of POST /search, /answer, /feedback "
                                                               "(default 262144); larger is 413, unread.")] = None,
    max_import_bytes: Annotated[Optional[int], typer.Option(help="Largest body of POST /feedback/import, a whole "
                                                                 "export file (default 16777216).")] = None,
    max_import_batch: Annotated[Optional[int], typer.Option(help="Most events one POST /feedback/import may carry "
                                                                 "(default 10000; `evolve feedback import` sends a "
                                                                 "whole file at once).")] = None,
    max_query_chars: Annotated[Optional[int], typer.Option(help="Longest query /search and /answer take (default "
                                                                "and most 4000, the feedback model's limit).")] = None,
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
    if not 0 <= port <= 65535:
        fail(f"--port must be between 1 and 65535 (0: any free port), not {port}")
    at_least(snapshot_every, MIN_SNAPSHOT_EVERY, "--snapshot-every")
    limits = serve_limits(max_body_bytes=max_body_bytes, max_import_bytes=max_import_bytes,
                          max_import_batch=max_import_batch, max_query_chars=max_query_chars)
    from guardrails import DecisionError, LogError

    try:
        pipeline, version, project = champion(project_dir, config, tracking_uri)
        docs = read_corpus(corpus_file(corpus))
    except (ConfigError, EvalSetError, DecisionError, LogError) as err:
        fail(str(err))
    listener = bind(host, port)
    port = listener.getsockname()[1]
    mirror = MirrorWatch(project).start()
    try:
        store = FeedbackStore(feedback_db(project_dir))
    except StoreLocked as err:
        fail(str(err))
    console.print(f"serving [bold]{pipeline.name}[/] (version {version}) over {len(docs)} documents")
    try:
        with stage_progress(console) as report:
            retriever = Retriever(pipeline, Components(cache_path(project_dir))).build(docs, report)
        retriever.search(["warm-up"], use_query_cache=False)  # load the query model before the first user
    except OSError as err:  # a model that is not on this machine (offline), a cache that cannot be written
        fail(f"cannot build {pipeline.name}: {err}")
    exporter = SnapshotExporter(store, snapshot_every)
    exporter.start()
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    nonce = secrets.token_hex(16)

    def started() -> None:
        """Once uvicorn listens: only now is the server there for clients to find (and to say so)."""
        write_server_file(server_file(project_dir), {
            "url": url, "pid": os.getpid(), "host": socket.gethostname(), "nonce": nonce,
            "corpus": str(corpus.resolve()), "config": pipeline.name, "config_version": version})
        console.print(f"listening on {url} (OpenAPI: {url}/docs)")

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                started()

    # uvicorn handles SIGTERM/SIGINT itself, then re-raises the signal under the handlers it found: these turn
    # it into an exception, so the cleanup below (server.json first) runs instead of the default death
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _raise_stopped)
    stopped_by = None
    try:
        api = create_app(retriever, pipeline, version, store, token, registry_mirror=lambda: mirror.state,
                         nonce=nonce, limits=limits)
        Server(uvicorn.Config(api, log_level="warning")).run(sockets=[listener])
    except Stopped as signalled:
        stopped_by = str(signalled)
    finally:
        remove_server_file(server_file(project_dir), nonce)
        listener.close()
        mirror.stop()
        exporter.stop()
        try:
            store.export_snapshot()
        except Exception as err:  # noqa: BLE001 - the store is committed; only the snapshot lags
            err_console.print(f"the last feedback snapshot export failed ({type(err).__name__}: {err}); the "
                              f"events are in {store.path}", highlight=False, soft_wrap=True)
        store.close()
    if stopped_by:
        console.print(f"stopped ({stopped_by})")


@feedback_app.command("import")
def feedback_import(
    path: Annotated[Path, typer.Argument(help="JSONL: one object per line with rating (good|bad), query or "
                                              "request_id, optional comment, correct_doc_id, config_version, "
                                              "event_id (default: sha256 of the line's content).")],
    corpus: Annotated[Optional[Path], typer.Option(help="Without a running server: check correct_doc_id against "
                                                        "this corpus (the server checks against its own).")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Import feedback exported from another system (helpdesk...): the whole file or nothing, and only once.

    Every line is validated first; request ids must be requests this project served.

    Events already stored (same event_id) are counted, not stored again.
    """
    from evalsets import EvalSetError
    from evalsets.failures import bad_lines, read_feedback_file
    from evalsets.feedback import FeedbackStore, StoreLocked
    from evalsets.loader import read_corpus

    try:
        lines = read_feedback_file(path)
    except EvalSetError as err:
        fail(str(err))
    numbers, events = [n for n, _ in lines], [e for _, e in lines]
    server = running_server(project_dir)
    if server:
        response = call_server(server, token, "POST", "/feedback/import", timeout=300,
                               json=[e.model_dump(exclude_none=True) for e in events])
        detail = response_detail(response)
        if response.status_code == 422 and isinstance(detail, dict) and "errors" in detail:
            fail(str(bad_lines(path, [(numbers[e["index"]], e["error"]) for e in detail["errors"]],
                               "refused by the server")))
        if response.status_code != 200:
            fail(f"{path.name}: the server refused the import ({response.status_code}): {detail}")
        result, where = response.json(), f"the running server {server['url']}"
        checked = "request ids against its store, correct_doc_id against its corpus"
    else:
        doc_ids = None
        if corpus is not None:
            try:
                doc_ids = {d.doc_id for d in read_corpus(corpus_file(corpus))}
            except EvalSetError as err:
                fail(str(err))
        try:
            store = FeedbackStore(feedback_db(project_dir))
        except StoreLocked as err:
            fail(str(err))
        try:
            vouched, refused = store.vouch_all(events, doc_ids)
            if refused:
                fail(str(bad_lines(path, [(numbers[index], error) for index, error in refused], "refused")))
            new = store.record_feedback(vouched, source="import")
            store.export_snapshot()
        finally:
            store.close()
        result = {"received": len(new), "new": sum(new), "already_present": len(new) - sum(new)}
        where = str(store.path)
        checked = "request ids against this store, " + (f"correct_doc_id against {corpus}" if corpus else
                                                        "correct_doc_id not checked (give --corpus)")
    console.print(f"imported {path}: {result['received']} feedback events, {result['new']} new, "
                  f"{result['already_present']} already present, into {where} (checked {checked})",
                  highlight=False, soft_wrap=True)


def bad_feedback_rows(project_dir: Path, server: dict[str, Any] | None, token: Optional[str]) -> list[dict[str, Any]]:
    """Negative feedback with its query and served results: from the server's fresh snapshot, or the file.

    The snapshot is read where this project keeps it; the path in the server's reply is not used."""
    from evalsets.feedback import FeedbackStore, StoreLocked, read_snapshot, snapshot_folder

    if server:
        response = call_server(server, token, "POST", "/snapshot", timeout=60)
        if response.status_code != 200:
            fail(f"the server at {server['url']} could not export its feedback snapshot ({response.status_code}): "
                 f"{response_detail(response)}")
        return read_snapshot(snapshot_folder(feedback_db(project_dir)), FAILURES_SQL)
    try:
        store = FeedbackStore(feedback_db(project_dir))
    except StoreLocked as err:
        fail(str(err))
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

    server = running_server(project_dir)
    if corpus is None:
        if not server:
            fail("give --corpus (no running server to take it from)")
        corpus = Path(server["corpus"])
    rows = bad_feedback_rows(project_dir, server, token)
    try:
        report = build_failure_set(rows, corpus_file(corpus), out)
    except EvalSetError as err:
        fail(str(err))
    console.print(f"{report.bad_events} bad ratings -> {report.queries} queries in {out} "
                  f"({report.with_correct_doc} with a user-marked document, {report.duplicates_merged} duplicates "
                  f"merged, {len(report.skipped_no_answer)} skipped without a known right document, "
                  f"{len(report.skipped_unknown_doc)} naming unknown documents)")


def gating_failure_set(path: Optional[Path], rules: Any) -> Any:
    """The failure set's queries that may gate promotion under the policy's ``failure_set_sources`` (None
    without a set, or when none may); says in one line how many gate and how many the policy left out."""
    if path is None:
        return None
    from evalsets import load_evalset
    from evalsets.failures import gating_subset

    full = load_evalset(path)
    gating = gating_subset(full, rules.failure_set_sources)
    console.print(f"failure set {path}: {len(gating.queries)} of {len(full.queries)} queries gate promotion, "
                  f"{len(full.queries) - len(gating.queries)} left out by the policy "
                  f"(failure_set_sources: {', '.join(rules.failure_set_sources) or 'none'})",
                  highlight=False, soft_wrap=True)
    return gating if gating.queries else None
