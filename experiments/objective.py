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

from evalsets import EvalSet, Query, json_line
from experiments.costs import embedding_cost
from experiments.runs import score, search_run
from experiments.metrics import DEFAULT_METRICS, mean_scores
from experiments.score_cache import ScoreCache, reusable, retrieval_address
from experiments.sampler import suggest_config
from experiments.space import SearchSpace
from pipelines import Components, PipelineConfig, Retriever, StageLog
from pipelines import Progress, corpus_fingerprint
from pipelines.embedders import WorkAbandoned


def worker_name() -> str:
    """``host:pid``: which process ran a trial (the loop or one of the `evolve worker` processes of the cluster)."""
    return f"{socket.gethostname()}:{os.getpid()}"


FIXED_CONFIG_ATTR = "evolve.fixed_config"
"""User attribute of an enqueued trial that scores this config as it is instead of sampling (the champion)."""
PER_QUERY_ATTR = "per_query"
"""User attribute: the primary metric of each query the trial scored, in the study's query order."""
REUSED_ATTR = "reused_scores"
"""User attribute, True when every query's scores came from the score cache (no retrieval ran)."""
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
        self.score_cache: ScoreCache | None = None
        """Per-query rows of pipelines already scored (None: every trial searches)."""
        self.corpus_key = corpus_fingerprint(tune.corpus)
        self.scored_metrics = tuple(dict.fromkeys((*DEFAULT_METRICS, metric)))

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
        fixed = trial.user_attrs.get(FIXED_CONFIG_ATTR)
        config = PipelineConfig.model_validate(fixed) if fixed else suggest_config(trial, self.space)
        trial.set_user_attr("config", json.loads(config.model_dump_json()))
        trial.set_user_attr("worker", worker_name())
        scorer = _TrialScorer(self, config, trial)
        rows: list[dict[str, Any]] = []
        done = 0
        for step, bound in enumerate(self.bounds):
            if self.abandon_at is not None and time.time() > self.abandon_at:
                trial.set_user_attr("abandoned", "out of time budget")
                raise optuna.TrialPruned(f"abandoned after {done} queries: out of time budget")
            rows += scorer.rows(self.queries[done:bound])
            done = bound
            value = mean_scores({self.metric: r[self.metric]} for r in rows)[self.metric]
            if self.multi_objective:
                continue
            trial.report(value, step)
            if bound < len(self.queries) and trial.should_prune():
                self.record(trial, config, scorer, rows)
                raise optuna.TrialPruned(f"{self.metric}={value:.4f} on {bound} queries")
        latency = self.record(trial, config, scorer, rows)
        return (value, latency) if self.multi_objective else value

    def refuse_unaffordable(self, trial: optuna.Trial, config: PipelineConfig) -> None:
        """Under a time budget, a cold embedding starts only when the time left can pay for it: a trial whose model
        would need longer to embed what the cache lacks (at this machine's measured rate) is pruned at once, with
        the estimate, instead of being abandoned after spending the rest of the budget on part of the corpus."""
        if self.abandon_at is None or config.dense is None:
            return
        chunks = self.components.chunks(config.chunking, self.tune.corpus, self.corpus_key, StageLog())
        cost = embedding_cost(config.dense.model, [c.text for c in chunks], self.components)
        left = self.abandon_at - time.time()
        if cost.cold_chars and cost.expected_seconds > left:
            reason = (f"cold embedding not started: {cost.line()}, {max(left, 0):.0f} s left")
            trial.set_user_attr("abandoned", reason)
            raise optuna.TrialPruned(reason)

    def record(self, trial: optuna.Trial, config: PipelineConfig, scorer: "_TrialScorer",
               rows: list[dict[str, Any]]) -> float:
        """Trial facts into the storage (user attrs) and artifacts into the trial folder; returns search ms/query.

        The primary metric's per-query values (in query order) go to the storage too: the loop's look gate
        compares a candidate with the champion (trial 0) query by query, wherever the trials ran."""
        hits, misses = self.components.embedding_counts()
        build = scorer.retriever.build_log if scorer.retriever is not None else StageLog()
        metric_names = [k for k in rows[0] if "@" in k]
        means = mean_scores({m: r[m] for m in metric_names} for r in rows)
        latency_ms = scorer.search_ms(rows)
        trial.set_user_attr("metrics", {**means, "search_ms_per_query": latency_ms, "queries": len(rows)})
        trial.set_user_attr(PER_QUERY_ATTR, [round(float(r[self.metric]), 6) for r in rows])
        trial.set_user_attr("seconds", {**{f"build.{k}": v for k, v in build.seconds.items()},
                                        **{f"search.{k}": v for k, v in scorer.log.seconds.items()}})
        trial.set_user_attr("counts", {"embeddings_cached": hits - scorer.embeddings_before[0],
                                       "embeddings_computed": misses - scorer.embeddings_before[1],
                                       "reused_stages": sum(build.reused.values()),
                                       "reused_query_scores": scorer.reused, **build.counts})
        trial.set_user_attr("reused", build.reused)
        if scorer.retriever is None:  # every row came from the score cache: no retrieval ran
            trial.set_user_attr(REUSED_ATTR, True)
        folder = trial_folder(self.folder, trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        with (folder / "per_query.jsonl").open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json_line(row))
        return latency_ms


