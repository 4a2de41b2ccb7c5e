"""A promoted config that uses a trained model carries it: tagged and stored with the registry version, restored
from there when the project's model folder lacks it (approve, rollback, serve), refused when it cannot be had."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import yaml

from agent.project import open_project
from evalsets import load_evalset
from guardrails import DecisionError, GuardReport, Project, approve, guard_and_register, rollback
from helpers import PERMISSIVE as ANY_GAIN
from pipelines import PipelineConfig, TrainedModelError, TrainedModelStore
from pipelines.embedders import save_adapter

PERMISSIVE = ANY_GAIN.model_copy(update={"allowed_licences": ["Apache-2.0"]})
"""The licence rule sees a trained model's licence as its base model's (MiniLM: Apache-2.0)."""


def _adapter(store: TrainedModelStore, tmp_path) -> str:
    """A real adapter folder (a fixed rotation of two coordinates of MiniLM's query space) saved in the store."""
    matrix = np.eye(384, dtype=np.float32)
    matrix[[0, 1]] = matrix[[1, 0]]
    folder = save_adapter(tmp_path / "weights", matrix)
    return store.save("adapter", folder, {"base_model": "all-MiniLM-L6-v2", "licence": "Apache-2.0"}).model_id


@dataclass
class Registered:
    store: TrainedModelStore
    model_id: str
    project: Project
    config: PipelineConfig
    report: GuardReport
    version: str


def _registered_adapter(tmp_path, tiny_scifact, monkeypatch, warm_components) -> Registered:
    """A project whose version 1 uses an adapter saved in its model folder, guarded under PERMISSIVE."""
    monkeypatch.delenv("EVOLVE_TRAINED_MODELS", raising=False)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(PERMISSIVE.model_dump(mode="json")))
    project = open_project(tmp_path, None)
    store = project.catalog.trained()  # the project's .evolve/models
    model_id = _adapter(store, tmp_path)
    config = PipelineConfig.model_validate({"name": "adapted", "dense": {"model": model_id},
                                            "fusion": {"kind": "none"}})
    report, version = guard_and_register(project, config, [load_evalset(tiny_scifact)], PERMISSIVE,
                                         warm_components(project.catalog))
    assert version, report.failed_rules
    return Registered(store, model_id, project, config, report, version)


def test_the_version_carries_its_trained_model_and_approve_restores_it(tmp_path, tiny_scifact, monkeypatch,
                                                                       warm_components):
    it = _registered_adapter(tmp_path, tiny_scifact, monkeypatch, warm_components)
    store, model_id, project, config, version = it.store, it.model_id, it.project, it.config, it.version
    sha = store.get(model_id).sha256
    assert it.report.decision["trained_models"] == {model_id: sha}
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
        project.registry.restore_trained_models(missing, version, store)
    previous, _ = rollback(project, "back to the default")
    assert previous is None


def test_approving_a_version_whose_model_is_gone_everywhere_changes_nothing(tmp_path, tiny_scifact, monkeypatch,
                                                                            warm_components):
    it = _registered_adapter(tmp_path, tiny_scifact, monkeypatch, warm_components)
    store, model_id, project, version = it.store, it.model_id, it.project, it.version
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


def _edit_manifest(folder, **changes) -> None:
    """An editor's change, written in evolve's own format: only the named fields differ."""
    from pipelines.trained import render_manifest

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(changes)
    (folder / "manifest.json").write_text(render_manifest(manifest), encoding="utf-8")


