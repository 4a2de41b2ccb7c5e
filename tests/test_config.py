import pytest
from pydantic import ValidationError

from pipelines import ConfigError, PipelineConfig, load_config, save_config

FULL = {
    "name": "full",
    "chunking": {"kind": "fixed", "unit": "tokens", "size": 200, "overlap": 20},
    "dense": {"model": "multilingual-e5-small", "index": "hnsw"},
    "lexical": {"tokenizer": "kiwi", "k1": 1.2, "b": 0.6},
    "fusion": {"kind": "weighted", "dense_weight": 0.7},
    "reranker": {"kind": "embedding", "model": "all-MiniLM-L6-v2", "top_n": 20, "blend": 0.3},
}


def test_yaml_round_trip(tmp_path):
    config = PipelineConfig.model_validate(FULL)
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config
    assert PipelineConfig.from_yaml(config.to_yaml()) == config


@pytest.mark.parametrize("change, message", [
    ({"chunking": {"kind": "fixed", "size": 100, "overlap": 100}}, "overlap"),
    ({"chunking": {"kind": "semantic"}}, "semantic"),
    ({"lexical": {"tokenizer": "mecab"}}, "tokenizer"),
    ({"fusion": {"kind": "none"}}, "need fusion"),
    ({"dense": None, "lexical": None}, "needs a dense retriever"),
    ({"reranker": {"kind": "embedding"}}, "needs a model"),
    ({"typo_key": 1}, "typo_key"),
])
def test_invalid_configs_are_rejected(change, message):
    with pytest.raises(ValidationError, match=message):
        PipelineConfig.model_validate({**FULL, **change})


def test_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lexical:\n  tokenizer: regex\n  k1: -1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: lexical\.k1"):
        load_config(path)
    path.write_text("lexical: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
