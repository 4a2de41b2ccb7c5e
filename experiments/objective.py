"""The objective of a study: build the sampled config, score it on growing prefixes of the tuning queries
(pruning after each), and record the trial's facts in the storage and its artifacts in a folder."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import optuna

from evalsets import EvalSet, Query
from experiments.costs import embedding_cost
from experiments.evaluate import score_queries
from experiments.metrics import mean_scores
from experiments.sampler import suggest_config
from experiments.space import SearchSpace
from pipelines import Components, PipelineConfig, Retriever, StageLog
from pipelines import Progress, corpus_fingerprint
from pipelines.embedders import WorkAbandoned


FAIL_REASON = "fail_reason"
"""User attribute of a failed trial: the exception, as one line (a model server that stayed down names itself)."""


class Objective:
    """Called by Optuna once a trial; returns the metric's mean (and search ms/query when multi-objective).

    ``queries`` are the tuning queries in the order pruning evaluates them; the trial is scored on the
    prefixes ``prune_fractions`` of them and reported after each, so a bad config is pruned early.
    """

    def __init__(self, space: SearchSpace, tune: EvalSet, queries: list[Query], components: Components,
                 folder: Path, metric: str, prune_fractions: list[float], multi_objective: bool = False):
        self.space, self.tune, self.queries, self.components = space, tune, queries, components
        self.folder, self.metric, self.multi_objective = folder, metric, multi_objective
        self.bounds = sorted({max(1, round(f * len(queries))) for f in prune_fractions} | {len(queries)})
        self.abandon_at: float | None = None
        """Wall-clock time (time.time()) after which a running trial is abandoned at its next step (budgets)."""
        self.stage_progress: Progress | None = None
        """(stage, done, total) while a trial builds its indexes: a cold embedding can take many minutes."""

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        try:
            return self._run(trial)
        except WorkAbandoned as err:
            trial.set_user_attr("abandoned", str(err))
            raise optuna.TrialPruned(f"abandoned: {err}") from None
        except Exception as err:  # the trial fails (Optuna catches it); its reason stays with it in the storage
            trial.set_user_attr(FAIL_REASON, f"{type(err).__name__}: {err}"[:1000])
            raise

    def _run(self, trial: optuna.Trial) -> float | tuple[float, float]:
        config = suggest_config(trial, self.space)
        trial.set_user_attr("config", json.loads(config.model_dump_json()))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        self.refuse_unaffordable(trial, config)
        embeddings_before = self.components.embedding_counts()
        retriever = Retriever(config, self.components).build(self.tune.corpus, self.stage_progress)
        log = StageLog()
        rows: list[dict[str, Any]] = []
        done = 0
        for step, bound in enumerate(self.bounds):
            if self.abandon_at is not None and time.time() > self.abandon_at:
                trial.set_user_attr("abandoned", "out of time budget")
                raise optuna.TrialPruned(f"abandoned after {done} queries: out of time budget")
            rows += score_queries(retriever, self.queries[done:bound], self.tune.qrels, log)
            done = bound
            value = mean_scores({self.metric: r[self.metric]} for r in rows)[self.metric]
            if self.multi_objective:
                continue
            trial.report(value, step)
            if bound < len(self.queries) and trial.should_prune():
                self.record(trial, config, retriever, log, rows, embeddings_before)
                raise optuna.TrialPruned(f"{self.metric}={value:.4f} on {bound} queries")
        latency = self.record(trial, config, retriever, log, rows, embeddings_before)
        return (value, latency) if self.multi_objective else value

    def refuse_unaffordable(self, trial: optuna.Trial, config: PipelineConfig) -> None:
        """Under a time budget, a cold embedding starts only when the time left can pay for it: a trial whose model
        would need longer to embed what the cache lacks (at this machine's measured rate) is pruned at once, with
        the estimate, instead of being abandoned after spending the rest of the budget on part of the corpus."""
        if self.abandon_at is None or config.dense is None:
            return
        if not hasattr(self, "_corpus_key"):
            self._corpus_key = corpus_fingerprint(self.tune.corpus)
        chunks = self.components.chunks(config.chunking, self.tune.corpus, self._corpus_key, StageLog())
        cost = embedding_cost(config.dense.model, [c.text for c in chunks], self.components)
        left = self.abandon_at - time.time()
        if cost.cold_chars and cost.expected_seconds > left:
            reason = (f"cold embedding not started: {cost.line()}, {max(left, 0):.0f} s left")
            trial.set_user_attr("abandoned", reason)
            raise optuna.TrialPruned(reason)

    def record(self, trial: optuna.Trial, config: PipelineConfig, retriever: Retriever, log: StageLog,
               rows: list[dict[str, Any]], embeddings_before: tuple[int, int]) -> float:
        """Trial facts into the storage (user attrs) and artifacts into the trial folder; returns search ms/query."""
        hits, misses = self.components.embedding_counts()
        metric_names = [k for k in rows[0] if "@" in k]
        means = mean_scores({m: r[m] for m in metric_names} for r in rows)
        latency_ms = 1000 * sum(log.seconds.values()) / max(len(rows), 1)
        trial.set_user_attr("metrics", {**means, "search_ms_per_query": latency_ms, "queries": len(rows)})
        trial.set_user_attr("seconds", {**{f"build.{k}": v for k, v in retriever.build_log.seconds.items()},
                                        **{f"search.{k}": v for k, v in log.seconds.items()}})
        trial.set_user_attr("counts", {"embeddings_cached": hits - embeddings_before[0],
                                       "embeddings_computed": misses - embeddings_before[1],
                                       "reused_stages": sum(retriever.build_log.reused.values()),
                                       **retriever.build_log.counts})
        trial.set_user_attr("reused", retriever.build_log.reused)
        folder = trial_folder(self.folder, trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        with (folder / "per_query.jsonl").open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return latency_ms


def trial_folder(study_folder: Path, number: int) -> Path:
    """Where a trial's config and per-query results are written (and uploaded to its MLflow run from)."""
    return study_folder / f"trial-{number}"
