"""Answer quality, the second stage after retrieval: answers generated from a config's top chunks, judged per query.

Retrieval metrics score every tuning query cheaply; answers cost LLM calls, so they are measured only where a
decision needs them (a study's finalists, candidate and champion at the guard step), on a bounded number of
queries, until a deadline. Every generator and judge call goes through the cached client: a repeated judgement
(the champion's, say, at every guard step) costs nothing.

Per query: ``answer_correctness`` (against the reference answer, where the set has one), ``faithfulness`` (the
answer's claims are supported by the contexts it was given) and ``context_relevance`` (those contexts contain
the answer), each a 0/1 verdict of the judge; a verdict the judge could not give is left out, never counted 0.
Where every reference is short (a span: :mod:`experiments.short_answers`), ``answer_correctness`` is decided
without the judge, by containment after Korean normalisation, and exact match and F1 join the row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from evalsets import Query
from experiments.judge import Judge
from experiments.short_answers import DECIDER, score_short_answer, short_references
from pipelines import GenerationConfig, Generator, Retriever
from pipelines.llm import LLMError, LLMUnavailable

ANSWER_METRICS = ("answer_correctness", "faithfulness", "context_relevance")
"""Per-query answer metrics, the names under which they are logged and held by the policy."""
_JUDGE_METRIC = {"correctness": "answer_correctness", "faithfulness": "faithfulness",
                 "context_relevance": "context_relevance"}


@dataclass
class AnswerSpend:
    """What answer evaluation cost: the loop reports it and bounds it."""

    queries: int = 0
    """Queries answered and judged."""
    skipped: int = 0
    """Queries not reached before the deadline (or after the LLM went away)."""
    failed: int = 0
    """Queries without an answer, or without any valid verdict on it (LLM errors, a request past its time)."""
    calls: int = 0
    """Requests that reached the LLM server (a cached request is not one)."""
    cached: int = 0
    """Requests answered from the cache."""
    seconds: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)
    """Per metric, the queries it was scored on (``answer_correctness``: judge and containment together;
    ``contained``: those decided by containment, without the judge)."""

    def add(self, other: "AnswerSpend") -> None:
        for name, value in asdict(other).items():
            if name == "verdicts":
                for metric, count in value.items():
                    self.verdicts[metric] = self.verdicts.get(metric, 0) + count
            else:
                setattr(self, name, getattr(self, name) + value)

    def line(self) -> str:
        text = (f"{self.queries} queries answered and judged, {self.calls} LLM calls ({self.cached} from the cache), "
                f"{self.seconds:.0f} s")
        if self.skipped:
            text += f"; {self.skipped} queries not reached within the time allowed"
        if self.failed:
            text += f"; {self.failed} queries without an answer or a valid verdict"
        if self.verdicts:
            text += "; scored: " + ", ".join(f"{metric} {count}" for metric, count in self.verdicts.items())
        return text


def answer_queries(queries: list[Query], limit: int) -> list[Query]:
    """The queries answers are judged on: those with a reference answer first (correctness needs one), in the
    set's order, at most ``limit``. Deterministic, so candidate and champion are judged on the same queries."""
    with_reference = [q for q in queries if q.answers]
    return (with_reference + [q for q in queries if not q.answers])[:max(0, limit)]


class AnswerJudging:
    """The LLM as generator and as judge, until a deadline (``time.monotonic()`` seconds; None: no limit).

    The same client plays both roles (the design's "local vLLM as generator and judge"); judge verdicts carry
    its model name, so scores of different judges are never compared.
    """

    def __init__(self, client: Any, deadline: float | None = None):
        self.client = client
        self.deadline = deadline
        self.judge = Judge(client, timeout=None if deadline is None else lambda: max(1.0, self.time_left()))
        self.spend = AnswerSpend()
        self.unavailable: str | None = None
        """Why the LLM stopped answering, once it did (later queries are skipped, not retried)."""

    @property
    def judge_model(self) -> str:
        return self.client.model

    def halves(self) -> tuple["AnswerJudging", "AnswerJudging"]:
        """Two judgings on this client: the first until half the time left, the second until the deadline."""
        middle = None if self.deadline is None else time.monotonic() + self.time_left() / 2
        return AnswerJudging(self.client, middle), AnswerJudging(self.client, self.deadline)

    def absorb(self, *parts: "AnswerJudging") -> None:
        """Count what ``parts`` spent (and why the LLM stopped, if it did) as this judging's."""
        for part in parts:
            self.spend.add(part.spend)
            self.unavailable = self.unavailable or part.unavailable

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def score(self, retriever: Retriever, queries: list[Query], generation: GenerationConfig, limit: int,
              progress: Callable[[int, int], None] | None = None) -> dict[str, dict[str, float]]:
        """query_id -> {metric: 0/1} for up to ``limit`` of ``queries`` (see :func:`answer_queries`), answered
        from ``retriever``'s ranking with ``generation``'s settings. Queries not reached in time are left out."""
        chosen = answer_queries(queries, limit)
        if not chosen:
            return {}
        started, calls, hits = time.perf_counter(), self.client.calls, self._cache_hits()
        rankings = retriever.search_chunks([q.text for q in chosen])
        generator = Generator(self.client, generation)
        done = [0]

        def one(pair: tuple[Query, list[Any]]) -> dict[str, float] | None:
            query, ranking = pair
            try:
                return self._judge_one(generator, query, ranking)
            finally:
                done[0] += 1
                if progress:
                    progress(done[0], len(chosen))

        with ThreadPoolExecutor(self.client.settings.max_concurrency) as pool:
            rows = list(pool.map(one, zip(chosen, rankings)))
        out = {q.query_id: row for q, row in zip(chosen, rows) if row}
        verdicts = {m: n for m in ANSWER_METRICS if (n := sum(m in row for row in out.values()))}
        if contained := sum(DECIDER in row for row in out.values()):
            verdicts["contained"] = contained
        self.spend.add(AnswerSpend(queries=len(out), skipped=sum(row is None for row in rows),
                                   failed=sum(row == {} for row in rows), calls=self.client.calls - calls,
                                   cached=self._cache_hits() - hits, seconds=time.perf_counter() - started,
                                   verdicts=verdicts))
        return out

    def _judge_one(self, generator: Generator, query: Query, ranking: list[Any]) -> dict[str, float] | None:
        """The query's verdicts ({} when the LLM could not answer it; None when it was not reached)."""
        if self.unavailable is not None or self.time_left() <= 0:
            return None
        chunks = [{"chunk_id": c.chunk_id, "doc_id": c.doc_id, "text": c.text} for c in ranking]
        try:
            answer = generator.answer(query.text, chunks, timeout=self.judge.timeout() if self.judge.timeout else None)
            # the chunk dicts themselves: the verdicts' prompts then open like the answer's (a prompt-cache hit)
            verdicts = [self.judge.faithfulness(answer.text, answer.contexts),
                        self.judge.context_relevance(query.text, answer.contexts)]
            short = short_references(query.answers)
            if query.answers and not short:
                verdicts.append(self.judge.correctness(query.text, answer.text, query.answers[0]))
        except LLMUnavailable as err:
            self.unavailable = str(err)
            return None
        except LLMError:
            return {}
        row = {_JUDGE_METRIC[v.metric]: v.value for v in verdicts if v.value is not None}
        if short:  # a span: containment decides, no judge call (experiments.short_answers)
            row.update(score_short_answer(answer.text, short))
        return row

    def _cache_hits(self) -> int:
        cache = getattr(self.client, "cache", None)
        return cache.hits if cache is not None else 0
