"""A registered candidate beside the champion in `evolve serve` (the ``pipelines.Traffic`` the API calls).

Shadow: every request is answered by the champion alone; its query is queued (bounded; a full queue drops it,
counted) and a worker thread runs the candidate on it later, storing both rankings with the request. The
request thread only enqueues, so the champion's response never waits for the candidate.

Interleave: a ``share`` of requests is answered from a team-draft interleaving of the two rankings
(``experiments.interleaving``), the merged list and the side of each hit stored with the request, so feedback and
the answer's citations can later credit a side. The candidate only ever ranks documents the champion serves:
its hits are filtered to the champion's current documents (so a corpus reload or a wider candidate index never
shows a request a document it could not see). A candidate that fails (its model unavailable, an error) is left
out: the champion's hits are served alone, counted, never a 500.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from experiments import CANDIDATE, team_draft
from pipelines import best_chunk_per_doc

if TYPE_CHECKING:
    from pathlib import Path

    from agent.server import ServerInfo
    from evalsets import Document, FeedbackStore
    from experiments import TrafficRecord
    from guardrails import Policy, Project, RuleResult
    from pipelines import Retriever


@dataclass
class Part:
    """One request's part for the candidate, from ``arrange`` to ``served``."""

    query: str
    k: int
    champion: list[str]
    hits: list[dict[str, object]]
    """the hits served (chunk id -> document id for citations)"""
    candidate: list[str] | None = None
    shown: list[dict[str, str]] | None = None
    status: str = "ok"


@dataclass
class Counts:
    requests: int = 0
    interleaved: int = 0
    champion_only: int = 0
    shadowed: int = 0
    dropped: int = 0
    unavailable: int = 0
    candidate_ms: float = 0.0
    """total time the candidate spent ranking (its mean per query is in /health)"""
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict[str, object]:
        with self.lock:
            ranked = self.interleaved + self.shadowed
            return {**{name: getattr(self, name) for name in ("requests", "interleaved", "champion_only", "shadowed",
                                                              "dropped", "unavailable", "last_error")},
                    "candidate_ms_mean": round(self.candidate_ms / ranked, 2) if ranked else None}


