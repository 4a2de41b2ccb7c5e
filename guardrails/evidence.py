"""Evidence about one pipeline config: per-query scores on each held-back set, latency, size, licences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalsets import EvalSet
from experiments import score, search_run
from experiments import ANSWER_METRICS, DEFAULT_METRICS, SHORT_ANSWER_METRICS, AnswerJudging
from experiments import latency_ms, p95
from pipelines import Components, ModelCatalog, PipelineConfig, Retriever
from pipelines.embedders import resolve_model


@dataclass
class SetScores:
    name: str
    per_query: dict[str, dict[str, float]]
    """query_id -> {metric: value}"""
    is_failure_set: bool = False
    texts: dict[str, str] = field(default_factory=dict)
    """query_id -> the query's text (for people: the version page's best and worst queries)"""
    top: dict[str, list[str]] = field(default_factory=dict)
    """query_id -> the first documents retrieved (up to 3)"""

    def mean(self, metric: str) -> float:
        """Over the queries scored on ``metric`` (answer metrics are judged on some queries only)."""
        values = [row[metric] for row in self.per_query.values() if metric in row]
        return sum(values) / len(values) if values else 0.0

    def count(self, metric: str) -> int:
        return sum(metric in row for row in self.per_query.values())


@dataclass
class Evidence:
    config: PipelineConfig
    sets: list[SetScores]
    latency_p95_ms: float
    index_mb: float
    models: dict[str, str] = field(default_factory=dict)
    """model name -> licence"""
    answers: dict[str, Any] = field(default_factory=dict)
    """How answers were judged: {"judge_model", "spend"} when they were, {"skipped": why} when not."""
    champion: "Evidence | None" = None
    """The champion's evidence on the same queries, when this is a candidate's (what the version page compares)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_dict` gives the evidence back (e.g. across a checkpoint)."""
        return {"config": self.config.model_dump(mode="json"), "latency_p95_ms": self.latency_p95_ms,
                "index_mb": self.index_mb, "models": self.models, "answers": self.answers,
                "sets": [{"name": s.name, "per_query": s.per_query, "is_failure_set": s.is_failure_set,
                          "texts": s.texts, "top": s.top} for s in self.sets],
                "champion": self.champion.to_dict() if self.champion is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evidence":
        champion = cls.from_dict(data["champion"]) if data.get("champion") else None
        return cls(PipelineConfig.model_validate(data["config"]), [SetScores(**s) for s in data["sets"]],
                   data["latency_p95_ms"], data["index_mb"], dict(data["models"]), dict(data.get("answers") or {}),
                   champion)

    def summary(self, metric: str) -> dict[str, Any]:
        """Means per set: the primary metric, and each answer metric scored on some of the set's queries (exact
        match and F1 where references are short)."""
        sets = {}
        for s in self.sets:
            sets[s.name] = {"queries": len(s.per_query), metric: s.mean(metric)}
            sets[s.name].update({m: s.mean(m) for m in ANSWER_METRICS + SHORT_ANSWER_METRICS if s.count(m)})
            sets[s.name].update({f"{m}_judged": s.count(m) for m in ANSWER_METRICS if s.count(m)})
        out = {"config": self.config.name, "latency_p95_ms": round(self.latency_p95_ms, 2),
               "index_mb": round(self.index_mb, 3), "models": self.models, "sets": sets}
        if self.answers:
            out["answers"] = self.answers
        return out


def models_of(config: PipelineConfig, catalog: ModelCatalog | None = None) -> dict[str, str]:
    """Model name -> licence, for every model the config uses (its parts name them, whatever their kind), resolved
    in ``catalog`` (default: this process's)."""
    out = {}
    for name in config.models():
        try:
            out[name] = resolve_model(name, catalog).licence
        except KeyError:
            out[name] = "unknown"
    return out


def collect_evidence(config: PipelineConfig, sets: list[EvalSet], components: Components,
                     failure_set: EvalSet | None = None, latency_queries: int = 50,
                     scored_by: list[PipelineConfig] | None = None, answers: AnswerJudging | None = None,
                     answer_queries: int = 0) -> Evidence:
    """Score the config on each held-back set (and the failure set), then time single-query searches.

    ``scored_by`` (cross-fitting): the config that is scored on each of ``sets`` in turn, e.g. the winner of
    the study that tuned without that fold; parts of one evaluation set pool into one set of scores. Latency,
    size and licences are always ``config``'s, the one that would be registered.

    ``answers``: judge the answers of up to ``answer_queries`` held-back queries (shared out over ``sets``), each
    by the config scored on its set; their verdicts join the per-query rows (not the failure set's: it has no
    reference answers and is about finding the right document).
    """
    scorers = scored_by or [config] * len(sets)
    if len(scorers) != len(sets):
        raise ValueError(f"{len(scorers)} configs for {len(sets)} held-back sets")
    pooled: dict[str, SetScores] = {}
    timings, index_bytes = [], 0
    parts = [(s, c, False) for s, c in zip(sets, scorers)] + ([(failure_set, config, True)] if failure_set else [])
    for evalset, scorer, is_failure in parts:
        retriever = Retriever(scorer, components).build(evalset.corpus)
        rows = score(search_run(retriever, evalset.queries), evalset.qrels, DEFAULT_METRICS)
        name = "failure-set" if is_failure else evalset.name
        scores = pooled.setdefault(name, SetScores(name, {}, is_failure))
        scores.per_query.update({r["query_id"]: {m: r[m] for m in DEFAULT_METRICS} for r in rows})
        scores.texts.update({q.query_id: q.text for q in evalset.queries})
        scores.top.update({r["query_id"]: list(r["top10"][:3]) for r in rows})
        if answers is not None and not is_failure and answer_queries > 0:
            judged = answers.score(retriever, evalset.queries, scorer.generation, -(-answer_queries // len(sets)))
            for query_id, verdicts in judged.items():
                scores.per_query[query_id].update(verdicts)
        if not is_failure and scorer == config:
            timings += latency_ms(retriever, [q.text for q in evalset.queries], latency_queries)
            index_bytes = max(index_bytes, retriever.index_bytes())
    if not timings:  # the registered config scored none of the parts: time it on the first set
        retriever = Retriever(config, components).build(sets[0].corpus)
        timings = latency_ms(retriever, [q.text for q in sets[0].queries], latency_queries)
        index_bytes = retriever.index_bytes()
    note = {} if answers is None else {"judge_model": answers.judge_model}
    return Evidence(config, list(pooled.values()), p95(timings), index_bytes / 1e6,
                    models_of(config, components.catalog), note)
