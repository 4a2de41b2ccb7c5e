"""A promoted config that uses a trained model carries it: tagged and stored with the registry version, restored
from there when the project's model folder lacks it (approve, rollback, serve), refused when it cannot be had."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from agent.project import open_project
from evalsets import load_evalset
from guardrails import DecisionError, approve, guard_and_register, rollback
from pipelines import Components, PipelineConfig, TrainedModelError, TrainedModelStore
from pipelines.embedders import save_adapter
from decision_fixtures import PERMISSIVE as ANY_GAIN

PERMISSIVE = ANY_GAIN.model_copy(update={"allowed_licences": ["Apache-2.0"]})
"""The licence rule sees a trained model's licence as its base model's (MiniLM: Apache-2.0)."""


def _adapter(store: TrainedModelStore, tmp_path) -> str:
    """A real adapter folder (a fixed rotation of two coordinates of MiniLM's query space) saved in the store."""
    matrix = np.eye(384, dtype=np.float32)
    matrix[[0, 1]] = matrix[[1, 0]]
    folder = save_adapter(tmp_path / "weights", matrix)
    return store.save("adapter", folder, {"base_model": "all-MiniLM-L6-v2", "licence": "Apache-2.0"}).model_id


def test_the_version_carries_its_trained_model_and_approve_restores_it(tmp_path, tiny_scifact, monkeypatch):
    monkeypatch.setenv("EVOLVE_TRAINED_MODELS", str(tmp_path / "models"))
    store = TrainedModelStore()
    model_id = _adapter(store, tmp_path)
    sha = store.get(model_id).sha256
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(PERMISSIVE.model_dump(mode="json")))
    project = open_project(tmp_path, None)
    config = PipelineConfig.model_validate({"name": "adapted", "dense": {"model": model_id},
                                            "fusion": {"kind": "none"}})
    held = load_evalset(tiny_scifact)
    report, version = guard_and_register(project, config, [held], PERMISSIVE, Components(tmp_path / "c.sqlite"))
    assert version, report.failed_rules
    assert report.decision["trained_models"] == {model_id: sha}
    tags = project.registry.version(version).tags
    assert json.loads(tags["evolve.trained_models"]) == {model_id: sha}

    shutil.rmtree(store.root)  # a clean-up, or another machine: the project's folder no longer has the model
    TrainedModelStore._verified.clear()
    with pytest.raises(TrainedModelError):
        store.get(model_id)
    approve(project, version, "adapter helps")
    assert store.get(model_id).sha256 == sha  # restored from the version's artifacts and verified
    assert project.champion_config().dense.model == model_id

    missing = config.model_copy(update={"dense": config.dense.model_copy(update={"model": "trained:adapter-"
                                                                                          "0123456789ab"})})
    with pytest.raises(TrainedModelError, match="could not be restored"):
        project.registry.restore_trained_models(missing, version)
    previous, _ = rollback(project, "back to the default")
    assert previous is None


def test_approving_a_version_whose_model_is_gone_everywhere_changes_nothing(tmp_path, tiny_scifact, monkeypatch):
    monkeypatch.setenv("EVOLVE_TRAINED_MODELS", str(tmp_path / "models"))
    store = TrainedModelStore()
    model_id = _adapter(store, tmp_path)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(PERMISSIVE.model_dump(mode="json")))
    project = open_project(tmp_path, None)
    config = PipelineConfig.model_validate({"name": "adapted", "dense": {"model": model_id},
                                            "fusion": {"kind": "none"}})
    _, version = guard_and_register(project, config, [load_evalset(tiny_scifact)], PERMISSIVE,
                                    Components(tmp_path / "c.sqlite"))
    run = project.registry.version(version).run_id
    artifacts = project.registry.client.list_artifacts(run, "trained_models")
    assert [a.path for a in artifacts] == [f"trained_models/{TrainedModelStore.folder_name(model_id)}"]
    shutil.rmtree(store.root)
    TrainedModelStore._verified.clear()
    for path in (tmp_path / "mlruns" / "artifacts").rglob("matrix.npy"):
        path.write_bytes(b"tampered")  # the registry's copy no longer matches the id either
    champion_before = project.champion_config()
    with pytest.raises(DecisionError, match="changed since it was trained"):
        approve(project, version, "should not pass")
    assert project.champion_config() == champion_before