class _TrialScorer:
    """One trial's rows: kept rows from the score cache, the rest searched with a retriever built on first need
    (a trial whose every row is kept builds nothing: no embedding, no index, no search)."""

    def __init__(self, objective: Objective, config: PipelineConfig, trial: optuna.Trial):
        self.objective, self.config, self.trial = objective, config, trial
        self.retriever: Retriever | None = None
        self.log = StageLog()
        self.reused = 0
        self.kept_ms: dict[str, float] = {}
        self.embeddings_before = objective.components.embedding_counts()
        cache = objective.score_cache if reusable(config, objective.components.catalog) else None
        self.cache = cache
        self.address = retrieval_address(config)
        self.corpus = objective.corpus_key

    def rows(self, queries: list[Query]) -> list[dict[str, Any]]:
        objective = self.objective
        kept = self.cache.get(self.address, self.corpus, queries, objective.tune.qrels, objective.scored_metrics) \
            if self.cache is not None else {}
        missing = [q for q in queries if q.query_id not in kept]
        fresh: dict[str, dict[str, Any]] = {}
        if missing:
            if self.retriever is None:
                objective.refuse_unaffordable(self.trial, self.config)
                self.retriever = Retriever(self.config, objective.components).build(objective.tune.corpus,
                                                                                    objective.stage_progress)
            before = sum(self.log.seconds.values())
            scored = score(search_run(self.retriever, missing, self.log), objective.tune.qrels, objective.scored_metrics)
            ms = 1000 * (sum(self.log.seconds.values()) - before) / len(missing)
            if self.cache is not None:
                self.cache.put(self.address, self.corpus, missing, objective.tune.qrels, objective.scored_metrics,
                               scored, ms)
            fresh = {row["query_id"]: row for row in scored}
        self.reused += len(kept)
        self.kept_ms.update({q: ms for q, (_, ms) in kept.items()})
        return [kept[q.query_id][0] if q.query_id in kept else fresh[q.query_id] for q in queries]

    def search_ms(self, rows: list[dict[str, Any]]) -> float:
        """Mean search ms per query: measured now for the rows searched, as measured then for the kept ones."""
        searched = len(rows) - sum(1 for r in rows if r["query_id"] in self.kept_ms)
        total = 1000 * sum(self.log.seconds.values()) + sum(self.kept_ms.get(r["query_id"], 0.0) for r in rows)
        return total / max(searched + len(self.kept_ms), 1)


def trial_folder(study_folder: Path, number: int) -> Path:
    """Where a trial's config and per-query results are written (and uploaded to its MLflow run from)."""
    return study_folder / f"trial-{number}"