def test_a_manifest_edited_to_name_an_allowed_base_is_refused_by_the_guard_and_the_licence_rule(
        tmp_path, tiny_scifact, monkeypatch, warm_components):
    """The policy allows MIT only; the adapter was trained on MiniLM (Apache-2.0: here the licence that must not
    pass). Its manifest edited to name e5-small (MIT) no longer matches the model's id: the guard cannot load it, and
    the licence lookup the licence rule reads says 'unknown', not MIT."""
    from guardrails import check_candidate, collect_evidence
    from guardrails.evidence import models_of
    from pipelines.embedders import resolve_model

    monkeypatch.delenv("EVOLVE_TRAINED_MODELS", raising=False)
    mit_only = ANY_GAIN.model_copy(update={"allowed_licences": ["MIT"]})
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(mit_only.model_dump(mode="json")))
    project = open_project(tmp_path, None)
    store = project.catalog.trained()
    model_id = _adapter(store, tmp_path)
    config = PipelineConfig.model_validate({"name": "adapted", "dense": {"model": model_id},
                                            "fusion": {"kind": "none"}})
    held, components = load_evalset(tiny_scifact), warm_components(project.catalog)
    candidate = collect_evidence(config, [held], components)  # scored with the model as trained
    champion = collect_evidence(project.champion()[0], [held], components)
    assert candidate.models == {model_id: "Apache-2.0"}

    e5 = resolve_model("multilingual-e5-small")
    _edit_manifest(store.get(model_id).folder, base_model=e5.name, licence=e5.licence,
                   base_fingerprint=e5.fingerprint)
    assert models_of(config, project.catalog) == {model_id: "unknown"}  # what collect_evidence reads last
    candidate.models = models_of(config, project.catalog)
    report = check_candidate(candidate, champion, mit_only)
    licence = next(r for r in report.rules if r.rule == f"licence [{model_id}]")
    assert not licence.passed and licence.measured == "unknown" and not report.passed

    with pytest.raises(TrainedModelError, match="changed since it was trained"):
        guard_and_register(project, config, [held], mit_only, components)
    assert project.registry.versions() == [] and not [r for r in project.log.rows() if r.action == "register"]


def test_restore_takes_only_the_hashed_files_and_only_the_logged_sha256(tmp_path, tiny_scifact, monkeypatch,
                                                                        warm_components):
    """Restoring (approve, rollback, serve) copies manifest.json and model/ only, and only a model whose full sha256
    is the one the decision log recorded; a manifest edited in the artifacts is refused and nothing is copied."""
    from guardrails import ensure_trained_models
    from guardrails.decisions import logged_trained_models

    it = _registered_adapter(tmp_path, tiny_scifact, monkeypatch, warm_components)
    store, model_id, project, config, version = it.store, it.model_id, it.project, it.config, it.version
    sha = store.get(model_id).sha256
    assert logged_trained_models(project, version) == {model_id: sha}  # the register row's report
    folder = TrainedModelStore.folder_name(model_id)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "payload.py").write_text("raise SystemExit('ran')\n")
    project.registry.client.log_artifacts(project.registry.version(version).run_id, str(extra),
                                          f"trained_models/{folder}/extra")
    shutil.rmtree(store.root)
    TrainedModelStore._verified.clear()

    with pytest.raises(TrainedModelError, match=f"decision log records {'f' * 64}"):
        project.registry.restore_trained_models(config, version, store, expected={model_id: "f" * 64})
    with pytest.raises(TrainedModelError, match="records no sha256 for it"):
        project.registry.restore_trained_models(config, version, store, expected={})
    assert not (store.root / folder).exists() and not list(store.root.glob(".staging-*"))

    assert ensure_trained_models(project, config, version) == [model_id]  # what approve, rollback and serve call
    assert sorted(p.name for p in (store.root / folder).iterdir()) == ["manifest.json", "model"]
    assert store.get(model_id).sha256 == sha

    shutil.rmtree(store.root)
    TrainedModelStore._verified.clear()
    [manifest] = list((tmp_path / "mlruns" / "artifacts").rglob("manifest.json"))
    _edit_manifest(manifest.parent, base_model="multilingual-e5-small", licence="MIT")
    with pytest.raises(DecisionError, match="manifest or weights .* changed since it was trained"):
        ensure_trained_models(project, config, version)
    assert not (store.root / folder).exists()
    with pytest.raises(DecisionError, match="changed since it was trained"):
        approve(project, version, "should not pass")
