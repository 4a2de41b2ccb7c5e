"""`evolve serve`: the audited champion behind an HTTP API, with the feedback store it owns."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from agent.app import (ProjectDir, app, at_least, check_models, console, err_console, fail, load_pipeline,
                       project_components)
from agent.http_guard import ConnectionLimits, fit_to_open_files, uvicorn_settings
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, connect_llm
from agent.project import ActorOption
from agent.server import feedback_db, remove_server_file, server_file, write_server_file

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    from agent.online import CandidateTraffic
    from evalsets import Document, FeedbackStore
    from guardrails import Project, Row
    from pipelines import GenerationConfig, Generator, LiveRetriever, PipelineConfig, ServeLimits

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Stopped(Exception):
    """SIGTERM or SIGINT reached `evolve serve`: unwind through its cleanup."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def champion(project_dir: Path, config: Optional[Path], tracking_uri: Optional[str]) -> tuple[PipelineConfig, str, Project]:
    """(config, version label, project): --config, else the audited champion (checked against the decision
    log; MLflow is not needed), else the packaged default."""
    from agent.project import open_project, say_recovered

    project = open_project(project_dir, tracking_uri)
    if config:
        return load_pipeline(config, project.catalog), f"file:{config.name}", project
    say_recovered(project)
    pipeline, record = project.champion()
    from agent.project import decision_errors
    from guardrails import ensure_trained_models

    with decision_errors():
        for model_id in ensure_trained_models(project, pipeline, record.version):
            console.print(f"restored {model_id} from version {record.version}'s MLflow artifacts")
    check_models(pipeline, f"the champion config {pipeline.name} (version {record.version or 'default'})",
                 project.catalog)
    return pipeline, record.version or "default", project


class MirrorWatch:
    """Compares the MLflow registry with the decision log now and then, off the request path (for /health)."""

    def __init__(self, project: Project, every_s: float = 60.0):
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


class CorpusWatch:
    """Follows a corpus folder `evolve ingest` keeps: on a new version, the served retriever is updated beside the
    one answering (:meth:`Retriever.refreshed`: only new and changed chunks are embedded) and swapped in whole, so
    no request is dropped or sees half of each version. A failed reload keeps the old version and says why."""

    def __init__(self, corpus: Path, live: LiveRetriever, say: Callable[[str], None], every_s: float = 10.0,
                 traffic: CandidateTraffic | None = None):
        import threading

        self.corpus, self.live, self.say, self.every_s = corpus, live, say, every_s
        self.traffic = traffic
        """a candidate taking traffic: brought to each new version too, after the champion (its own failure only
        leaves it out)"""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="corpus-watch")

    def start(self) -> "CorpusWatch":
        self._thread.start()
        return self

    def check(self) -> bool:
        """Reload when the corpus has a new version; True when it swapped one in (the documents and their version
        read together, under the corpus folder's lock)."""
        from evalsets.ingest import corpus_version, read_versioned

        version = corpus_version(self.corpus)
        if version is None or version == self.live.current[2]:
            return False
        started = time.perf_counter()
        docs, version = read_versioned(self.corpus)
        if version is None or version == self.live.current[2]:
            return False
        new = self.live.retriever.refreshed(docs)
        new.search(["warm-up"], use_query_cache=False)
        self.live.swap(new, version)
        counts = new.build_log.counts
        self.say(f"corpus version {version}: {counts['chunks_added']} chunks added, {counts['chunks_removed']} "
                 f"removed, {counts['chunks_kept']} kept; swapped in after {time.perf_counter() - started:.1f} s")
        if self.traffic is not None:
            self.say(self.traffic.refresh(docs))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except Exception as err:  # noqa: BLE001 - the old version keeps serving; the log says why
                self.say(f"corpus reload failed, still serving version {self.live.current[2]}: "
                         f"{type(err).__name__}: {err}")

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


