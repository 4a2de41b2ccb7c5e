"""MLflow logging for studies: one parent run per study, one nested run per finished trial.

Trials are logged from Optuna's storage (``sync``), not from inside the objective, so logging is
idempotent: a process killed at any moment loses nothing, because the next run of the study (or
any worker) logs every finished trial that MLflow does not have yet, and never one twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

STUDY_TAG = "evolve.study"
TRIAL_TAG = "evolve.trial_number"
ROLE_TAG = "evolve.role"


def sqlite_tracking_uri(folder: Path) -> str:
    """A SQLite tracking store (mlflow.db) in ``folder`` (MLflow 3's file store is deprecated); a new one is a copy
    of a migrated empty store (experiments.mlflow_seed), not migrated again."""
    from experiments.mlflow_seed import seed_sqlite_store

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "mlflow.db"
    if not db.exists():
        seed_sqlite_store(db)
    return f"sqlite:///{db}"


def default_tracking_uri(root: Path) -> str:
    """Everything under one folder (tests, benchmarks): ``root/mlruns/mlflow.db``."""
    return sqlite_tracking_uri(root / "mlruns")


def metric_key(name: str) -> str:
    """MLflow metric names cannot hold '@': ndcg@10 is logged as ndcg_at_10."""
    return name.replace("@", "_at_")


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: MLflow params are flat."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    return {prefix: value}


def artifact_location(tracking_uri: str, artifact_root: Path | None) -> str | None:
    """Local artifact folder for a local store; with a tracking server (http[s]://) the server decides,
    so artifacts from every node land in one place (`mlflow server --serve-artifacts`)."""
    if artifact_root is None or tracking_uri.startswith(("http://", "https://", "databricks")):
        return None
    return artifact_root.resolve().as_uri()


class StudyTracker:
    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Path | None = None):
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            location = artifact_location(tracking_uri, artifact_root)
            try:
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
            except Exception:  # another worker created it a moment ago
                self.experiment_id = self.client.get_experiment_by_name(experiment).experiment_id
        else:
            self.experiment_id = found.experiment_id

    def parent_run(self, study_name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        """The study's parent run: found by tag, created on the first call (also by a worker)."""
        runs = self.client.search_runs([self.experiment_id],
                                       f"tags.`{STUDY_TAG}` = '{study_name}' and tags.`{ROLE_TAG}` = 'study'",
                                       max_results=1, order_by=["attributes.start_time ASC"])
        if runs:
            return runs[0].info.run_id
        run = self.client.create_run(self.experiment_id, run_name=study_name,
                                     tags={STUDY_TAG: study_name, ROLE_TAG: "study", **tags})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in flatten("", params).items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start:start + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(metric_key(k), float(v), now, step) for k, v in metrics.items() if v is not None]
        for start in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[start:start + 500])

    def logged_trials(self, study_name: str) -> set[int]:
        runs = self.client.search_runs([self.experiment_id],
                                       f"tags.`{STUDY_TAG}` = '{study_name}' and tags.`{ROLE_TAG}` = 'trial'",
                                       max_results=50_000)
        return {int(r.data.tags[TRIAL_TAG]) for r in runs}

    def log_trial(self, parent_id: str, study_name: str, trial: Any, artifacts: Path | None) -> str:
        """One nested run for a finished (complete or pruned) trial."""
        from mlflow.entities import RunStatus

        state = trial.state.name
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{trial.number}",
                                     start_time=int(trial.datetime_start.timestamp() * 1000),
                                     tags={"mlflow.parentRunId": parent_id, STUDY_TAG: study_name,
                                           ROLE_TAG: "trial", TRIAL_TAG: str(trial.number),
                                           "evolve.trial_state": state})
        run_id = run.info.run_id
        self.log_params(run_id, trial.user_attrs.get("config", trial.params))
        metrics = dict(trial.user_attrs.get("metrics", {}))
        metrics.update({f"seconds.{k}": v for k, v in trial.user_attrs.get("seconds", {}).items()})
        metrics.update({f"count.{k}": v for k, v in trial.user_attrs.get("counts", {}).items()})
        for step, value in sorted(trial.intermediate_values.items()):
            self.log_metrics(run_id, {"intermediate": value}, step=step)
        self.log_metrics(run_id, metrics)
        if artifacts is not None and artifacts.is_dir():
            self.client.log_artifacts(run_id, str(artifacts))
        end = int(trial.datetime_complete.timestamp() * 1000) if trial.datetime_complete else None
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED if state == "COMPLETE"
                                                               else RunStatus.KILLED), end_time=end)
        return run_id

    def log_study_files(self, parent_id: str, folder: Path) -> None:
        self.client.log_artifacts(parent_id, str(folder), artifact_path="study")

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
