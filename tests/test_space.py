from pathlib import Path

import optuna
import pytest

from experiments.sampler import suggest_config
from experiments.space import SpaceError, load_space, space_from_dict

SPACES = Path(__file__).resolve().parent.parent / "experiments" / "spaces"
BASE = {"dense_models": ["all-MiniLM-L6-v2"], "lexical": {"tokenizers": ["english"]}}


@pytest.mark.parametrize("path", sorted(SPACES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_spaces_load_and_sample_valid_configs(path):
    space = load_space(path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        config = suggest_config(trial, space)  # PipelineConfig validation runs inside
        seen.add((config.chunking.kind, config.dense.model if config.dense else None,
                  config.lexical.tokenizer if config.lexical else None))
        study.tell(trial, 0.0)
    assert len(seen) > 3


def test_space_from_a_python_dict_is_what_the_agent_proposes():
    space = space_from_dict({**BASE, "chunkers": [{"kind": "sentence", "size": {"low": 200, "high": 600, "step": 200}}],
                             "rerankers": [{"kind": "none"}, {"kind": "embedding", "model": "all-MiniLM-L6-v2",
                                                              "top_n": [5, 10]}]})
    trial = optuna.trial.FixedTrial({"chunker": "sentence", "sentence.size": 400, "reranker": "embedding:all-MiniLM-L6-v2",
                                     "reranker.top_n": 5, "fusion": "rrf"})
    config = suggest_config(trial, space)
    assert config.chunking.size == 400 and config.reranker.top_n == 5 and config.fusion.kind == "rrf"


@pytest.mark.parametrize("change, message", [
    ({"dense_models": ["not-a-model"]}, "unknown embedding model 'not-a-model'"),
    ({"lexical": {"tokenizers": ["mecab"]}}, "lexical.tokenizers.0"),
    ({"chunkers": [{"kind": "semantic"}]}, "chunkers.0.kind"),
    ({"chunkers": [{"kind": "fixed", "size": {"low": 4, "high": 64}}]}, "chunker 'fixed' at its low end"),
    ({"chunkers": [{"kind": "sentence", "size": {"low": 900, "high": 300}}]}, "low \\(900\\) is above high"),
    ({"metric": "map@10"}, "unknown metric"),
    ({"surprise": True}, "surprise: Extra inputs are not permitted"),
    ({"dense_models": ["none"], "lexical": None}, "needs a lexical tokenizer"),
    ({"rerankers": [{"kind": "embedding", "model": "nope"}]}, "unknown embedding model 'nope'"),
])
def test_bad_spaces_are_refused_with_the_field_named(change, message):
    with pytest.raises(SpaceError, match=message):
        space_from_dict({**BASE, **change}, "proposal")


def test_space_file_errors(tmp_path):
    with pytest.raises(SpaceError, match="not found"):
        load_space(tmp_path / "none.yaml")
    (tmp_path / "s.yaml").write_text("- a list\n")
    with pytest.raises(SpaceError, match="mapping"):
        load_space(tmp_path / "s.yaml")
