"""Optuna studies over a search space: resumable, prunable, distributable, logged to MLflow.

The study's spec (evaluation set, space, metric, seed, budget) is stored in the study itself, so
``evolve worker --study NAME --storage URL`` on another machine rebuilds the same objective from
the storage alone. Stale trials of a killed process are failed by Optuna's heartbeat and retried
with the same parameters; finished trials live in the storage and are never re-run.

:class:`StudyRunner` wires the parts, each in its own module: the storage (:mod:`experiments.storage`),
the objective (:mod:`experiments.objective`), MLflow logging of trials (:mod:`experiments.trial_log`)
and the end-of-study report (:mod:`experiments.report`).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from experiments.evaluate import evaluate
from experiments.objective import FIXED_CONFIG_ATTR, PER_QUERY_ATTR, REUSED_ATTR, Objective, worker_name
from experiments.score_cache import ScoreCache
from experiments.report import study_summary, write_report
from experiments.study_spec import StudySpec
from experiments.splits import seeded_order
from experiments.storage import CLOSED_ATTR, FINISHED, SPEC_ATTR, finished, open_storage, stored_spec
from experiments.tracking import STUDY_TAG, TRIAL_TAG, StudyTracker, default_tracking_uri
from experiments.trial_log import TrialLog
from pipelines import Components, ModelCatalog, PipelineConfig

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Some regimes for parameter", category=UserWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("mlflow").setLevel(logging.WARNING)
logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 10
ROLE_ATTR = "evolve.role"
"""User attribute of trials enqueued for a reason: 'champion' for the champion's trial 0."""
TrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


def _taken_back(err: BaseException) -> bool:
    """Optuna's refusal to record a result for a trial that is already finished (another process failed it as
    stale: its heartbeat was missed). Optuna 4 raises it as a ValueError, and its post-processing then replaces it
    with an AssertionError ("Should not reach.") whose context is that ValueError."""
    for seen in (err, err.__context__):
        if isinstance(seen, ValueError) and str(seen).startswith("Cannot tell a ") and str(seen).endswith(" trial."):
            return True
    return False


def open_study(spec: StudySpec, storage: optuna.storages.BaseStorage, worker_seed: int = 0) -> optuna.Study:
    """Create the study (storing its spec) or load it, with its pruner and a sampler seeded for this process."""
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0) if spec.prune \
        else optuna.pruners.NopPruner()
    directions = ["maximize", "minimize"] if spec.multi_objective else ["maximize"]
    study = optuna.create_study(study_name=spec.study_name, storage=storage, pruner=pruner,
                                directions=directions, load_if_exists=True)
    # The seed also counts the trials already stored: a resumed process seeded like the first one would
    # draw the first one's random start-up configs again. Still reproducible from the storage's state.
    study.sampler = optuna.samplers.TPESampler(seed=spec.seed + worker_seed + 7919 * len(study.trials),
                                               multivariate=True, group=True, n_startup_trials=8)
    if SPEC_ATTR not in study.user_attrs:
        study.set_user_attr(SPEC_ATTR, json.loads(spec.model_dump_json()))
    return study


def _on_objective(name: str, doc: str) -> property:
    """A runner attribute that is the objective's (what callers set on the runner, the running trial reads)."""
    return property(lambda runner: getattr(runner.objective, name),
                    lambda runner, value: setattr(runner.objective, name, value), doc=doc)


@dataclass(frozen=True)
class StudyPlaces:
    """Where studies keep what they write. The agent's ProjectPaths decides: experiments knows no project layout."""

    studies: Path
    """A study's files go to ``studies/<study name>/``."""
    tracking_uri: str
    artifact_root: Path | None
    embedding_cache: Path
    score_cache: Path | None = None
    """Per-query scores of pipelines already scored (experiments.score_cache); None: trials always search."""
    catalog: ModelCatalog | None = None
    """Where the model names of the study's space resolve (None: this process's, from its variables)."""

    @classmethod
    def under(cls, folder: Path, tracking_uri: str | None = None) -> "StudyPlaces":
        """Everything below one folder (tests, benchmarks): studies/, mlruns/, embeddings.sqlite, scores.sqlite."""
        return cls(folder / "studies", tracking_uri or default_tracking_uri(folder), folder / "mlruns" / "artifacts",
                   folder / "embeddings.sqlite", folder / "scores.sqlite")