def candidate_traffic(project: Project, mode: str, version: str, share: float, queue_size: int, seed: Optional[int],
                      docs: list[Document], live: LiveRetriever, store: FeedbackStore, project_dir: Path
                      ) -> tuple[CandidateTraffic, Row]:
    """(the CandidateTraffic for registered candidate ``version``, its register row). A version that is not a
    registered candidate is one line (exit 2); a candidate whose models cannot be had here, or whose index cannot be
    built, still starts: /health says why, and every request is the champion's alone (counted)."""
    from agent.online import CandidateTraffic
    from guardrails import DecisionError, ensure_trained_models, traffic_candidate
    from pipelines import Retriever, TrainedModelError
    from pipelines.embedders import resolve_model

    try:
        config, registered = traffic_candidate(project, version)
    except DecisionError as err:
        fail(str(err))
    retriever, unavailable = None, None
    try:
        ensure_trained_models(project, config, version)
        for model in filter(None, [config.dense.model if config.dense else None]):
            resolve_model(model, project.catalog)
        retriever = Retriever(config, project_components(project_dir)).build(docs)
        retriever.search(["warm-up"], use_query_cache=False)
    except (DecisionError, TrainedModelError, KeyError, OSError, ValueError, RuntimeError) as err:
        unavailable = f"{type(err).__name__}: {err}"[:300]
        err_console.print(f"candidate version {version} is unavailable ({unavailable}); the champion serves alone",
                          highlight=False, soft_wrap=True)
    traffic = CandidateTraffic(mode, version, config.name, retriever, store, lambda: live.current[1], share=share,
                               queue_size=queue_size, seed=seed, unavailable=unavailable)
    return traffic, registered


def serve_limits(**given: Optional[int]) -> ServeLimits:
    """The server's ServeLimits: its defaults, but for the options given (each at least 1)."""
    from evalsets import MAX_TEXT
    from pipelines import ServeLimits

    for name, value in given.items():
        at_least(value, 1, "--" + name.replace("_", "-"))
    if (given.get("max_query_chars") or 0) > MAX_TEXT:
        fail(f"--max-query-chars can be at most {MAX_TEXT} (the feedback model's query limit)")
    return ServeLimits(**{name: value for name, value in given.items() if value is not None})


def answerer(stack: ExitStack, project_dir: Path, generation: GenerationConfig, base_url: Optional[str], model: Optional[str],
             local_model: Optional[str], no_llm: bool) -> tuple[Generator | None, str]:
    """(the Generator behind /answer, "") or (None, why answers are off): without an LLM, serve still serves
    /search. A local llama.cpp server started here is stopped by ``stack``."""
    from pipelines import Generator
    from pipelines.llm import LLMUnavailable, ModelUnavailable

    if no_llm:
        return None, "this server was started with --no-llm (search only)"
    try:
        client = connect_llm(stack, project_dir, base_url, model, local_model, max_retries=1,
                             say=lambda line: console.print(line, highlight=False))
        client.check()
    except (LLMUnavailable, ModelUnavailable, RuntimeError) as err:
        return None, f"the LLM is unavailable: {err}"
    return Generator(client, generation), ""


def say_answers(generator: Generator | None, reason: str) -> None:
    """One line on the terminal: which LLM writes the answers, or why /answer is off (a 503 until restarted)."""
    if generator is None:
        err_console.print(f"answers are off: {reason}; /search is served, /answer answers 503", highlight=False,
                          soft_wrap=True)
    else:
        console.print(f"answers: {generator.client.model} at {generator.client.settings.base_url}", highlight=False)


def start_traffic(project: Project, traffic: CandidateTraffic, registered: Row, actor: Optional[str], host: str, port: int,
                  champion_version: str) -> None:
    """The decision log's ``traffic-start`` row (before the first request); a log that cannot be written stops serve."""
    from guardrails import TRAFFIC_START, LogError, log_traffic

    try:
        log_traffic(project, TRAFFIC_START, traffic.mode, registered, actor,
                    {"share": traffic.share if traffic.mode == "interleave" else None, "pid": os.getpid(),
                     "host": socket.gethostname(), "listen": f"{host}:{port}", "champion": champion_version,
                     "candidate_available": traffic.retriever is not None})
    except LogError as err:
        fail(f"cannot record the start of {traffic.mode} of version {traffic.version} in the decision log: {err}")
    console.print(f"{traffic.mode} of candidate version {traffic.version} ({traffic.config_name})"
                  + (f" on {traffic.share:.0%} of requests" if traffic.mode == "interleave" else "")
                  + " (recorded in the decision log)", highlight=False)


def stop_traffic(project: Project, traffic: CandidateTraffic, registered: Row, actor: Optional[str]) -> None:
    """The shadow worker stopped, then the ``traffic-stop`` row with the counts (a failure to log it is said)."""
    from guardrails import TRAFFIC_STOP, LogError, log_traffic

    traffic.stop()
    try:
        log_traffic(project, TRAFFIC_STOP, traffic.mode, registered, actor, {"counts": traffic.counts.as_dict()})
    except LogError as err:
        err_console.print(f"could not record the stop of {traffic.mode} of version {traffic.version} in the "
                          f"decision log: {err}", highlight=False, soft_wrap=True)


