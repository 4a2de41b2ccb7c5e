"""One training run end to end: data in, a verified, content-addressed model out, logged to MLflow.

A run is identified by (kind, base model and its weights, data, settings): its checkpoints live under
``<store>/.work/<run key>/``, so a run stopped by a deadline, a crash or Ctrl-C goes on from its last checkpoint
when started again with the same inputs, and a finished run's model is found again rather than retrained.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.training.base import TRAINERS, Progress, TrainSettings, run_steps
from experiments.training.data import TrainingData
from pipelines import TrainedModel, TrainedModelStore, torch_device
from pipelines.embedders import resolve_model

MIN_EXAMPLES = 8
"""Fewer examples than this train nothing worth a study's time: refused with the count."""


class TrainingError(ValueError):
    """A training run that cannot start: too little data, a base that cannot be trained this way."""


@dataclass
class TrainingOutcome:
    model: TrainedModel | None
    """None while the run is unfinished (its deadline came first): run it again to go on."""
    report: dict[str, Any]


def run_key(kind: str, base: str, data: TrainingData, settings: TrainSettings) -> str:
    spec = resolve_model(base)
    text = json.dumps({"kind": kind, "base": spec.fingerprint, "data": data.sha256(),
                       "settings": settings.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def train_model(kind: str, base: str, data: TrainingData, settings: TrainSettings, components: Any,
                store: TrainedModelStore | None = None, deadline: float | None = None,
                progress: Progress | None = None) -> TrainingOutcome:
    """Train (or resume) a model of ``kind`` from ``base`` on ``data``; the model is stored when every step ran."""
    store = store or TrainedModelStore()
    if len(data.examples) < MIN_EXAMPLES:
        raise TrainingError(f"{len(data.examples)} training example(s) after the leak guard; at least {MIN_EXAMPLES} "
                            f"are needed (sources: {data.summary()['per_source'] or 'none'})")
    trainer = TRAINERS.get(kind)(base, data, settings, components)
    resolved = trainer.settings
    key = run_key(kind, base, data, resolved)
    workdir = store.root / ".work" / key
    done_marker = workdir / "model_id"
    if done_marker.is_file():  # finished before: the same inputs give the same model
        model = store.get(done_marker.read_text().strip())
        return TrainingOutcome(model, {**model.manifest.get("training", {}), "reused": True})
    started = time.perf_counter()
    result = run_steps(trainer, workdir, deadline, progress)
    report = {"run_key": key, **result, "device": torch_device(), "peak_memory_mb": peak_memory_mb(),
              "wall_seconds_this_call": round(time.perf_counter() - started, 1)}
    if not result["finished"]:
        return TrainingOutcome(None, report)
    export = Path(tempfile.mkdtemp(prefix=".export-", dir=store.root))
    trainer.export(export)
    base_spec = resolve_model(base)
    manifest = {"base_model": base, "base_fingerprint": base_spec.fingerprint, "licence": base_spec.licence,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "settings": resolved.model_dump(mode="json"), "seed": resolved.seed,
                "data": data.summary(), "training": report}
    model = store.save(kind, export, manifest)
    done_marker.write_text(model.model_id)
    for leftover in workdir.iterdir():  # the checkpoint is no longer needed; the marker stays
        if leftover != done_marker:
            leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    return TrainingOutcome(model, report)


def log_trained_model(model: TrainedModel, tracking_uri: str, experiment: str = "evolve-training") -> str:
    """An MLflow run for a trained model: its settings as params, data counts and cost as metrics, the manifest as
    an artifact, tags naming the model. Returns the run id."""
    import mlflow

    manifest = model.manifest
    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=model.model_id,
                            tags={"evolve.trained_model": model.model_id, "evolve.kind": model.kind,
                                  "evolve.base_model": model.base, "evolve.licence": model.licence,
                                  "evolve.sha256": model.sha256})
    run_id = run.info.run_id
    for name, value in manifest.get("settings", {}).items():
        client.log_param(run_id, name, value)
    client.log_param(run_id, "base_model", model.base)
    data, training = manifest.get("data", {}), manifest.get("training", {})
    metrics = {"examples": data.get("examples"), "negatives": data.get("negatives"),
               "dropped_as_evaluation_queries": data.get("dropped_as_evaluation_queries"),
               **{f"examples.{k}": v for k, v in data.get("per_source", {}).items()},
               **{k: training.get(k) for k in ("steps", "seconds", "loss_first", "loss_last", "peak_memory_mb")}}
    for name, value in metrics.items():
        if isinstance(value, (int, float)):
            client.log_metric(run_id, name, float(value))
    client.log_artifact(run_id, str(model.folder / "manifest.json"))
    client.set_terminated(run_id)
    return run_id
