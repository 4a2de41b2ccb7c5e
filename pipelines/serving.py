"""The search API over the champion pipeline: /search, /answer, /feedback, /health (FastAPI).

Every request and every rating is committed to the feedback store before the response goes out,
so an acknowledged event survives a SIGKILL of the server.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from evalsets.feedback import FeedbackEvent, FeedbackRefused, FeedbackStore, UnknownRequest
from pipelines.config import PipelineConfig
from pipelines.retriever import Retriever

Answerer = Callable[[str, list[dict[str, Any]]], str]


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)
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


class FeedbackResponse(BaseModel):
    feedback_id: str
    new: bool = Field(description="false: an event with this event_id was already stored (nothing changed)")


class ImportResponse(BaseModel):
    received: int
    new: int
    already_present: int
    feedback_ids: list[str]


def create_app(retriever: Retriever, config: PipelineConfig, config_version: str, store: FeedbackStore,
               token: str | None = None, answerer: Answerer | None = None,
               registry_mirror: Callable[[], str] | None = None, nonce: str | None = None,
               max_import_batch: int = 10_000) -> FastAPI:
    """The API; ``registry_mirror`` says whether the MLflow registry agrees with the decision log (for /health).

    ``nonce`` is a random value per start, echoed by /health: clients compare it with the one in
    .evolve/server.json before they send a token, so a stale file pointing at another process is caught.
    ``max_import_batch`` caps the events one POST /feedback/import may carry.
    """
    app = FastAPI(title="evolve search", version="1", description=f"Champion pipeline {config.name} "
                                                                 f"(version {config_version}).")
    doc_ids = {c.doc_id for c in retriever.chunks}

    def authorise(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given, f"Bearer {token}"):
            raise HTTPException(401, "missing or wrong API token (Authorization: Bearer ...)")

    def run_search(body: SearchRequest) -> tuple[list[Hit], float]:
        started = time.perf_counter()
        rows = retriever.search_chunks([body.query], use_query_cache=False)[0]
        hits, seen = [], set()
        for row in rows:  # one hit per document: its best chunk
            if row.doc_id in seen:
                continue
            seen.add(row.doc_id)
            hits.append(Hit(rank=len(hits) + 1, doc_id=row.doc_id, chunk_id=row.chunk_id, score=row.score,
                            text=row.text))
            if len(hits) == body.k:
                break
        return hits, 1000 * (time.perf_counter() - started)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "config": config.name, "config_version": config_version,
                "config_sha256": config.sha256(), "documents": len(doc_ids), "chunks": len(retriever.chunks),
                "answer": answerer is not None,
                "registry_mirror": registry_mirror() if registry_mirror else "not watched", "nonce": nonce}

    @app.post("/search", response_model=SearchResponse, dependencies=[Depends(authorise)])
    def search(body: SearchRequest) -> SearchResponse:
        hits, latency = run_search(body)
        request_id = store.record_request("search", body.query, [h.model_dump(exclude={"text"}) for h in hits],
                                          config_version, config.name, latency)
        return SearchResponse(request_id=request_id, config_version=config_version, hits=hits, latency_ms=latency)

    @app.post("/answer", response_model=AnswerResponse, dependencies=[Depends(authorise)])
    def answer(body: SearchRequest) -> AnswerResponse:
        if answerer is None:
            raise HTTPException(503, "no LLM is configured for this server (see `evolve serve --help`)")
        hits, latency = run_search(body)
        started = time.perf_counter()
        text = answerer(body.query, [h.model_dump() for h in hits])
        latency += 1000 * (time.perf_counter() - started)
        request_id = store.record_request("answer", body.query, [h.model_dump(exclude={"text"}) for h in hits],
                                          config_version, config.name, latency, answer=text)
        return AnswerResponse(request_id=request_id, config_version=config_version, hits=hits, latency_ms=latency,
                              answer=text)

    @app.post("/feedback", response_model=FeedbackResponse, dependencies=[Depends(authorise)])
    def feedback(body: FeedbackEvent) -> FeedbackResponse:
        """Rate a request this server answered (its query and config version are taken from the store)."""
        if body.request_id is None:
            raise HTTPException(422, "POST /feedback rates a served request: give its request_id "
                                     "(feedback from elsewhere goes to /feedback/import)")
        try:
            event = store.vouch(body, doc_ids)
        except UnknownRequest as err:
            raise HTTPException(404, str(err)) from None
        except FeedbackRefused as err:
            raise HTTPException(422, str(err)) from None
        (new,) = store.record_feedback([event], source="api")
        return FeedbackResponse(feedback_id=event.event_id, new=new)

    @app.post("/feedback/import", response_model=ImportResponse, dependencies=[Depends(authorise)])
    def feedback_import(body: Annotated[list[Any], Body()]) -> ImportResponse:
        """A whole feedback export (used by `evolve feedback import`): every event is validated like POST
        /feedback's, then all are stored in one transaction, or none when any is refused."""
        if len(body) > max_import_batch:
            raise HTTPException(413, f"{len(body)} events is more than this server takes in one import "
                                     f"({max_import_batch}; `evolve serve --max-import-batch`)")
        events, refused = store.vouch_all(body, doc_ids)
        if refused:
            raise HTTPException(422, {"message": f"{len(refused)} of {len(body)} events refused, nothing stored",
                                      "errors": [{"index": index, "error": error} for index, error in refused]})
        new = store.record_feedback(events, source="import")
        return ImportResponse(received=len(events), new=sum(new), already_present=len(new) - sum(new),
                              feedback_ids=[e.event_id for e in events])

    @app.post("/snapshot", dependencies=[Depends(authorise)])
    def snapshot() -> dict[str, Any]:
        """Export the feedback store to Parquet now (readers in other processes use the snapshot)."""
        folder = store.export_snapshot()
        return {"snapshot": str(folder), "requests": store.count("requests"), "feedback": store.count("feedback")}

    return app