def close_store(store: FeedbackStore) -> None:
    """The last snapshot export, then the store closed: a failed export only delays the snapshot."""
    try:
        store.export_snapshot()
    except Exception as err:  # noqa: BLE001 - the store is committed; only the snapshot lags
        err_console.print(f"the last feedback snapshot export failed ({type(err).__name__}: {err}); the "
                          f"events are in {store.path}", highlight=False, soft_wrap=True)
    store.close()


@app.command("serve")
def serve_command(
    corpus: Annotated[Path, typer.Option(help="Documents to serve: an evaluation-set folder or a corpus.jsonl.")],
    config: Annotated[Optional[Path], typer.Option(help="Serve this config instead of the champion.")] = None,
    host: Annotated[str, typer.Option(help="Bind address; anything but loopback requires --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (1-65535; 0: any free port).")] = 8000,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN", help="API token clients send as "
                                                 "'Authorization: Bearer TOKEN'. With a token, everything but a "
                                                 "bare GET /health (status and nonce) needs it, /docs too.")] = None,
    base_url: BaseUrlOption = None, model: ModelOption = None, local_model: LocalModelOption = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Serve search only: no LLM is started or asked, and "
                                                          "/answer answers 503.")] = False,
    answer_timeout: Annotated[Optional[float], typer.Option(help="Seconds one answer's LLM call may take, whole "
                                                                 "however the LLM trickles it (default 120); then "
                                                                 "504.")] = None,
    answer_wait: Annotated[Optional[float], typer.Option(help="Seconds an /answer waits for a free LLM slot "
                                                              "(default 5); then 503 with Retry-After.")] = None,
    answer_slots: Annotated[Optional[int], typer.Option(help="Answers asked of the LLM at once (default: the LLM "
                                                             "client's concurrency, 4). /health and /search never "
                                                             "wait behind them.")] = None,
    head_timeout: Annotated[float, typer.Option(help="Seconds a connection has to send a whole request head, from "
                                                     "its opening or its last response; then it is closed.")]
    = ConnectionLimits.head_timeout_s,
    limit_concurrency: Annotated[int, typer.Option(help="Connections open at once; one more gets 503 as it opens. "
                                                        "serve raises its open-file limit to fit (LimitNOFILE), or "
                                                        "serves fewer and says so.")]
    = ConnectionLimits.limit_concurrency,
    backlog: Annotated[int, typer.Option(help="Connections the kernel queues before serve accepts them.")]
    = ConnectionLimits.backlog,
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
    reload_every: Annotated[float, typer.Option(help="Seconds between checks for a new corpus version (a folder "
                                                     "`evolve ingest` keeps); the new one is swapped in without "
                                                     "dropping requests.")] = 10.0,
    shadow: Annotated[Optional[str], typer.Option(help="Registered candidate VERSION run on every query after the "
                                                       "champion's response is sent (both rankings stored; see "
                                                       "`evolve feedback compare`).")] = None,
    interleave: Annotated[Optional[str], typer.Option(help="Registered candidate VERSION interleaved (team draft) with "
                                                           "the champion on --share of the requests.")] = None,
    share: Annotated[float, typer.Option(help="With --interleave: the share of requests answered from the "
                                              "interleaving (0-1).")] = 0.5,
    shadow_queue: Annotated[int, typer.Option(help="With --shadow: queries waiting for the candidate at most; more "
                                                   "are dropped (counted in /health).")] = 256,
    traffic_seed: Annotated[Optional[int], typer.Option(help="Seed of the interleaving's coin (default: random).")]
    = None,
    actor: ActorOption = None,
    tracking_uri: Annotated[Optional[str], typer.Option(envvar="MLFLOW_TRACKING_URI")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Serve the champion pipeline: POST /search, /answer, /feedback; GET /health; OpenAPI at /docs.

    /answer asks the LLM at --llm-base-url, else a local llama.cpp server (stopped with serve); --no-llm: search only."""
    import uvicorn

    from agent.progress import stage_progress
    from evalsets import EvalSetError
    from evalsets import FeedbackStore, SnapshotExporter, StoreLocked
    from evalsets.ingest import read_versioned
    from pipelines import ConfigError, LiveRetriever, Retriever
    from pipelines import create_app

    if host not in LOCAL_HOSTS and not token:
        fail(f"binding to {host} exposes the API beyond this machine: give --token (or EVOLVE_API_TOKEN)")
    if not 0 <= port <= 65535:
        fail(f"--port must be between 1 and 65535 (0: any free port), not {port}")
    at_least(snapshot_every, MIN_SNAPSHOT_EVERY, "--snapshot-every")
    at_least(answer_timeout, 1, "--answer-timeout")
    at_least(answer_wait, 0.1, "--answer-wait")
    at_least(head_timeout, 0.5, "--head-timeout")
    at_least(limit_concurrency, 1, "--limit-concurrency")
    at_least(backlog, 1, "--backlog")
    at_least(shadow_queue, 1, "--shadow-queue")
    if shadow and interleave:
        fail("give --shadow or --interleave, not both (one candidate takes traffic at a time)")
    if not 0 < share <= 1:
        fail(f"--share must be above 0 and at most 1, not {share}")
    limits = serve_limits(max_body_bytes=max_body_bytes, max_import_bytes=max_import_bytes,
                          max_import_batch=max_import_batch, max_query_chars=max_query_chars, answer_slots=answer_slots)
    limits = replace(limits, **{name: value for name, value in (("answer_timeout_s", answer_timeout),
                                                                ("answer_wait_s", answer_wait)) if value is not None})
    connections = fit_to_open_files(ConnectionLimits(head_timeout_s=head_timeout, limit_concurrency=limit_concurrency,
                                                     backlog=backlog, keep_alive_s=min(5.0, head_timeout)),
                                    lambda line: err_console.print(line, highlight=False, soft_wrap=True))
    from guardrails import DecisionError, LogError

    try:
        pipeline, version, project = champion(project_dir, config, tracking_uri)
        docs, corpus_version = read_versioned(corpus)  # together, under the corpus folder's lock
    except (ConfigError, EvalSetError, DecisionError, LogError) as err:
        fail(str(err))
    # from here on SIGTERM/SIGINT unwind through the stack (uvicorn re-raises the signal under these handlers
    # too), so a local LLM server, the store and server.json are cleaned up instead of the default death
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _raise_stopped)
    stopped_by = None
    with ExitStack() as stack:
        try:
            listener = bind(host, port)
            stack.callback(listener.close)
            port = listener.getsockname()[1]
            mirror = MirrorWatch(project).start()
            stack.callback(mirror.stop)
            try:
                store = FeedbackStore(feedback_db(project_dir))
            except StoreLocked as err:
                fail(str(err))
            stack.callback(close_store, store)
            generator, answers_off = answerer(stack, project_dir, pipeline.generation, base_url, model, local_model,
                                              no_llm)
            say_answers(generator, answers_off)
            console.print(f"serving [bold]{pipeline.name}[/] (version {version}) over {len(docs)} documents")
            try:
                with stage_progress(console) as report:
                    retriever = Retriever(pipeline, project_components(project_dir)).build(docs, report)
                retriever.search(["warm-up"], use_query_cache=False)  # load the query model before the first user
            except OSError as err:  # a model that is not on this machine (offline), a cache that cannot be written
                fail(f"cannot build {pipeline.name}: {err}")
            live = LiveRetriever(retriever, corpus_version)
            traffic = None
            if shadow or interleave:
                mode, candidate_version = ("shadow", shadow) if shadow else ("interleave", interleave)
                traffic, registered = candidate_traffic(project, mode, candidate_version, share, shadow_queue,
                                                        traffic_seed, docs, live, store, project_dir)
                stack.callback(stop_traffic, project, traffic, registered, actor)
                start_traffic(project, traffic, registered, actor, host, port, version)
            if live.current[2] is not None:
                watch = CorpusWatch(corpus, live, lambda line: console.print(escape(line), highlight=False),
                                    reload_every, traffic).start()
                stack.callback(watch.stop)
                console.print(f"corpus version {live.current[2]}: a new version is served when `evolve ingest` "
                              f"writes one (checked every {reload_every:g} s)")
            exporter = SnapshotExporter(store, snapshot_every)
            exporter.start()
            stack.callback(exporter.stop)
            url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
            nonce = secrets.token_hex(16)
            stack.callback(remove_server_file, server_file(project_dir), nonce)

            def started() -> None:
                """Once uvicorn listens: only now is the server there for clients to find (and to say so)."""
                write_server_file(server_file(project_dir), {
                    "url": url, "pid": os.getpid(), "host": socket.gethostname(), "nonce": nonce,
                    "corpus": str(corpus.resolve()), "config": pipeline.name, "config_version": version})
                console.print(f"listening on {url} (OpenAPI: {url}/docs)")

            class Server(uvicorn.Server):
                async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                    await super().startup(sockets)
                    if self.started:
                        started()

            api = create_app(live, pipeline, version, store, token, answerer=generator,
                             registry_mirror=lambda: mirror.state, nonce=nonce, limits=limits,
                             answers_off=answers_off, traffic=traffic)
            Server(uvicorn.Config(api, **uvicorn_settings(connections))).run(sockets=[listener])
        except Stopped as signalled:
            stopped_by = str(signalled)
    if stopped_by:
        console.print(f"stopped ({stopped_by})")
