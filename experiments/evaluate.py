"""Score one pipeline config on one evaluation set: per-query metrics, means, stage timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsets import EvalSet
from evalsets import json_line
from experiments.metrics import DEFAULT_METRICS, mean_scores
from experiments.runs import retrieve, score
from pipelines import Components, PipelineConfig, StageLog
from pipelines import Progress


@dataclass
class EvalResult:
    evalset: str
    split: str
    config: PipelineConfig
    per_query: list[dict[str, Any]]
    means: dict[str, float]
    build: StageLog
    search: StageLog
    wall_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def search_ms_per_query(self) -> float:
        return 1000 * sum(self.search.seconds.values()) / max(len(self.per_query), 1)

    def write_per_query(self, path: Path | str) -> Path:
        """Per-query results as JSON lines (query id, metrics, top-10 documents, relevant documents)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for row in self.per_query:
                out.write(json_line(row))
        return path

    def summary(self) -> dict[str, Any]:
        return {"evalset": self.evalset, "split": self.split, "config": self.config.name,
                "queries": len(self.per_query), **self.means,
                "search_ms_per_query": round(self.search_ms_per_query, 2),
                "wall_seconds": round(self.wall_seconds, 2),
                "build_seconds": {k: round(v, 2) for k, v in self.build.seconds.items()},
                "search_seconds": {k: round(v, 2) for k, v in self.search.seconds.items()},
                "build_counts": self.build.counts}


def evaluate(evalset: EvalSet, config: PipelineConfig, components: Components,
             metrics: tuple[str, ...] = DEFAULT_METRICS, progress: Progress | None = None,
             batch_size: int = 256) -> EvalResult:
    """Build the pipeline on the evalset's corpus and score every query of the split."""
    run = retrieve(evalset, config, components, progress, batch_size)
    per_query = score(run, evalset.qrels, metrics)
    means = mean_scores({m: row[m] for m in metrics} for row in per_query)
    return EvalResult(evalset.name, evalset.split, config, per_query, means, run.build or StageLog(), run.search,
                      run.seconds)
