"""`python:MODULE:FUNCTION` model locations come from registry entries only: never from a config, a search
space or a study's stored config, and a refused one is never imported."""

import sys

import pytest
import yaml

from experiments.space import SpaceError, space_from_dict
from pipelines import ConfigError, PipelineConfig, load_config
from pipelines.embedders import REGISTRY, resolve_model
from pipelines.embedders.base import SentenceTransformerEmbedder, _locate
from pipelines.embedders.registry import ModelSpec

MODULE = "evolve_sidefx_probe"


@pytest.fixture
def side_effect_module(tmp_path, monkeypatch):
    """A module on sys.path that leaves a marker file when it is imported (or its function is run)."""
    marker = tmp_path / "imported.marker"
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / f"{MODULE}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
        f"def where():\n    return {str(tmp_path)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    sys.modules.pop(MODULE, None)
    yield marker
    sys.modules.pop(MODULE, None)


def assert_not_imported(marker):
    assert not marker.exists() and MODULE not in sys.modules


@pytest.mark.parametrize("name", [f"python:{MODULE}:where", f"python:{MODULE}:where/x",  # the second passed as a
                                  f"  PYTHON:{MODULE}:where"])                          # "hub name" before
def test_a_config_naming_code_is_refused_at_validation_and_nothing_is_imported(side_effect_module, tmp_path, name):
    for section in ({"dense": {"model": name}},
                    {"lexical": {}, "fusion": {"kind": "none"}, "reranker": {"kind": "cross-encoder", "model": name}}):
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({"name": "evil", **section}))
        with pytest.raises(ConfigError, match="locations come only from registry entries"):
            load_config(tmp_path / "c.yaml")
    with pytest.raises(KeyError, match="locations come only from registry entries"):
        resolve_model(name)
    assert_not_imported(side_effect_module)


def test_os_getcwd_is_refused_too():
    with pytest.raises(ValueError, match="'python:os:getcwd'.*registry entries"):
        PipelineConfig.model_validate({"dense": {"model": "python:os:getcwd"}})


def test_a_space_or_a_stored_trial_cannot_name_code(side_effect_module):
    base = {"dense_models": ["none"], "lexical": {"tokenizers": ["english"]}}
    with pytest.raises(SpaceError, match="registry entries"):
        space_from_dict({**base, "dense_models": [f"python:{MODULE}:where/x"]}, "proposal")
    with pytest.raises(SpaceError, match="registry entries"):
        space_from_dict({**base, "rerankers": [{"kind": "cross-encoder", "model": f"python:{MODULE}:where"}]})
    with pytest.raises(SpaceError, match="registry entries"):
        space_from_dict({**base, "rerankers": [{"kind": "embedding", "model": f"python:{MODULE}:where"}]})
    # a study's stored best config is validated the same way when it is read back
    with pytest.raises(ValueError, match="registry entries"):
        PipelineConfig.model_validate({"name": "study-best", "dense": {"model": f"python:{MODULE}:where"}})
    assert_not_imported(side_effect_module)


def test_only_a_registry_entry_s_location_is_ever_run(side_effect_module):
    forged = ModelSpec(name="all-MiniLM-L6-v2", loader="sentence-transformers", package=None, dim=None,
                       max_length=None, licence="MIT", languages="x", location=f"python:{MODULE}:where")
    with pytest.raises(ValueError, match="refusing to import code"):
        SentenceTransformerEmbedder(forged)
    with pytest.raises(ValueError, match="refusing to import code"):
        _locate(f"python:{MODULE}:where")
    assert_not_imported(side_effect_module)
    entry = REGISTRY["all-MiniLM-L6-v2"]
    assert entry.location.startswith("python:") and resolve_model(entry.name) is entry