class CandidateTraffic:
    """``mode`` "shadow" or "interleave" for registered candidate ``version``, whose ``retriever`` was built over
    the served corpus (None: it could not be, ``unavailable`` says why; the champion then serves alone).
    ``allowed()``: the document ids the champion serves now. ``store``: the feedback store (``record_traffic``)."""

    def __init__(self, mode: str, version: str, config_name: str, retriever: Retriever | None, store: FeedbackStore,
                 allowed: Callable[[], set[str]], share: float = 0.5, queue_size: int = 256, seed: int | None = None,
                 unavailable: str | None = None):
        if mode not in ("shadow", "interleave"):
            raise ValueError(f"mode must be shadow or interleave, not {mode!r}")
        self.mode, self.version, self.config_name = mode, version, config_name
        self.retriever, self.store, self.allowed, self.share = retriever, store, allowed, share
        self.unavailable = unavailable
        self.counts = Counts()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, Part, list[str] | None] | None] = queue.Queue(maxsize=queue_size)
        self._worker: threading.Thread | None = None
        if mode == "shadow":
            self._worker = threading.Thread(target=self._shadow_loop, daemon=True, name="shadow-candidate")
            self._worker.start()

    # --- the API's hooks (pipelines.Traffic) ----------------------------------------------------------------
    def arrange(self, query: str, k: int, hits: list[dict[str, object]]) -> tuple[list[dict[str, object]], Part | None]:
        self.counts.add(requests=1)
        part = Part(query, k, [h["doc_id"] for h in hits], hits)
        if self.mode == "shadow":
            return hits, part
        with self._rng_lock:
            chosen = self._rng.random() < self.share
            seed = self._rng.getrandbits(64)
        if not chosen:
            self.counts.add(champion_only=1)
            return hits, None
        candidate = self._candidate_hits(query, k)
        if candidate is None:
            part.status = "candidate_unavailable"
            return hits, part
        merged = team_draft(part.champion, [h["doc_id"] for h in candidate], k, random.Random(seed))
        by_side = {"champion": {h["doc_id"]: h for h in hits}, CANDIDATE: {h["doc_id"]: h for h in candidate}}
        served = [{**by_side[pick.side][pick.doc_id], "rank": rank} for rank, pick in enumerate(merged, start=1)]
        part.candidate, part.hits = [h["doc_id"] for h in candidate], served
        part.shown = [{"doc_id": pick.doc_id, "side": pick.side} for pick in merged]
        self.counts.add(interleaved=1)
        return served, part

    def served(self, request_id: str, part: Part | None, citations: list[str] | None = None) -> None:
        if part is None:
            return
        if self.mode == "interleave":
            self._record(request_id, part, citations)
            return
        try:
            self._queue.put_nowait((request_id, part, citations))
        except queue.Full:
            self.counts.add(dropped=1)

    def health(self) -> dict[str, object]:
        said = {"mode": self.mode, "version": self.version, "config": self.config_name,
                "candidate_available": self.retriever is not None, **self.counts.as_dict()}
        if self.unavailable:
            said["unavailable_reason"] = self.unavailable
        if self.mode == "interleave":
            said["share"] = self.share
        else:
            said["queued"] = self._queue.qsize()
            said["queue_size"] = self._queue.maxsize
        return said

    def refresh(self, corpus: list[Document]) -> str:
        """The candidate brought to a new corpus version (the champion's was swapped in already; until this one is,
        the candidate still ranks the old version, filtered to the new one's documents). A line for the log."""
        if self.retriever is None:
            return f"candidate version {self.version} stays unavailable: {self.unavailable}"
        try:
            self.retriever = self.retriever.refreshed(corpus)
        except Exception as err:  # noqa: BLE001 - the champion serves alone from here on, /health says why
            self.retriever, self.unavailable = None, f"refreshing to the new corpus failed: {type(err).__name__}: {err}"
            return f"candidate version {self.version} left out: {self.unavailable}"
        return f"candidate version {self.version} brought to the new corpus version"

    # --- the candidate's side -------------------------------------------------------------------------------
    def _candidate_hits(self, query: str, k: int) -> list[dict[str, object]] | None:
        """The candidate's top ``k`` documents among those the champion serves; None (counted) when it fails."""
        if self.retriever is None:
            self.counts.add(unavailable=1)
            return None
        started = time.perf_counter()
        try:
            rows = self.retriever.search_chunks([query], use_query_cache=False)[0]
        except Exception as err:  # noqa: BLE001 - a failing candidate never fails the request: the champion serves
            self.counts.add(unavailable=1)
            with self.counts.lock:
                self.counts.last_error = f"{type(err).__name__}: {err}"[:300]
            return None
        with self.counts.lock:
            self.counts.candidate_ms += 1000 * (time.perf_counter() - started)
        allowed = self.allowed()
        return best_chunk_per_doc([row for row in rows if row.doc_id in allowed], k)

    def _record(self, request_id: str, part: Part, citations: list[str] | None) -> None:
        doc_of = {h["chunk_id"]: h["doc_id"] for h in part.hits}
        cited = None if citations is None else [doc_of[c] for c in citations if c in doc_of]
        try:
            self.store.record_traffic(request_id, self.mode, self.version, part.k, part.champion, part.candidate,
                                      part.shown, cited, part.status)
        except Exception as err:  # noqa: BLE001 - the request is recorded; only the candidate's part is lost
            with self.counts.lock:
                self.counts.last_error = f"storing the candidate's part failed: {type(err).__name__}: {err}"[:300]

    def _shadow_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            request_id, part, citations = item
            candidate = self._candidate_hits(part.query, part.k)
            if candidate is None:
                part.status = "candidate_unavailable"
            else:
                part.candidate = [h["doc_id"] for h in candidate]
                self.counts.add(shadowed=1)
            self._record(request_id, part, citations)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the shadow worker after what is queued (within ``timeout``; what is left is counted as dropped)."""
        if self._worker is None:
            return
        left = 0
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            left = self._queue.qsize()
        self._worker.join(timeout)
        if left:
            self.counts.add(dropped=left)


TRAFFIC_SQL = """SELECT t.request_id, t.mode, t.k, t.champion, t.candidate, t.shown, t.cited, t.status,
       f.rating, f.correct_doc_id, f.used_doc_ids
