"""Evidence about one pipeline config: per-query scores on each held-back set, latency, size, licences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalsets import EvalSet
from experiments import score_queries
from experiments import DEFAULT_METRICS
from experiments import latency_ms, p95
from pipelines import Components, PipelineConfig, Retriever, StageLog
from pipelines.embedders import resolve_model


@dataclass
class SetScores:
    name: str
    per_query: dict[str, dict[str, float]]
    """query_id -> {metric: value}"""
    is_failure_set: bool = False

    def mean(self, metric: str) -> float:
        values = [row[metric] for row in self.per_query.values()]
        return sum(values) / len(values) if values else 0.0


@dataclass
class Evidence:
    config: PipelineConfig
    sets: list[SetScores]
    latency_p95_ms: float
    index_mb: float
    models: dict[str, str] = field(default_factory=dict)
    """model name -> licence"""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_dict` gives the evidence back (e.g. across a checkpoint)."""
        return {"config": self.config.model_dump(mode="json"), "latency_p95_ms": self.latency_p95_ms,
                "index_mb": self.index_mb, "models": self.models,
                "sets": [{"name": s.name, "per_query": s.per_query, "is_failure_set": s.is_failure_set}
                         for s in self.sets]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evidence":
        return cls(PipelineConfig.model_validate(data["config"]), [SetScores(**s) for s in data["sets"]],
                   data["latency_p95_ms"], data["index_mb"], dict(data["models"]))

    def summary(self, metric: str) -> dict[str, Any]:
        return {"config": self.config.name, "latency_p95_ms": round(self.latency_p95_ms, 2),
                "index_mb": round(self.index_mb, 3), "models": self.models,
                "sets": {s.name: {"queries": len(s.per_query), metric: s.mean(metric)} for s in self.sets}}


def models_of(config: PipelineConfig) -> dict[str, str]:
    """Model name -> licence, for every model the config uses (its parts name them, whatever their kind)."""
    out = {}
    for name in config.models():
        try:
            out[name] = resolve_model(name).licence
        except KeyError:
            out[name] = "unknown"
    return out


def collect_evidence(config: PipelineConfig, sets: list[EvalSet], components: Components,
                     failure_set: EvalSet | None = None, latency_queries: int = 50,
                     scored_by: list[PipelineConfig] | None = None) -> Evidence:
    """Score the config on each held-back set (and the failure set), then time single-query searches.

    ``scored_by`` (cross-fitting): the config that is scored on each of ``sets`` in turn, e.g. the winner of
    the study that tuned without that fold; parts of one evaluation set pool into one set of scores. Latency,
    size and licences are always ``config``'s, the one that would be registered.
    """
    scorers = scored_by or [config] * len(sets)
    if len(scorers) != len(sets):
        raise ValueError(f"{len(scorers)} configs for {len(sets)} held-back sets")
    pooled: dict[str, SetScores] = {}
    timings, index_bytes = [], 0
    parts = [(s, c, False) for s, c in zip(sets, scorers)] + ([(failure_set, config, True)] if failure_set else [])
    for evalset, scorer, is_failure in parts:
        retriever = Retriever(scorer, components).build(evalset.corpus)
        rows = score_queries(retriever, evalset.queries, evalset.qrels, StageLog(), DEFAULT_METRICS)
        name = "failure-set" if is_failure else evalset.name
        scores = pooled.setdefault(name, SetScores(name, {}, is_failure))
        scores.per_query.update({r["query_id"]: {m: r[m] for m in DEFAULT_METRICS} for r in rows})
        if not is_failure and scorer == config:
            timings += latency_ms(retriever, [q.text for q in evalset.queries], latency_queries)
            index_bytes = max(index_bytes, retriever.index_bytes())
    if not timings:  # the registered config scored none of the parts: time it on the first set
        retriever = Retriever(config, components).build(sets[0].corpus)
        timings = latency_ms(retriever, [q.text for q in sets[0].queries], latency_queries)
        index_bytes = retriever.index_bytes()
    return Evidence(config, list(pooled.values()), p95(timings), index_bytes / 1e6, models_of(config))
