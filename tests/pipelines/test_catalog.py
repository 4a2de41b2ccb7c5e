"""A model catalog is a value passed down, not the process environment: two projects in one process resolve the same
model names to their own trained and served models, and a child process gets the catalog through its ``env``."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from pipelines import Components, ModelCatalog, TrainedModelError
from pipelines.embedders import resolve_model, save_adapter
from pipelines.remote import REGISTRY_ENV

ROOT_ENV = "EVOLVE_TRAINED_MODELS"


def _adapter(catalog: ModelCatalog, tmp_path, name: str, seed: int) -> str:
    """A real adapter (a rotation of MiniLM's query space) saved in the catalog's trained-model folder."""
    matrix = np.eye(384, dtype=np.float32)
    matrix[[0, 1]] = matrix[[1, 0]]
    weights = save_adapter(tmp_path / name, matrix)
    return catalog.trained().save("adapter", weights, {"base_model": "all-MiniLM-L6-v2", "seed": seed}).model_id


def _served(path, base_url: str):
    path.write_text(yaml.safe_dump({"models": [{"name": "bge@gpu", "kind": "embedder", "protocol": "openai",
                                                "base_url": base_url, "licence": "MIT", "dim": 1024}]}))
    return path


def test_two_projects_in_one_process_resolve_the_same_names_to_their_own_models(tmp_path, monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    one, two = tmp_path / "one", tmp_path / "two"
    for project in (one, two):
        project.mkdir()
    first = ModelCatalog.for_project(one / ".evolve" / "models", _served(one / "models.yaml", "http://gpu1:8001/v1"))
    second = ModelCatalog.for_project(two / ".evolve" / "models", _served(two / "models.yaml", "http://gpu2:8001/v1"))

    shared = _adapter(first, tmp_path, "a", seed=1)
    assert _adapter(second, tmp_path, "b", seed=1) == shared  # the same training: the same id, in each project
    only_first = _adapter(first, tmp_path, "c", seed=2)
    in_first, in_second = resolve_model(shared, first), resolve_model(shared, second)
    assert in_first.location == str(one / ".evolve" / "models" / shared.removeprefix("trained:") / "model")
    assert in_second.location == str(two / ".evolve" / "models" / shared.removeprefix("trained:") / "model")
    assert resolve_model(only_first, first).base == "all-MiniLM-L6-v2"
    with pytest.raises(TrainedModelError, match=f"not in {two / '.evolve' / 'models'}"):
        resolve_model(only_first, second)

    assert resolve_model("bge@gpu", first).location == "http://gpu1:8001/v1"
    assert resolve_model("bge@gpu", second).location == "http://gpu2:8001/v1"
    assert Components(tmp_path / "c1.sqlite", first).catalog == first  # what builds pipelines holds its project's
    assert os.environ.get(ROOT_ENV) is None and os.environ.get(REGISTRY_ENV) is None  # nothing was written


def test_a_variable_the_user_set_wins_and_a_child_gets_the_catalog_through_its_env(tmp_path):
    project = ModelCatalog.for_project(tmp_path / ".evolve" / "models", tmp_path / "models.yaml", environ={})
    assert project == ModelCatalog(tmp_path / ".evolve" / "models", None)  # no models.yaml: nothing served
    chosen = {ROOT_ENV: str(tmp_path / "shared-models"), REGISTRY_ENV: str(tmp_path / "cluster.yaml")}
    assert ModelCatalog.for_project(tmp_path / ".evolve" / "models", tmp_path / "models.yaml", environ=chosen) == \
        ModelCatalog(tmp_path / "shared-models", tmp_path / "cluster.yaml")

    served = ModelCatalog(tmp_path / "m", _served(tmp_path / "models.yaml", "http://gpu1:8001/v1"))
    assert ModelCatalog.from_env(served.environ(), cwd=tmp_path / "elsewhere") == served  # what a worker rebuilds
    assert ModelCatalog.from_env({}, cwd=tmp_path) == ModelCatalog(tmp_path / ".evolve" / "models",
                                                                   tmp_path / "models.yaml")
    assert REGISTRY_ENV not in project.environ()  # a child without one looks in its own working directory
