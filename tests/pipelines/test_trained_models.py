"""A trained model's id covers its whole folder: the manifest (base model, and through it the licence) as well as the
weights. Real folders on disk, the real adapter format, the real model catalog."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines import ModelCatalog, TrainedModelError, TrainedModelStore
from pipelines.embedders import resolve_model, save_adapter
from pipelines.trained import content_sha256, render_manifest

MINILM, E5 = "all-MiniLM-L6-v2", "multilingual-e5-small"  # Apache-2.0 and MIT, both 384 dimensions


def _weights(tmp_path, name: str = "weights", swap: int = 1):
    matrix = np.eye(384, dtype=np.float32)
    matrix[[0, swap]] = matrix[[swap, 0]]
    return save_adapter(tmp_path / name, matrix)


def _edit_manifest(folder, **changes) -> None:
    """What an editor does: the manifest rewritten in evolve's own format, only the named fields changed."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(changes)
    (folder / "manifest.json").write_text(render_manifest(manifest), encoding="utf-8")


@pytest.fixture(autouse=True)
def _fresh_cache():
    TrainedModelStore._verified.clear()
    yield
    TrainedModelStore._verified.clear()


def test_an_edited_base_model_is_refused_when_the_model_is_loaded(tmp_path):
    catalog = ModelCatalog(tmp_path / "models")
    store = catalog.trained()
    model = store.save("adapter", _weights(tmp_path), {"base_model": E5, "licence": "MIT"})
    assert model.hashed_whole and model.sha256 != model.manifest["weights_sha256"]
    assert model.model_id.endswith(model.sha256[:12])
    assert resolve_model(model.model_id, catalog).licence == "MIT"  # read and verified once in this process

    _edit_manifest(model.folder, base_model=MINILM, licence="Apache-2.0")
    with pytest.raises(TrainedModelError, match="manifest or weights .* changed since it was trained"):
        store.get(model.model_id)  # the verification cache does not hide a manifest changed since
    with pytest.raises(KeyError, match="changed since it was trained"):
        resolve_model(model.model_id, catalog)  # the licence lookup (the guard's rule) cannot read the edited base


def test_a_reformatted_manifest_or_a_stray_file_is_refused(tmp_path):
    store = TrainedModelStore(tmp_path / "models")
    model = store.save("adapter", _weights(tmp_path), {"base_model": MINILM})
    text = (model.folder / "manifest.json").read_text(encoding="utf-8")
    (model.folder / "manifest.json").write_text(json.dumps(json.loads(text)), encoding="utf-8")  # same content
    with pytest.raises(TrainedModelError, match="rewritten since it was trained"):
        store.get(model.model_id)
    (model.folder / "manifest.json").write_text(text, encoding="utf-8")
    assert store.get(model.model_id).sha256 == model.sha256
    (model.folder / "extra").mkdir()
    (model.folder / "extra" / "run.py").write_text("print('hi')\n")
    with pytest.raises(TrainedModelError, match="holds extra besides manifest.json and model"):
        store.get(model.model_id)


def test_the_id_covers_the_manifest_so_the_same_weights_with_another_manifest_are_another_model(tmp_path):
    store = TrainedModelStore(tmp_path / "models")
    one = store.save("adapter", _weights(tmp_path, "a"), {"base_model": MINILM, "seed": 1})
    two = store.save("adapter", _weights(tmp_path, "b"), {"base_model": MINILM, "seed": 2})
    same = store.save("adapter", _weights(tmp_path, "c"), {"base_model": MINILM, "seed": 1})
    assert one.model_id != two.model_id and one.manifest["weights_sha256"] == two.manifest["weights_sha256"]
    assert same.model_id == one.model_id  # the same folder content: the same model, kept once
    assert sorted(p.name for p in store.root.iterdir()) == sorted({one.folder.name, two.folder.name})


def _legacy(store: TrainedModelStore, tmp_path, base: str = MINILM) -> str:
    """A model as evolve saved them before the hash covered the manifest: the id is the weights' hash alone."""
    weights = _weights(tmp_path, "legacy")
    sha = content_sha256(weights)
    model_id = f"trained:adapter-{sha[:12]}"
    folder = store.root / f"adapter-{sha[:12]}"
    folder.mkdir(parents=True)
    weights.rename(folder / "model")
    spec = resolve_model(base)
    manifest = {"base_model": base, "base_fingerprint": spec.fingerprint, "licence": spec.licence,
                "id": model_id, "kind": "adapter", "sha256": sha}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return model_id


def test_a_model_trained_before_is_used_while_its_manifest_is_consistent(tmp_path):
    catalog = ModelCatalog(tmp_path / "models")
    store = catalog.trained()
    model_id = _legacy(store, tmp_path, base=E5)
    model = store.get(model_id)
    assert not model.hashed_whole and resolve_model(model_id, catalog).licence == "MIT"

    folder = model.folder
    original = (folder / "manifest.json").read_text(encoding="utf-8")
    _edit_manifest(folder, base_model=MINILM)  # licence and fingerprint still the e5 base's
    with pytest.raises(TrainedModelError, match="trained before manifests were hashed.*records the fingerprint of "
                                                "'multilingual-e5-small'"):
        store.get(model_id)
    _edit_manifest(folder, base_fingerprint=resolve_model(MINILM).fingerprint)  # the licence still e5's
    assert store.get(model_id).base == MINILM  # consistent as a folder; the licence is checked where it is read:
    with pytest.raises(TrainedModelError, match="whose licence is 'Apache-2.0', but records licence 'MIT'"):
        resolve_model(model_id, catalog)  # the catalog that resolves it, the guard's licence lookup
    (folder / "manifest.json").write_text(original, encoding="utf-8")
    assert store.get(model_id).base == E5
    (folder / "notes").write_text("x")
    with pytest.raises(TrainedModelError, match="holds notes besides"):
        store.get(model_id)


def test_dropping_the_marker_does_not_move_a_model_to_the_old_rule(tmp_path):
    store = TrainedModelStore(tmp_path / "models")
    model = store.save("adapter", _weights(tmp_path), {"base_model": E5, "licence": "MIT"})
    manifest = {k: v for k, v in model.manifest.items() if k != "hashed"}
    manifest.update(base_model=MINILM, base_fingerprint=resolve_model(MINILM).fingerprint, licence="Apache-2.0",
                    sha256=model.manifest["weights_sha256"])
    (model.folder / "manifest.json").write_text(render_manifest(manifest), encoding="utf-8")
    with pytest.raises(TrainedModelError, match="weights .* changed since it was trained"):
        store.get(model.model_id)  # under the old rule its id would have to be the weights' own hash