FROM traffic t LEFT JOIN feedback f ON f.request_id = t.request_id
WHERE t.candidate_version = '{version}' ORDER BY t.ts, t.request_id"""


def traffic_records(rows: list[dict[str, object]]) -> list[TrafficRecord]:
    """The flat rows of :data:`TRAFFIC_SQL` (one per rating) as one ``TrafficRecord`` per request."""
    import json

    from experiments import Pick, Rating, TrafficRecord

    def decoded(value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    records: dict[str, TrafficRecord] = {}
    for row in rows:
        record = records.get(row["request_id"])
        if record is None:
            shown = decoded(row["shown"])
            record = records[row["request_id"]] = TrafficRecord(
                row["request_id"], row["mode"], int(row["k"]), decoded(row["champion"]), decoded(row["candidate"]),
                [Pick(p["doc_id"], p["side"]) for p in shown] if shown else None, decoded(row["cited"]),
                row["status"])
        if row.get("rating"):
            record.ratings.append(Rating(row["rating"], row["correct_doc_id"],
                                         tuple(decoded(row["used_doc_ids"]) or ())))
    return list(records.values())


def read_traffic(project_dir: Path, server: ServerInfo | None, token: str | None, version: str) -> list[TrafficRecord]:
    """The requests registered candidate ``version`` took part in, with their ratings: from the running server's
    fresh snapshot, else from the feedback store's file (none when there is none)."""
    import re

    from agent.app import fail
    from agent.server import feedback_rows

    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", version):
        fail(f"not a version: {version!r}")
    return traffic_records(feedback_rows(project_dir, server, token, TRAFFIC_SQL.format(version=version),
                                         missing_ok=True))


NO_TRAFFIC = "no live traffic yet (`evolve serve --shadow VERSION` / `--interleave VERSION`)"


def online_evidence(project_dir: Path, token: str | None, version: str, policy: Policy) -> tuple[list[str], RuleResult]:
    """(lines on what live traffic says about ``version``, the policy's online rule on it), for review and approval."""
    from agent.server import running_server

    return evidence_of(read_traffic(project_dir, running_server(project_dir), token, version), policy)


def evidence_of(records: list[TrafficRecord], policy: Policy) -> tuple[list[str], RuleResult]:
    """(lines on what these traffic records say, the policy's online rule on their interleaved part)."""
    from experiments import interleave_summary, shadow_summary
    from guardrails import online_rule

    interleaved = interleave_summary(records)
    lines = [line for summary in (shadow_summary(records), interleaved) if summary.requests
             for line in summary.lines()] or [NO_TRAFFIC]
    return lines, online_rule(policy, interleaved.test if interleaved.requests else None)


def publish_online_evidence(project: Project, version: str, lines: list[str], rule: RuleResult) -> str | None:
    """The online evidence on ``version``'s MLflow version page (what the reviewer opens in the UI), beside the
    offline report. Returns a one-line problem when MLflow cannot be written (the terminal still shows it all)."""
    verdict = f"{rule.rule} ({rule.limit}): {'pass' if rule.passed else 'FAIL'}: {rule.why}"
    try:
        project.registry.show_online_evidence(version, lines, verdict)
    except Exception as err:  # noqa: BLE001 - the page is a copy; the evidence itself is in the feedback store
        return f"the MLflow version page of {version} was not updated: {str(err).splitlines()[0][:200]}"
    return None
