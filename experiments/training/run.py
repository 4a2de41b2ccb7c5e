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
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.tracking import artifact_location
from experiments.training.base import TRAINERS, Progress, TrainSettings, run_steps
from experiments.training.data import TrainingData, validation_split
from pipelines import ModelCatalog, TrainedModel, TrainedModelError, TrainedModelStore, is_trained, torch_device
from pipelines.embedders import resolve_model

MIN_EXAMPLES = 8
"""Fewer examples than this train nothing worth a study's time: refused with the count."""
MIN_VALIDATION_EXAMPLES = 20
"""Fewer held-out examples than this choose epochs by noise: the kind's epochs are used instead."""


class TrainingError(ValueError):
    """A training run that cannot start: too little data, a base that cannot be trained this way."""


@dataclass
class TrainingOutcome:
    model: TrainedModel | None
    """None while the run is unfinished (its deadline came first): run it again to go on."""
    report: dict[str, Any]


def run_key(kind: str, base: str, data: TrainingData, settings: TrainSettings, catalog: ModelCatalog) -> str:
    """The identity of a run's inputs (a run without a validation share keeps the key it had before there was one)."""
    spec = resolve_model(base, catalog)
    recipe = TRAINERS.get(kind).recipe
    text = json.dumps({"kind": kind, **({"recipe": recipe} if recipe != 1 else {}), "base": spec.fingerprint,
                       "data": data.sha256(),
                       "settings": settings.model_dump(mode="json", exclude=set() if settings.validation_share
                                                       else {"validation_share"})}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def train_model(kind: str, base: str, data: TrainingData, settings: TrainSettings, components: Any,
                store: TrainedModelStore | None = None, deadline: float | None = None,
                progress: Progress | None = None) -> TrainingOutcome:
    """Train (or resume) a model of ``kind`` from ``base`` on ``data``; the model is stored when every step ran
    (default: in the trained-model folder of ``components.catalog``, where ``base`` resolves too)."""
    catalog = components.catalog
    store = store or catalog.trained()
    if len(data.examples) < MIN_EXAMPLES:
        raise TrainingError(f"{len(data.examples)} training example(s) after the leak guard; at least {MIN_EXAMPLES} "
                            f"are needed (sources: {data.summary()['per_source'] or 'none'})")
    trainer = TRAINERS.get(kind)(base, data, settings, components)
    resolved = trainer.settings
    key = run_key(kind, base, data, resolved, catalog)
    workdir = store.root / ".work" / key
    done_marker = workdir / "model_id"
    if done_marker.is_file():  # finished before: the same inputs give the same model
        model = store.get(done_marker.read_text().strip())
        return TrainingOutcome(model, {**model.manifest.get("training", {}), "reused": True})
    started = time.perf_counter()
    selection: dict[str, Any] | None = None
    if resolved.validation_share:
        selection = choose_epochs(kind, base, data, resolved, components, workdir / "validation", deadline, progress)
        if selection.get("finished") is False:
            return TrainingOutcome(None, {"run_key": key, **selection, "phase": "validation",
                                          "wall_seconds_this_call": round(time.perf_counter() - started, 1)})
        if "epochs" in selection:
            trainer = TRAINERS.get(kind)(base, data, resolved.model_copy(update={"epochs": selection["epochs"]}),
                                         components)
    result = run_steps(trainer, workdir, deadline, progress)
    report = {"run_key": key, **result, "device": torch_device(), "peak_memory_mb": peak_memory_mb(),
              "wall_seconds_this_call": round(time.perf_counter() - started, 1),
              **({"validation": selection} if selection else {})}
    if not result["finished"]:
        return TrainingOutcome(None, report)
    export = Path(tempfile.mkdtemp(prefix=".export-", dir=store.root))
    trainer.export(export)
    base_spec = resolve_model(base, catalog)
    manifest = {"base_model": base, "base_fingerprint": base_spec.fingerprint, "licence": base_spec.licence,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "settings": trainer.settings.model_dump(mode="json"), "seed": resolved.seed,
                "data": data.summary(), "training": report}
    model = store.save(kind, export, manifest)
    done_marker.write_text(model.model_id)
    for leftover in workdir.iterdir():  # the checkpoint is no longer needed; the marker stays
        if leftover != done_marker:
            leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    return TrainingOutcome(model, report)


def choose_epochs(kind: str, base: str, data: TrainingData, settings: TrainSettings, components: Any,
                  workdir: Path, deadline: float | None, progress: Progress | None) -> dict[str, Any]:
    """The number of epochs, chosen on held-out examples whose positives no other example has (documents training
    never saw, like the queries a model must generalise to): a model trains on the rest for ``settings.epochs``,
    scored before training and after every epoch; the first best epoch wins, and the final model trains on every
    example for that long. Returns the curve and the choice; without enough such examples, why not."""
    fit, held = validation_split(data.examples, settings.validation_share or 0.0, settings.seed,
                                 MIN_VALIDATION_EXAMPLES)
    if not held:
        return {"skipped": f"fewer than {MIN_VALIDATION_EXAMPLES} examples whose positives are their own to hold out "
                           f"({settings.validation_share:.0%} of {len(data.examples)}); trained for "
                           f"{settings.epochs} epochs"}
    probe = TRAINERS.get(kind)(base, replace(data, examples=fit), settings, components)
    result = run_steps(probe, workdir, deadline, progress, held)
    if not result["finished"]:
        return {**result, "finished": False}
    curve = result["validation"]
    epochs, best = max(curve[1:], key=lambda point: point[1])
    return {"examples": len(held), "metric": "ndcg@10", "before": curve[0][1], "best": best,
            "epochs": epochs, "curve": curve, "seconds": result["seconds"]}


TRAINING_EXPERIMENT = "evolve-training"
MODEL_ARTIFACTS = "trained_model"


def log_trained_model(model: TrainedModel, tracking_uri: str, artifact_root: Path | None = None,
                      experiment: str = TRAINING_EXPERIMENT) -> str:
    """An MLflow run for a trained model: its settings as params, data counts and cost as metrics, the manifest and
    the whole model folder as artifacts (so another node can fetch it: :func:`fetch_trained_models`), tags naming
    the model. Returns the run id."""
    import mlflow

    manifest = model.manifest
    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=artifact_location(tracking_uri, artifact_root))
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
               **{k: training.get(k) for k in ("steps", "seconds", "loss_first", "loss_last", "peak_memory_mb")},
               **{f"validation.{k}": v for k, v in (training.get("validation") or {}).items()
                  if k in ("examples", "before", "best", "epochs")}}
    for name, value in metrics.items():
        if isinstance(value, (int, float)):
            client.log_metric(run_id, name, float(value))
    client.log_artifact(run_id, str(model.folder / "manifest.json"))
    client.log_artifacts(run_id, str(model.folder), f"{MODEL_ARTIFACTS}/{TrainedModelStore.folder_name(model.model_id)}")
    client.set_terminated(run_id)
    return run_id


