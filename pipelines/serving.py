"""The search API over the champion pipeline: /search, /answer, /feedback, /health (FastAPI).

Every request and every rating is committed to the feedback store before the response goes out,
so an acknowledged event survives a SIGKILL of the server.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from evalsets.feedback import FeedbackEvent, FeedbackStore
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


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1)
    rating: Literal["good", "bad"]
    comment: str | None = Field(None, max_length=4000)
    correct_doc_id: str | None = None


class FeedbackResponse(BaseModel):
    feedback_id: str


def create_app(retriever: Retriever, config: PipelineConfig, config_version: str, store: FeedbackStore,
               token: str | None = None, answerer: Answerer | None = None) -> FastAPI:
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
                "documents": len(doc_ids), "chunks": len(retriever.chunks), "answer": answerer is not None}

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
    def feedback(body: FeedbackRequest) -> FeedbackResponse:
        served = store.request(body.request_id)
        if served is None:
            raise HTTPException(404, f"unknown request_id {body.request_id!r}")
        if body.correct_doc_id is not None and body.correct_doc_id not in doc_ids:
            raise HTTPException(422, f"correct_doc_id {body.correct_doc_id!r} is not a document of this corpus")
        feedback_id = store.record_feedback(FeedbackEvent(
            rating=body.rating, request_id=body.request_id, query=served["query"], comment=body.comment,
            correct_doc_id=body.correct_doc_id, config_version=served["config_version"]))
        return FeedbackResponse(feedback_id=feedback_id)

    @app.post("/feedback/import", response_model=FeedbackResponse, dependencies=[Depends(authorise)],
              include_in_schema=True)
    def feedback_import(body: dict[str, Any]) -> FeedbackResponse:
        """One pre-validated line of an external feedback export (used by `evolve feedback import`)."""
        event = FeedbackEvent(**{k: body.get(k) for k in ("rating", "request_id", "query", "comment",
                                                           "correct_doc_id", "config_version")}, source="import")
        if event.rating not in ("good", "bad") or not (event.query or event.request_id):
            raise HTTPException(422, "needs rating good|bad and a query or request_id")
        return FeedbackResponse(feedback_id=store.record_feedback(event))

    @app.post("/snapshot", dependencies=[Depends(authorise)])
    def snapshot() -> dict[str, Any]:
        """Export the feedback store to Parquet now (readers in other processes use the snapshot)."""
        folder = store.export_snapshot()
        return {"snapshot": str(folder), "requests": store.count("requests"), "feedback": store.count("feedback")}

    return app
