import pytest
from pydantic import ValidationError

from helpers import REPO
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


SHIPPED = {  # content addresses computed before the kind registries replaced the hand-written config unions
    "bench/configs/korquad/bm25-kiwi.yaml": "0f8f19d79a1166295e419c501a7862ad6d987ad3a5aafb6ac77dece5cab16c34",
    "bench/configs/korquad/bm25-regex.yaml": "ec468cd11c04fe0da42cd5870a68b69e2107303d0799467286e683fe5bb9ad86",
    "bench/configs/korquad/dense-e5.yaml": "3052e53668c10e0adc4d45e74ea4c65829f3ab0f47e928bfc62c558043b9baa4",
    "bench/configs/korquad/hybrid-rerank-use.yaml": "86cefe2c873bb75cdf58b2bc8f0fe1f2db9e423093042694ef4ba51cf04461b3",
    "bench/configs/korquad/hybrid-rrf.yaml": "28a39e1f271f41080ddda3d340bc7bb624e63b42c0fa5a67716b1d06d912c4f6",
    "bench/configs/korquad/hybrid-use-rerank-e5.yaml":
        "8741e0f922df3a22e515be29fa0a29dd63e88861ea56df9045ee52742bc4174d",
    "bench/configs/korquad/hybrid-weighted.yaml": "e07e2c5abfca559aa6e48395e2963f3a71e83abc752e6295294ca935028d8999",
    "bench/configs/scifact/bm25.yaml": "5b142887fc71b481a1599776a4d9c621a50c5de512bd37e7115a127fb75dce74",
    "bench/configs/scifact/dense-minilm.yaml": "f9c536a03e923678eb2e464c4c67d4d33229431f4e6c48e91679b57e78127df3",
    "bench/configs/scifact/hybrid-rerank-e5.yaml": "f132b4f20c16a74f9823d2cbb24b71a10b75e4aa969a9690a68872694f1f4bf4",
    "bench/configs/scifact/hybrid-rrf.yaml": "3d7b3cfa8883ba84cfd9fc4f397ee590d021c641e0591ae410e22577cc066f73",
    "bench/configs/scifact/hybrid-weighted.yaml": "355bcd0faa5eea2e2b62b1ccb8e3a9111d195609c43c78fbcb8eeb441240c432",
    "pipelines/configs/default.yaml": "a5bc55cee8b909c475b30b40f830dfb89e9aa10c9dabb0fbf126414a62763666",
    "pipelines/configs/demo.yaml": "f67a62e04d28864954d05f9cf87bb20eae0c0236af0a88ac460ed4a61a894fa1",
}


def test_shipped_configs_keep_their_content_address():
    """Decisions name configs by sha256: a refactoring of the config models must not move any of them."""
    shipped = sorted(str(p.relative_to(REPO)) for folder in ("pipelines/configs", "bench/configs")
                     for p in (REPO / folder).rglob("*.yaml"))
    assert shipped == sorted(SHIPPED)
    for path, sha in SHIPPED.items():
        config = load_config(REPO / path)
        assert config.sha256() == sha, path
        assert PipelineConfig.from_yaml(config.to_yaml()).sha256() == sha


def test_models_are_named_by_the_parts_that_use_them():
    config = PipelineConfig.model_validate(FULL)
    assert config.models() == ["multilingual-e5-small", "all-MiniLM-L6-v2"]
    no_rerank = PipelineConfig.model_validate({**FULL, "reranker": {"kind": "none", "model": "ignored"}})
    assert no_rerank.models() == ["multilingual-e5-small"]
