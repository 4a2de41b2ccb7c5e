"""The search API over the champion pipeline: /search, /answer, /feedback, /health (FastAPI).

Every request and every rating is committed to the feedback store before the response goes out,
so an acknowledged event survives a SIGKILL of the server.

In front of FastAPI, :class:`RequestGuard` (plain ASGI) checks the token from the headers before any
body byte is read, reads a body only up to its route's limit, and refuses a body that is not valid
Unicode before FastAPI decodes it. Validation errors say what is wrong in a line, never echoing the input.

/answer asks the generator (an :class:`Answerer`) about the /search hits; without one it is a 503 that says
why answers are off, and an LLM that fails a request is a 502/503 that says so, the request still recorded.
Answers never take the server's request threads (:class:`AnswerSlots`): a few at a time in threads of their own,
a bounded wait for one of those (then 503 with Retry-After) and a deadline on the whole LLM call (then 504), so
/health and /search answer at once however many /answer requests wait or however slowly the LLM replies.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from evalsets import MAX_TEXT, FeedbackEvent, FeedbackRefused, FeedbackStore, UnknownRequest
from pipelines.config import PipelineConfig
from pipelines.generator import Answer
from pipelines.llm import LLMClient, LLMError, LLMUnavailable
from pipelines.retriever import Retriever

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

IMPORT_PATH = "/feedback/import"
OPEN_PATH = "/health"
"""The one path that answers without the token, and then only with its status and the start's nonce."""
AUTHENTICATED = "evolve.authenticated"
"""Key of the ASGI scope where :class:`RequestGuard` leaves whether the request carried the token."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MAX_ERRORS_SHOWN = 5
NO_LLM = "no LLM is configured for this server (see `evolve serve --help`)"
log = logging.getLogger("evolve.serve")


class Answerer(Protocol):
    """What /answer needs (``pipelines.Generator`` is one): an answer from the hits, and the client it asks,
    whose model and endpoint /health names. ``answer`` is called from several request threads at once."""

    client: LLMClient

    def answer(self, query: str, chunks: list[dict[str, Any]], timeout: float | None = None) -> Answer: ...


class Traffic(Protocol):
    """A candidate that takes part in serving beside the champion (``agent.online.CandidateTraffic`` is the one).
    Both hooks are called from several request threads at once and must never raise for the candidate's sake:
    a candidate that fails leaves the champion's hits as they were."""

    def arrange(self, query: str, k: int, hits: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
        """The hits to serve for ``query`` (the champion's ``hits``, or an interleaving with the candidate's, each a
        :class:`Hit` as a dict) and the request's part to hand to :meth:`served`."""
        ...

    def served(self, request_id: str, part: Any, citations: list[str] | None = None) -> None:
        """After the request was recorded: keep the candidate's part (``citations``: the chunk ids an answer cites).
        Must not wait for the candidate (a shadow run is queued, never run here)."""
        ...

    def health(self) -> dict[str, Any]:
        """What /health says about the candidate: mode, version, counts."""
        ...


def best_chunk_per_doc(rows: list[Any], k: int) -> list[dict[str, Any]]:
    """Ranked chunks as hits, one per document (its best chunk), at most ``k``."""
    hits: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        if row.doc_id in seen:
            continue
        seen.add(row.doc_id)
        hits.append({"rank": len(hits) + 1, "doc_id": row.doc_id, "chunk_id": row.chunk_id, "score": row.score,
                     "text": row.text})
        if len(hits) == k:
            break
    return hits


@dataclass(frozen=True)
class ServeLimits:
    """What one request may carry (`evolve serve` options; these defaults are theirs)."""

    max_body_bytes: int = 256 * 1024
    """Body of /search, /answer, /feedback (a 4000-character query of escaped emoji is under 50 KB)."""
    max_import_bytes: int = 16 * 1024 * 1024
    """Body of /feedback/import (a whole feedback export, in one transaction)."""
    max_import_batch: int = 10_000
    """Events one /feedback/import may carry."""
    max_query_chars: int = MAX_TEXT
    """Longest query /search and /answer take (feedback text is capped by the one feedback model, MAX_TEXT)."""
    answer_timeout_s: float = 120.0
    """Seconds one answer's LLM call may take, whole (connect to last byte, however the LLM trickles it), before
    /answer answers 504 (a user is waiting; the LLM client's own timeout is for batch work)."""
    answer_wait_s: float = 5.0
    """Seconds an /answer waits for a free LLM slot before it answers 503 with Retry-After."""
    answer_slots: int | None = None
    """Answers asked of the LLM at once (None: the LLM client's ``max_concurrency``)."""


class SlotsBusy(Exception):
    """Every LLM slot stayed taken for the whole wait; ``retry_after``: seconds until one is likely free."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class PastDeadline(Exception):
    """The LLM call did not end within its deadline (its thread is left to finish; its slot stays taken until then)."""


class AnswerSlots:
    """At most ``slots`` LLM calls at once, each in a daemon thread of its own, never in the server's request threads
    (and never one that keeps the process from exiting).

    :meth:`take` waits at most ``wait_s`` for a slot (on the event loop: a waiting request holds no thread) and
    raises :class:`SlotsBusy` after; :meth:`Slot.run` gives the call ``deadline_s`` and raises :class:`PastDeadline`
    after. A slot is free again only when its call has returned: a call past its deadline keeps its slot (and its
    thread) until the LLM stops, so a misbehaving LLM can take all slots, never more threads than ``slots``.
    Used from the server's event loop only."""

    def __init__(self, slots: int, wait_s: float, deadline_s: float):
        self.slots, self.wait_s, self.deadline_s = slots, wait_s, deadline_s
        self._free = asyncio.Semaphore(slots)
        self._ends: dict[int, float] = {}  # running call -> its deadline (time.monotonic())
        self.busy = 0

    def state(self) -> dict[str, int]:
        now = time.monotonic()
        return {"slots": self.slots, "busy": self.busy, "past_deadline": sum(end < now for end in self._ends.values())}

    def _give_back(self) -> None:
        self.busy -= 1
        self._free.release()

    async def take(self) -> "Slot":
        try:
            await asyncio.wait_for(self._free.acquire(), self.wait_s)
            self.busy += 1
        except TimeoutError:
            now = time.monotonic()
            late = sum(end < now for end in self._ends.values())
            left = [end - now for end in self._ends.values() if end >= now]
            retry = math.ceil(min(left)) if left else math.ceil(self.deadline_s)
            raise SlotsBusy(f"all {self.slots} LLM slots are busy (waited {self.wait_s:g} s; `evolve serve "
                            f"--answer-slots`, `--answer-wait`)" + (f"; {late} of them past their deadline, "
                            f"waiting for the LLM to stop sending" if late else ""), max(1, retry)) from None
        return Slot(self)


class Slot:
    """One taken slot of :class:`AnswerSlots`: given back by :meth:`release`, or when the call :meth:`run` started
    returns (then ``release`` does nothing)."""

    def __init__(self, slots: AnswerSlots):
        self._slots, self._held = slots, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._give_back()

    async def run(self, call: Callable[[], Any]) -> Any:
        slots = self._slots
        future = _in_thread(call)
        self._held = False  # from here the call's end gives the slot back
        slots._ends[id(future)] = time.monotonic() + slots.deadline_s

        def done(_: Any) -> None:
            slots._ends.pop(id(future), None)
            slots._give_back()

        future.add_done_callback(done)
        try:
            return await asyncio.wait_for(asyncio.shield(future), slots.deadline_s)
        except TimeoutError:
            raise PastDeadline(f"the LLM did not finish the answer within the {slots.deadline_s:g} s an answer may "
                               f"take (`evolve serve --answer-timeout`)") from None


def _in_thread(call: Callable[[], Any]) -> asyncio.Future[Any]:
    """``call()`` in a new daemon thread; its result or exception is the returned future's (on this event loop)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)

    def work() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (call(), None)
        except BaseException as err:  # noqa: BLE001 - handed to the awaiting request
            outcome = (None, err)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the server's loop has closed: nobody waits for this any more
            pass

    threading.Thread(target=work, daemon=True, name="answer").start()
    return future


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: "k": true or "k": "5" is not a number
    query: str = Field(min_length=1, max_length=MAX_TEXT)
    k: int = Field(10, ge=1, le=100)


class Hit(BaseModel):
    rank: int
    doc_id: str
    chunk_id: str
    score: float
    text: str


class SearchResponse(BaseModel):
    request_id: str
    config_version: str
    hits: list[Hit]
    latency_ms: float


class AnswerResponse(SearchResponse):
    answer: str
    citations: list[str] = Field(description="chunk ids of the hits the answer cites, in order of first citation")
    language: str = Field(description="language of the query, and of the answer: 'ko' or 'en'")
    model: str = Field(description="the LLM that wrote the answer")


class FeedbackResponse(BaseModel):
    feedback_id: str
    new: bool = Field(description="false: an event with this event_id was already stored (nothing changed)")


class ImportResponse(BaseModel):
    received: int
    new: int
    already_present: int
    feedback_ids: list[str]


def unicode_problem(body: bytes) -> str | None:
    """Why a request body is not valid Unicode text (None when it is, or when it is not JSON at all: FastAPI
    says so). Invalid UTF-8 bytes, and \\uD800-\\uDFFF escapes without their pair, which json.loads turns
    into lone surrogates that no UTF-8 encoder (DuckDB, the JSON response) will take."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"the body is not valid UTF-8 (byte {err.start})"
    if not _SURROGATE_ESCAPE.search(text):
        return None
    try:
        json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "a JSON string holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair): send valid Unicode"
    except (ValueError, RecursionError):
        return None
    return None


def short_errors(errors: Any) -> str:
    """Pydantic/FastAPI errors as one line, 'field: message; ...', without the input they were given."""
    said = []
    for error in errors[:MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        if error.get("type") == "json_invalid":
            said.append(f"body is not valid JSON ({error.get('ctx', {}).get('error', 'decode error')})"[:200])
        else:
            said.append(f"{where}: {error.get('msg', 'invalid')}"[:200])
    more = len(errors) - MAX_ERRORS_SHOWN
    return "; ".join(said) + (f" (and {more} more)" if more > 0 else "")


async def _reply(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": message}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware in front of the whole API, in this order, before FastAPI sees the request:

    1. the token (``Authorization: Bearer TOKEN``, compared as bytes: a non-ASCII header is just wrong):
       without it only ``GET /health`` answers (status and nonce; whatever body it is sent is never read),
       everything else, /docs included, is 401;
    2. the body size: a Content-Length over the route's limit is 413 before a byte is read, and a body
       streamed without one is read only until it passes the limit;
    3. the body text: invalid UTF-8 or a lone surrogate escape is 422, so no handler meets a string that
       cannot be encoded again (that was a 500 which also broke the connection's next request).
    """

    def __init__(self, app: Any, token: str | None, limits: ServeLimits):
        self.app, self.limits = app, limits
        self.expected = f"Bearer {token}".encode("utf-8") if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        given = next((value for name, value in headers if name == b"authorization"), b"")
        authenticated = self.expected is None or hmac.compare_digest(given, self.expected)
        scope[AUTHENTICATED] = authenticated
        if not authenticated and scope.get("path") != OPEN_PATH:
            await _reply(send, 401, "missing or wrong API token (Authorization: Bearer ...)",
                         [(b"www-authenticate", b"Bearer")])
            return
        if not authenticated:  # a bare GET /health reads no body: none is waited for (a body sent slowly holds nothing)
            await self.app(scope, receive, send)
            return
        option, limit = (("--max-import-bytes", self.limits.max_import_bytes) if scope.get("path") == IMPORT_PATH
                         else ("--max-body-bytes", self.limits.max_body_bytes))
        too_big = f"request body over {limit} bytes (`evolve serve {option}`)"
        declared = next((value for name, value in headers if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, too_big)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _reply(send, 413, too_big)
                return
        problem = unicode_problem(bytes(body)) if body else None
        if problem:
            await _reply(send, 422, problem)
            return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


class LiveRetriever:
    """The retriever a server answers with, swapped whole when the corpus gets a new version: a request reads
    ``current`` once and finishes on it, so nothing is dropped or answered from half of each version."""

    def __init__(self, retriever: Retriever, corpus_version: str | None = None):
        self.swap(retriever, corpus_version)

    def swap(self, retriever: Retriever, corpus_version: str | None = None) -> None:
        self.current = (retriever, {c.doc_id for c in retriever.chunks}, corpus_version)  # one assignment: atomic

    @property
    def retriever(self) -> Retriever:
        return self.current[0]


def create_app(retriever: Retriever | LiveRetriever, config: PipelineConfig, config_version: str, store: FeedbackStore,
               token: str | None = None, answerer: Answerer | None = None,
               registry_mirror: Callable[[], str] | None = None, nonce: str | None = None,
               limits: ServeLimits = ServeLimits(), answers_off: str = NO_LLM,
               traffic: Traffic | None = None) -> FastAPI:
    """The API; ``registry_mirror`` says whether the MLflow registry agrees with the decision log (for /health).

    Without an ``answerer``, /answer is a 503 that gives ``answers_off`` (why there is none), and /health too.

    ``nonce`` is a random value per start, echoed by /health with or without the token (and nothing else is,
    without it): clients compare it with the one in .evolve/server.json before they send a token, so a stale
    file pointing at another process is caught. ``limits`` caps what one request may carry.

    ``traffic``: a registered candidate shadowed or interleaved with the champion (see :class:`Traffic`).
    """
    app = FastAPI(title="evolve search", version="1", description=f"Champion pipeline {config.name} "
                                                                 f"(version {config_version}).")
    app.add_middleware(RequestGuard, token=token, limits=limits)
    live = retriever if isinstance(retriever, LiveRetriever) else LiveRetriever(retriever)
    slots = None
    if answerer is not None:
        count = limits.answer_slots or getattr(getattr(answerer.client, "settings", None), "max_concurrency", 4)
        slots = AnswerSlots(count, limits.answer_wait_s, limits.answer_timeout_s)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": short_errors(err.errors())})

    def run_search(body: SearchRequest) -> tuple[list[Hit], float, Any]:
        if len(body.query) > limits.max_query_chars:
            raise HTTPException(422, f"query: at most {limits.max_query_chars} characters "
                                     f"(`evolve serve --max-query-chars`)")
        retriever = live.retriever
        if not retriever.searchable(body.query):
            raise HTTPException(422, "no searchable words in the query (only stopwords, punctuation or spaces)")
        started = time.perf_counter()
        rows = retriever.search_chunks([body.query], use_query_cache=False)[0]
        found = best_chunk_per_doc(rows, body.k)
        part = None
        if traffic is not None:  # the candidate's turn: the same query, filtered to the documents served here
            found, part = traffic.arrange(body.query, body.k, found)
        hits = [Hit(**hit) for hit in found]
        return hits, 1000 * (time.perf_counter() - started), part

    @app.get("/health")
    def health(request: Request) -> dict[str, Any]:
        """Without the token (when one is set): only ``status`` and ``nonce``. ``status`` is "degraded" while the
        last feedback snapshot export failed (``snapshot`` says why and when it last succeeded)."""
        snapshot = store.export_status()
        status = "ok" if snapshot["ok"] else "degraded"
        if not request.scope.get(AUTHENTICATED):
            return {"status": status, "nonce": nonce}
        return {"status": status, "config": config.name, "config_version": config_version,
                "config_sha256": config.sha256(), "documents": len(live.current[1]),
                "chunks": len(live.retriever.chunks), "corpus_version": live.current[2],
                "answers": answers_health(answerer, answers_off, slots),
                "registry_mirror": registry_mirror() if registry_mirror else "not watched", "snapshot": snapshot,
                "traffic": traffic.health() if traffic is not None else {"mode": "champion only"}, "nonce": nonce}

    @app.post("/search", response_model=SearchResponse)
    def search(body: SearchRequest) -> SearchResponse:
        hits, latency, part = run_search(body)
        request_id = store.record_request("search", body.query, [h.model_dump(exclude={"text"}) for h in hits],
                                          config_version, config.name, latency)
        if traffic is not None:
            traffic.served(request_id, part)
        return SearchResponse(request_id=request_id, config_version=config_version, hits=hits, latency_ms=latency)

    @app.post("/answer", response_model=AnswerResponse)
    async def answer(body: SearchRequest) -> AnswerResponse:
        """The search hits and an answer written from them; 503 while answers are off (the detail says why), 503
        with Retry-After while every LLM slot stays busy (nothing recorded), 504 when the LLM does not finish within
        the answer's deadline, 502 or 503 when the LLM fails this request (those three recorded without an answer;
        the detail gives the request_id)."""
        if answerer is None or slots is None:
            raise HTTPException(503, f"answers are off: {answers_off}")
        try:
            slot = await slots.take()
        except SlotsBusy as busy:
            log.warning("/answer refused: %s", busy)
            raise HTTPException(503, str(busy), headers={"Retry-After": str(busy.retry_after)}) from None
        try:
            hits, latency, part = await run_in_threadpool(run_search, body)
            chunks = [h.model_dump() for h in hits]
            started = time.perf_counter()
            try:  # the client's own timeout (per read) a little past the deadline: a stalled LLM ends the thread too
                written = await slot.run(lambda: answerer.answer(body.query, chunks,
                                                                 timeout=limits.answer_timeout_s + 1))
            except Exception as err:  # noqa: BLE001 - whatever the LLM did, the user gets a line and the request is kept
                latency += 1000 * (time.perf_counter() - started)
                request_id = await run_in_threadpool(record, body.query, hits, latency, None, part)
                raise answer_failed(err, request_id, answerer.client) from None
        finally:
            slot.release()
        latency += 1000 * (time.perf_counter() - started)
        request_id = await run_in_threadpool(record, body.query, hits, latency, written.text, part,
                                             written.citations)
        return AnswerResponse(request_id=request_id, config_version=config_version, hits=hits, latency_ms=latency,
                              answer=written.text, citations=written.citations, language=written.language,
                              model=written.model)

    def record(query: str, hits: list[Hit], latency: float, text: str | None, part: Any,
               citations: list[str] | None = None) -> str:
        """Commit an /answer request to the store (``text`` None: no answer was written) and return its id; the
        candidate's part in it (with the chunks the answer cites) goes to ``traffic``."""
        request_id = store.record_request("answer", query, [h.model_dump(exclude={"text"}) for h in hits],
                                          config_version, config.name, latency, answer=text)
        if traffic is not None:
            traffic.served(request_id, part, citations)
        return request_id

    @app.post("/feedback", response_model=FeedbackResponse)
    def feedback(body: FeedbackEvent) -> FeedbackResponse:
        """Rate a request this server answered (its query and config version are taken from the store)."""
        if body.request_id is None:
            raise HTTPException(422, "POST /feedback rates a served request: give its request_id "
                                     "(feedback from elsewhere goes to /feedback/import)")
        try:
            event = store.vouch(body, live.current[1])
        except UnknownRequest as err:
            raise HTTPException(404, str(err)) from None
        except FeedbackRefused as err:
            raise HTTPException(422, str(err)) from None
        (new,) = store.record_feedback([event], source="api")
        return FeedbackResponse(feedback_id=event.event_id, new=new)

    @app.post("/feedback/import", response_model=ImportResponse)
    def feedback_import(body: Annotated[list[Any], Body()]) -> ImportResponse:
        """A whole feedback export (used by `evolve feedback import`): every event is validated like POST
        /feedback's, then all are stored in one transaction, or none when any is refused."""
        if len(body) > limits.max_import_batch:
            raise HTTPException(413, f"{len(body)} events is more than this server takes in one import "
                                     f"({limits.max_import_batch}; `evolve serve --max-import-batch`)")
        events, refused = store.vouch_all(body, live.current[1])
        if refused:
            raise HTTPException(422, {"message": f"{len(refused)} of {len(body)} events refused, nothing stored",
                                      "errors": [{"index": index, "error": error} for index, error in refused]})
        new = store.record_feedback(events, source="import")
        return ImportResponse(received=len(events), new=sum(new), already_present=len(new) - sum(new),
                              feedback_ids=[e.event_id for e in events])

    @app.post("/snapshot")
    def snapshot() -> dict[str, Any]:
        """Export the feedback store to Parquet now (readers in other processes use the snapshot)."""
        try:
            folder = store.export_snapshot()
        except Exception as err:  # noqa: BLE001 - recorded in the store's export status too (GET /health)
            raise HTTPException(503, f"the snapshot export failed: {type(err).__name__}: {err}"[:300]) from None
        return {"snapshot": str(folder), "requests": store.count("requests"), "feedback": store.count("feedback")}

    return app


def answers_health(answerer: Answerer | None, answers_off: str, slots: AnswerSlots | None = None) -> dict[str, Any]:
    """/health's word on /answer: on, with the model and endpoint it asks and its slots (how many, how many busy,
    how many of those past their deadline), or off and why."""
    if answerer is None:
        return {"on": False, "reason": answers_off}
    return {"on": True, "model": answerer.client.model, "endpoint": answerer.client.settings.base_url,
            **({"slots": slots.state()} if slots is not None else {})}


def answer_failed(err: Exception, request_id: str, client: LLMClient) -> HTTPException:
    """The response for an LLM that failed an /answer: 503 when it does not answer at all, 504 when it did not
    finish within the answer's deadline, else 502 (a bad gateway); the detail says what happened in a line and gives
    the recorded request's id."""
    if isinstance(err, PastDeadline):
        status, message = 504, str(err)
    elif isinstance(err, LLMUnavailable):
        status, message = 503, f"the LLM is unavailable: {err}"
    elif isinstance(err, LLMError):
        status, message = 502, f"the LLM failed to answer: {err}"
    else:
        status, message = 502, f"the LLM failed to answer: {type(err).__name__}: {err}"
    message = client.said(message, limit=500)  # one line, the key and anything like a secret masked
    log.warning("/answer %s (%s at %s): %s", request_id, client.model, client.settings.base_url, message)
    return HTTPException(status, {"message": message[:500], "request_id": request_id})