class StudyRunner:
    """One study in this process: run trials until the study's target or a stop rule, then report.

    ``places``: a :class:`StudyPlaces`, or a folder for everything (:meth:`StudyPlaces.under`).
    """

    def __init__(self, spec: StudySpec, storage_url: str, places: StudyPlaces | Path, tracking_uri: str | None = None,
                 components: Components | None = None, worker_seed: int = 0):
        places = places if isinstance(places, StudyPlaces) else StudyPlaces.under(Path(places), tracking_uri)
        self.spec = spec
        self.places = places
        self.storage_url = storage_url
        self.storage = open_storage(storage_url)
        self.components = components or Components(places.embedding_cache, places.catalog)
        self.tracking_uri = tracking_uri or places.tracking_uri
        self.tracker = StudyTracker(self.tracking_uri, "evolve-studies", places.artifact_root)
        self.folder = places.studies / spec.study_name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tune, self.heldout = spec.split()
        by_id = {q.query_id: q for q in self.tune.queries}
        self.query_order = [by_id[i] for i in seeded_order(self.tune, spec.seed)[:spec.max_tune_queries]]
        self.objective = Objective(spec.search_space(self.components.catalog), self.tune, self.query_order,
                                   self.components, self.folder, spec.metric, spec.prune_fractions,
                                   spec.multi_objective)
        if places.score_cache is not None:
            self.objective.score_cache = ScoreCache(places.score_cache)
        self.study = open_study(spec, self.storage, worker_seed)
        self.parent_run_id = self.tracker.parent_run(
            spec.study_name, {"spec": spec.model_dump(exclude={"space"}), "space": spec.space},
            {"evolve.storage": storage_url if "@" not in storage_url else storage_url.split("@")[-1]})
        self.trial_log = TrialLog(self.tracker, self.storage, self.study, self.parent_run_id, self.folder)

    @classmethod
    def from_storage(cls, study_name: str, storage_url: str, places: StudyPlaces | Path, evalset: str | None = None,
                     wait_seconds: float = 0.0, **kwargs: Any) -> "StudyRunner":
        """Rebuild a runner from the spec stored in the study (what `evolve worker` does).

        ``wait_seconds``: how long to wait for the study to appear (a worker may start before `evolve tune`).
        """
        data = stored_spec(study_name, storage_url, wait_seconds)
        if evalset:
            data["evalset"] = evalset
        return cls(StudySpec.model_validate(data), storage_url, places, **kwargs)

    # --- what a running trial is told (kept on the objective) ------------------------------------------
    abandon_at = _on_objective("abandon_at", "Wall-clock time (time.time()) after which a running trial is "
                                             "abandoned at its next step (budgets).")
    stage_progress = _on_objective("stage_progress", "(stage, done, total) while a trial builds its indexes: a cold "
                                                     "embedding can take many minutes.")

    # --- running ---------------------------------------------------------------------------------
    def finished_count(self) -> int:
        return len(finished(self.study))

    def sync_mlflow(self) -> int:
        """Log every finished trial that MLflow lacks (after a crash, say). Returns how many."""
        return self.trial_log.sync()

    def enqueue_first(self, champion: PipelineConfig | None = None) -> list[dict[str, Any]]:
        """A new study starts with the champion as it is (trial 0: every candidate is compared with it on the same
        tuning queries, and the best so far starts from it), then what costs least: BM25 alone (when the space
        allows it), then each dense model the cache already holds for this corpus, cheapest first; the sampler
        draws the rest. Only the first process of a study does this (a resumed study or a worker finds trials
        and leaves the order alone). Returns the params enqueued after the champion."""
        if self.study.trials:
            return []
        if champion is not None:
            self.study.enqueue_trial({}, user_attrs={FIXED_CONFIG_ATTR: json.loads(champion.model_dump_json()),
                                                     ROLE_ATTR: "champion"})
        space = self.objective.space
        if len(space.dense_models) < 2:
            return []
        from experiments.costs import cost_table
        from experiments.sampler import first_chunking

        first: list[dict[str, Any]] = []
        if "none" in space.dense_models and space.lexical is not None:
            first.append({"dense_model": "none"})
        costs = cost_table(space.dense_models, self.tune.corpus, first_chunking(space), self.components)
        first += [{"dense_model": c.model} for c in costs if c.cold_chars == 0]
        for params in first:
            self.study.enqueue_trial(params, skip_if_exists=True)
        return first

    def run(self, n_trials: int | None = None, timeout: float | None = None,
            callbacks: list[TrialCallback] | None = None, champion: PipelineConfig | None = None) -> optuna.Study:
        """Run until the study holds ``n_trials`` finished trials (all processes together) or time is up.
        ``champion``: scored first, as trial 0 of a new study (:meth:`enqueue_first`)."""
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

        self.enqueue_first(champion)
        abandon_at = self.abandon_at
        if abandon_at is not None:  # embedding also stops between batches when time is up
            self.components.stop_check = lambda: time.time() > abandon_at
        started = time.monotonic()
        try:
            while True:
                left = None if timeout is None else timeout - (time.monotonic() - started)
                if left is not None and left <= 0:
                    break
                try:
                    self.study.optimize(self.objective, timeout=left, catch=(Exception,),
                                        callbacks=[self.trial_log, stop_on_repeated_failures, *stop,
                                                   *(callbacks or [])])
                    break
                except (ValueError, AssertionError) as err:
                    if not _taken_back(err):
                        raise
                    # another process of the study found this trial's heartbeat stale (a loaded node) and failed
                    # it; its result is not told twice, and this process goes on with the next trial
                    logger.warning("study %s: a trial of this process was failed by another as stale (%s); going on",
                                   self.spec.study_name, err)
                    if target is not None and self.finished_count() >= target:
                        break
        finally:
            self.components.stop_check = None
        return self.study

    def wait_for_workers(self, seconds: float, should_stop: Callable[[], bool] = lambda: False,
                         poll: float = 0.5) -> bool:
        """Wait up to ``seconds`` until another process (an `evolve worker --follow` on a GPU node) has started a
        trial of this study, so that a coordinator on a slow node leaves the first trials to the workers. True when
        one did; False when the wait ran out (the caller then runs the trials itself) or ``should_stop``."""
        me = worker_name()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not should_stop():
            trials = self.study.get_trials(deepcopy=False)
            if any(t.user_attrs.get("worker", me) != me for t in trials):
                return True
            time.sleep(poll)
        return False

    def close(self, why: str) -> None:
        """Tell `evolve worker --follow` processes this study wants no more trials."""
        self.study.set_user_attr(CLOSED_ATTR, why)

    # --- the end of a study -------------------------------------------------------------------------
    def best(self) -> tuple[PipelineConfig, float] | None:
        """The best config and its tuning value (the first objective's); None while no trial is complete."""
        if not self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            return None
        trials = self.study.best_trials if self.spec.multi_objective else [self.study.best_trial]
        best = max(trials, key=lambda t: t.values[0])
        config = PipelineConfig.model_validate({**best.user_attrs["config"], "name": f"{self.spec.study_name}-best"})
        return config, best.values[0]

    def finalists(self, n: int) -> list[tuple[PipelineConfig, float, int]]:
        """The ``n`` best complete trials with distinct configs, best first: (config, tuning value, trial number).
        Trials that differ only in what retrieval does not see (generation settings) are distinct here: the
        answer stage is what tells them apart."""
        trials = sorted(self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                        key=lambda t: (-t.values[0], t.number))
        out, seen = [], set()
        for trial in trials:
            config = PipelineConfig.model_validate({**trial.user_attrs["config"],
                                                    "name": f"{self.spec.study_name}-trial-{trial.number}"})
            address = config.behaviour_sha256()
            if address not in seen:
                seen.add(address)
                out.append((config, trial.values[0], trial.number))
            if len(out) == n:
                break
        return out

    def champion_trial(self) -> optuna.trial.FrozenTrial | None:
        """The champion's trial (trial 0 of a study the loop started), when it completed."""
        return next((t for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                     if t.user_attrs.get(ROLE_ATTR) == "champion"), None)

    def tuning_differences(self, config: PipelineConfig) -> list[float] | None:
        """Per-query differences (``config`` minus the champion) of the primary metric on the study's tuning queries,
        from the complete trials that scored each (the same queries, in the same order); None when either has no
        complete trial here."""
        champion = self.champion_trial()
        address = config.behaviour_sha256()
        trial = next((t for t in sorted(self.study.get_trials(deepcopy=False,
                                                               states=(optuna.trial.TrialState.COMPLETE,)),
                                        key=lambda t: -t.values[0])
                      if PipelineConfig.model_validate({**t.user_attrs["config"], "name": ""}).behaviour_sha256()
                      == address), None)
        if champion is None or trial is None:
            return None
        mine, theirs = trial.user_attrs.get(PER_QUERY_ATTR), champion.user_attrs.get(PER_QUERY_ATTR)
        if not mine or not theirs or len(mine) != len(theirs):
            return None
        return [a - b for a, b in zip(mine, theirs)]

    def reused_count(self) -> int:
        """Trials of this study whose every query score came from the score cache (no retrieval ran)."""
        return sum(1 for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get(REUSED_ATTR))

    def log_trial_metrics(self, trial_number: int, metrics: dict[str, float]) -> None:
        """Metrics measured after a trial finished (a finalist's judged answers) onto its MLflow run."""
        found = self.tracker.client.search_runs(
            [self.tracker.experiment_id], f"tags.`{STUDY_TAG}` = '{self.spec.study_name}' and "
                                          f"tags.`{TRIAL_TAG}` = '{trial_number}'", max_results=1)
        if found:
            self.tracker.log_metrics(found[0].info.run_id, metrics)

    def best_config(self) -> PipelineConfig:
        found = self.best()
        if found is None:
            raise RuntimeError(f"study {self.spec.study_name} has no complete trial yet")
        return found[0]

    def finish(self) -> dict[str, Any]:
        """Held-out score of the best config, plots, best config YAML and a summary on the parent run."""
        self.sync_mlflow()
        best = self.best_config()
        heldout = evaluate(self.heldout, best, self.components)
        summary = study_summary(self.study, self.spec, self.tune, len(self.query_order), best, heldout, self.heldout)
        upload = write_report(self.folder, self.study, summary, best, heldout, self.spec.multi_objective)
        self.tracker.log_metrics(self.parent_run_id, {f"heldout.{k}": v for k, v in heldout.means.items()}
                                 | {"best_tune_value": summary["best_tune_value"],
                                    "embedding_cache_fraction": summary["embedding_cache_fraction"],
                                    "trials_finished": summary["trials_finished"]})
        self.tracker.log_study_files(self.parent_run_id, upload)
        return summary
