"""Optuna studies over a search space: resumable, prunable, distributable, logged to MLflow.

The study's spec (evaluation set, space, metric, seed, budget) is stored in the study itself, so
``evolve worker --study NAME --storage URL`` on another machine rebuilds the same objective from
the storage alone. Stale trials of a killed process are failed by Optuna's heartbeat and retried
with the same parameters; finished trials live in the storage and are never re-run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from pydantic import BaseModel, ConfigDict, Field

from evalsets import EvalSet
from experiments.evaluate import evaluate, score_queries
from experiments.metrics import mean_scores
from experiments.sampler import suggest_config
from experiments.space import SearchSpace, space_from_dict
from experiments.splits import seeded_order, tune_and_heldout
from experiments.tracking import StudyTracker, default_tracking_uri
from pipelines import Components, PipelineConfig, Retriever, StageLog
from pipelines.components import Progress, default_cache_path
from pipelines.embedders import WorkAbandoned

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Some regimes for parameter", category=UserWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("mlflow").setLevel(logging.WARNING)
logger = logging.getLogger(__name__)

SPEC_ATTR = "evolve.spec"
CLOSED_ATTR = "evolve.closed"
"""Set when the process that owns a study is done with it (workers following the storage skip it)."""
MAX_CONSECUTIVE_FAILURES = 10
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
"""Trial states a study counts as done (pruned trials count: they used their budget)."""
TrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


class StudySpec(BaseModel):
    """Everything needed to rebuild a study's objective anywhere (kept in the study's user attrs)."""

    model_config = ConfigDict(extra="forbid")

    study_name: str
    evalset: str
    space: dict[str, Any]
    metric: str = "ndcg@10"
    seed: int = 0
    n_trials: int | None = None
    holdout_fraction: float = Field(0.3, gt=0, lt=1)
    use_train_split: bool = True
    multi_objective: bool = False
    prune: bool = True
    prune_fractions: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0])
    max_tune_queries: int | None = Field(None, ge=1, description="cap the tuning queries (seeded) for speed")
    fold: int | None = Field(None, ge=0, description="cross-fitting: hold back this fold, tune on the others")
    folds: int = Field(5, ge=2, le=20)

    def search_space(self) -> SearchSpace:
        return space_from_dict(self.space, f"study {self.study_name} space")


def default_storage(project_dir: Path) -> str:
    path = (project_dir / ".evolve" / "optuna.db").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class HeartbeatStorage(optuna.storages.RDBStorage):
    """RDB storage whose stale-trial check also covers trials that never got a heartbeat.

    A process killed between Optuna's ask (the trial row) and its first heartbeat leaves a RUNNING
    trial with no heartbeat row, and Optuna's check skips those, so it stayed RUNNING forever. Here it
    is stale once older than the grace period, and Optuna fails (and retries) it before the next trial
    like any other stale trial.
    """

    def orphaned_trial_ids(self, study_id: int) -> list[int]:
        import datetime

        import sqlalchemy

        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        cutoff = datetime.datetime.now() - datetime.timedelta(seconds=grace)  # datetime_start is the client's now
        old = [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False,
                                                        states=(optuna.trial.TrialState.RUNNING,))
               if t.datetime_start is not None and t.datetime_start < cutoff]
        if not old:
            return []
        query = sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids").bindparams(
            sqlalchemy.bindparam("ids", expanding=True))
        with self.engine.connect() as connection:
            beating = {row[0] for row in connection.execute(query, {"ids": old})}
        return [trial_id for trial_id in old if trial_id not in beating]

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [trial_id for trial_id in self.orphaned_trial_ids(study_id) if trial_id not in stale]


def open_storage(url: str, heartbeat: int | None = None, grace: int | None = None) -> optuna.storages.BaseStorage:
    """RDB storage with heartbeats: a trial whose process died is failed and retried once with its params.

    A trial is stale after ``grace`` seconds without a heartbeat (EVOLVE_OPTUNA_HEARTBEAT / _GRACE
    override the 10 s / 60 s defaults), or, if it never got one, ``grace`` seconds after it started.
    """
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    heartbeat = heartbeat or int(os.environ.get("EVOLVE_OPTUNA_HEARTBEAT", 10))
    grace = grace or int(os.environ.get("EVOLVE_OPTUNA_GRACE", 60))
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return HeartbeatStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                                    grace_period=grace,
                                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
        except (IntegrityError, ProgrammingError, OperationalError):
            # processes starting together race to create the schema (PostgreSQL: duplicate type); the loser retries
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def open_studies(storage_url: str) -> list[str]:
    """Studies with a stored spec and a trial target they have not reached, newest first."""
    storage = open_storage(storage_url)
    names = []
    for summary in reversed(optuna.get_all_study_summaries(storage, include_best_trial=False)):
        spec = summary.user_attrs.get(SPEC_ATTR)
        if not spec or not spec.get("n_trials") or summary.user_attrs.get(CLOSED_ATTR):
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        if len(finished) < spec["n_trials"]:
            names.append(summary.study_name)
    return names


class StudyRunner:
    def __init__(self, spec: StudySpec, storage_url: str, project_dir: Path, tracking_uri: str | None = None,
                 components: Components | None = None, worker_seed: int = 0):
        self.spec = spec
        self.space = spec.search_space()
        self.project_dir = project_dir
        self.storage_url = storage_url
        self.storage = open_storage(storage_url)
        self.components = components or Components(default_cache_path(project_dir))
        self.tracking_uri = tracking_uri or default_tracking_uri(project_dir)
        self.tracker = StudyTracker(self.tracking_uri, "evolve-studies", project_dir / "mlruns" / "artifacts")
        self.folder = project_dir / ".evolve" / "studies" / spec.study_name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tune, self.heldout = tune_and_heldout(spec.evalset, spec.holdout_fraction, spec.seed,
                                                   spec.use_train_split, spec.fold, spec.folds)
        order = seeded_order(self.tune, spec.seed)
        if spec.max_tune_queries:
            order = order[:spec.max_tune_queries]
        self.query_order = self._ordered(self.tune, order)
        self.study = self._create_or_load(worker_seed)
        self.abandon_at: float | None = None
        """Wall-clock time (time.time()) after which a running trial is abandoned at its next step (budgets)."""
        self.stage_progress: Progress | None = None
        """(stage, done, total) while a trial builds its indexes: a cold embedding can take many minutes."""
        self.parent_run_id = self.tracker.parent_run(
            spec.study_name, {"spec": spec.model_dump(exclude={"space"}), "space": spec.space},
            {"evolve.storage": storage_url if "@" not in storage_url else storage_url.split("@")[-1]})

    @staticmethod
    def _ordered(evalset: EvalSet, order: list[str]) -> list:
        by_id = {q.query_id: q for q in evalset.queries}
        return [by_id[i] for i in order]

    @classmethod
    def from_storage(cls, study_name: str, storage_url: str, project_dir: Path, evalset: str | None = None,
                     wait_seconds: float = 0.0, **kwargs: Any) -> "StudyRunner":
        """Rebuild a runner from the spec stored in the study (what `evolve worker` does).

        ``wait_seconds``: how long to wait for the study to appear (a worker may start before `evolve tune`).
        """
        import time

        storage = open_storage(storage_url)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                study = optuna.load_study(study_name=study_name, storage=storage)
                if SPEC_ATTR in study.user_attrs:
                    break
            except KeyError:
                pass
            if time.monotonic() >= deadline:
                raise KeyError(f"no study named {study_name!r} in {storage_url}")
            time.sleep(1.0)
        data = dict(study.user_attrs[SPEC_ATTR])
        if evalset:
            data["evalset"] = evalset
        return cls(StudySpec.model_validate(data), storage_url, project_dir, **kwargs)

    def _create_or_load(self, worker_seed: int) -> optuna.Study:
        spec = self.spec
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0) if spec.prune \
            else optuna.pruners.NopPruner()
        directions = ["maximize", "minimize"] if spec.multi_objective else ["maximize"]
        study = optuna.create_study(study_name=spec.study_name, storage=self.storage, pruner=pruner,
                                    directions=directions, load_if_exists=True)
        # The seed also counts the trials already stored: a resumed process seeded like the first one would
        # draw the first one's random start-up configs again. Still reproducible from the storage's state.
        study.sampler = optuna.samplers.TPESampler(seed=spec.seed + worker_seed + 7919 * len(study.trials),
                                                   multivariate=True, group=True, n_startup_trials=8)
        if SPEC_ATTR not in study.user_attrs:
            study.set_user_attr(SPEC_ATTR, json.loads(spec.model_dump_json()))
        return study

    # --- the objective -------------------------------------------------------------------------
    def objective(self, trial: optuna.Trial) -> float | tuple[float, float]:
        try:
            return self._objective(trial)
        except WorkAbandoned as err:
            trial.set_user_attr("abandoned", str(err))
            raise optuna.TrialPruned(f"abandoned: {err}") from None

    def _objective(self, trial: optuna.Trial) -> float | tuple[float, float]:
        config = suggest_config(trial, self.space)
        trial.set_user_attr("config", json.loads(config.model_dump_json()))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        hits_before, misses_before = self.components.embedding_counts()
        retriever = Retriever(config, self.components).build(self.tune.corpus, self.stage_progress)
        log = StageLog()
        queries = self.query_order
        bounds = sorted({max(1, round(f * len(queries))) for f in self.spec.prune_fractions} | {len(queries)})
        rows: list[dict[str, Any]] = []
        done = 0
        for step, bound in enumerate(bounds):
            if self.abandon_at is not None and time.time() > self.abandon_at:
                trial.set_user_attr("abandoned", "out of time budget")
                raise optuna.TrialPruned(f"abandoned after {done} queries: out of time budget")
            rows += score_queries(retriever, queries[done:bound], self.tune.qrels, log)
            done = bound
            value = mean_scores({self.spec.metric: r[self.spec.metric]} for r in rows)[self.spec.metric]
            if self.spec.multi_objective:
                continue
            trial.report(value, step)
            if bound < len(queries) and trial.should_prune():
                self._record(trial, config, retriever, log, rows, hits_before, misses_before)
                raise optuna.TrialPruned(f"{self.spec.metric}={value:.4f} on {bound} queries")
        latency = self._record(trial, config, retriever, log, rows, hits_before, misses_before)
        return (value, latency) if self.spec.multi_objective else value

    def _record(self, trial: optuna.Trial, config: PipelineConfig, retriever: Retriever, log: StageLog,
                rows: list[dict[str, Any]], hits_before: int, misses_before: int) -> float:
        """Trial facts into the storage (user attrs) and artifacts into the trial folder."""
        hits, misses = self.components.embedding_counts()
        metric_names = [k for k in rows[0] if "@" in k]
        means = mean_scores({m: r[m] for m in metric_names} for r in rows)
        latency_ms = 1000 * sum(log.seconds.values()) / max(len(rows), 1)
        trial.set_user_attr("metrics", {**means, "search_ms_per_query": latency_ms, "queries": len(rows)})
        trial.set_user_attr("seconds", {**{f"build.{k}": v for k, v in retriever.build_log.seconds.items()},
                                        **{f"search.{k}": v for k, v in log.seconds.items()}})
        trial.set_user_attr("counts", {"embeddings_cached": hits - hits_before,
                                       "embeddings_computed": misses - misses_before,
                                       "reused_stages": sum(retriever.build_log.reused.values()),
                                       **retriever.build_log.counts})
        trial.set_user_attr("reused", retriever.build_log.reused)
        folder = self.folder / f"trial-{trial.number}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        with (folder / "per_query.jsonl").open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return latency_ms

    # --- running ---------------------------------------------------------------------------------
    def finished_count(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def log_trial_callback(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state not in FINISHED:
            return
        # under load another worker may have failed this trial as stale (missed heartbeats) and queued a retry;
        # the storage decides, so MLflow never holds a trial the study does not count
        stored = self.storage.get_trial(trial._trial_id)
        if stored.state in FINISHED:
            self.tracker.log_trial(self.parent_run_id, self.spec.study_name, trial, self.folder / f"trial-{trial.number}")

    def _its_worker_will_log(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Another live worker finished this trial and is logging it now (don't log it twice).

        Same host: ask whether its process is alive. Another host: trust it for a while after the trial ended.
        """
        import datetime

        host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if not pid.isdigit() or int(pid) == os.getpid():
            return False
        if host == socket.gethostname():
            try:
                os.kill(int(pid), 0)
                return True
            except (ProcessLookupError, PermissionError):
                return False
        ended = trial.datetime_complete or datetime.datetime.now()
        return (datetime.datetime.now() - ended).total_seconds() < 120

    def sync_mlflow(self) -> int:
        """Log every finished trial that MLflow lacks (after a crash, say). Returns how many."""
        logged = self.tracker.logged_trials(self.spec.study_name)
        missing = [t for t in self.study.get_trials(deepcopy=False) if t.number not in logged
                   and t.state in FINISHED
                   and not self._its_worker_will_log(t)]
        for trial in missing:
            self.tracker.log_trial(self.parent_run_id, self.spec.study_name, trial, self.folder / f"trial-{trial.number}")
        return len(missing)

    def run(self, n_trials: int | None = None, timeout: float | None = None,
            callbacks: list[TrialCallback] | None = None) -> optuna.Study:
        """Run until the study holds ``n_trials`` finished trials (all processes together) or time is up."""
        from optuna.study import MaxTrialsCallback

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        target = n_trials or self.spec.n_trials
        stop = [MaxTrialsCallback(target, states=FINISHED)] if target else []
        if target is not None and self.finished_count() >= target:
            return self.study
        failures: list[int] = []

        def stop_on_repeated_failures(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            """A space whose trials all fail (a bug, a broken model) must not spin through thousands of them."""
            failures.append(1 if trial.state == optuna.trial.TrialState.FAIL else 0)
            if len(failures) >= MAX_CONSECUTIVE_FAILURES and all(failures[-MAX_CONSECUTIVE_FAILURES:]):
                logger.error("study %s: %d trials in a row failed; stopping it", self.spec.study_name,
                             MAX_CONSECUTIVE_FAILURES)
                study.stop()

        if self.abandon_at is not None:  # embedding also stops between batches when time is up
            self.components.stop_check = lambda: time.time() > self.abandon_at
        try:
            self.study.optimize(self.objective, timeout=timeout, catch=(Exception,),
                                callbacks=[self.log_trial_callback, stop_on_repeated_failures, *stop,
                                           *(callbacks or [])])
        finally:
            self.components.stop_check = None
        return self.study

    def close(self, why: str) -> None:
        """Tell `evolve worker --follow` processes this study wants no more trials."""
        self.study.set_user_attr(CLOSED_ATTR, why)

    # --- the end of a study -------------------------------------------------------------------------
    def best_config(self) -> PipelineConfig:
        trials = self.study.best_trials if self.spec.multi_objective else [self.study.best_trial]
        best = max(trials, key=lambda t: t.values[0])
        return PipelineConfig.model_validate({**best.user_attrs["config"], "name": f"{self.spec.study_name}-best"})

    def finish(self) -> dict[str, Any]:
        """Held-out score of the best config, plots, best config YAML and a summary on the parent run."""
        self.sync_mlflow()
        trials = self.study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
        if not any(t.state.name == "COMPLETE" for t in trials):
            raise RuntimeError(f"study {self.spec.study_name} has no complete trial yet")
        best = self.best_config()
        heldout = evaluate(self.heldout, best, self.components)
        cached = sum(t.user_attrs.get("counts", {}).get("embeddings_cached", 0) for t in finished)
        computed = sum(t.user_attrs.get("counts", {}).get("embeddings_computed", 0) for t in finished)
        durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in finished]
        summary = {
            "study": self.spec.study_name, "evalset": self.spec.evalset, "metric": self.spec.metric,
            "trials_finished": len(finished), "trials_pruned": sum(t.state.name == "PRUNED" for t in trials),
            "trials_failed": sum(t.state.name == "FAIL" for t in trials),
            "tune_queries": len(self.query_order), "tune_split": self.tune.split,
            "best_tune_value": max(t.values[0] for t in trials if t.state.name == "COMPLETE"),
            "heldout_split": self.heldout.split, "heldout_queries": len(self.heldout.queries),
            "heldout": heldout.means, "heldout_search_ms_per_query": heldout.search_ms_per_query,
            "embedding_cache_fraction": cached / (cached + computed) if cached + computed else 1.0,
            "embeddings_cached": cached, "embeddings_computed": computed,
            "trial_seconds_total": sum(durations),
            "best_config": json.loads(best.model_dump_json()),
        }
        (self.folder / "best_config.yaml").write_text(best.to_yaml(), encoding="utf-8")
        (self.folder / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        heldout.write_per_query(self.folder / "heldout_per_query.jsonl")
        self._plots()
        self.tracker.log_metrics(self.parent_run_id, {f"heldout.{k}": v for k, v in heldout.means.items()}
                                 | {"best_tune_value": summary["best_tune_value"],
                                    "embedding_cache_fraction": summary["embedding_cache_fraction"],
                                    "trials_finished": len(finished)})
        self.tracker.log_study_files(self.parent_run_id, self.folder_for_upload())
        return summary

    def folder_for_upload(self) -> Path:
        upload = self.folder / "upload"
        upload.mkdir(exist_ok=True)
        for name in ("best_config.yaml", "summary.json", "heldout_per_query.jsonl"):
            if (self.folder / name).exists():
                (upload / name).write_bytes((self.folder / name).read_bytes())
        for png in (self.folder / "plots").glob("*.png"):
            (upload / png.name).write_bytes(png.read_bytes())
        return upload

    def _plots(self) -> None:
        os.environ.setdefault("MPLBACKEND", "Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm

        plots = self.folder / "plots"
        plots.mkdir(exist_ok=True)
        logging.getLogger("optuna").setLevel(logging.ERROR)
        makers: dict[str, Callable[[], Any]] = {}
        if self.spec.multi_objective:
            makers["pareto_front"] = lambda: ovm.plot_pareto_front(
                self.study, target_names=[self.spec.metric, "search ms/query"])
        else:
            makers["optimization_history"] = lambda: ovm.plot_optimization_history(self.study)
            makers["param_importances"] = lambda: ovm.plot_param_importances(self.study)
            makers["intermediate_values"] = lambda: ovm.plot_intermediate_values(self.study)
        for name, make in makers.items():
            try:
                axes = make()
            except (ValueError, RuntimeError) as err:  # e.g. importances need 2+ complete trials
                (plots / f"{name}.skipped.txt").write_text(str(err))
                continue
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(9, 5)
            figure.tight_layout()
            figure.savefig(plots / f"{name}.png", dpi=100)
            plt.close(figure)