def trained_ids(value: Any) -> list[str]:
    """Every trained model id named anywhere in ``value`` (a config, a search space, a study spec)."""
    if isinstance(value, str):
        return [value] if is_trained(value) else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return list(dict.fromkeys(i for v in value for i in trained_ids(v)))
    return []


def fetch_trained_models(ids: list[str], tracking_uri: str, store: TrainedModelStore,
                         experiment: str = TRAINING_EXPERIMENT) -> list[str]:
    """Every model in ``ids`` (and the trained bases they need) in ``store``: those missing are downloaded from
    their MLflow training run and verified against their ids (a worker on another node, a fresh checkout).
    Returns the ids fetched; TrainedModelError names one that is in neither place."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    def from_training_run(model_id: str, scratch: Path) -> Path:
        client = MlflowClient(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id], f"tags.`evolve.trained_model` = '{model_id}'",
                                  max_results=1) if found else []
        if not runs:
            raise TrainedModelError(f"trained model {model_id} is not in {store.root} and no MLflow training run "
                                    f"at {tracking_uri} holds it")
        path = download_artifacts(run_id=runs[0].info.run_id, dst_path=str(scratch), tracking_uri=tracking_uri,
                                  artifact_path=f"{MODEL_ARTIFACTS}/{TrainedModelStore.folder_name(model_id)}")
        return Path(path).parent

    return store.ensure(ids, from_training_run)
