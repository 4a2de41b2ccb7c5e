import hashlib

import optuna
import pytest

from experiments.sampler import suggest_config
from experiments.space import SpaceError, load_space, space_from_dict
from helpers import REPO

SPACES = REPO / "experiments" / "spaces"
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


def sampled_digest(space, trials=40, seed=0):
    """sha256 over the content addresses of the configs a seeded random sampler draws from a space."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    digest = hashlib.sha256()
    for _ in range(trials):
        trial = study.ask()
        digest.update(suggest_config(trial, space).sha256().encode())
        study.tell(trial, 0.0)
    return digest.hexdigest()[:16]


BENCH = SPACES.parent.parent / "bench" / "spaces"
WIDE = {"dense_models": ["all-MiniLM-L6-v2", "none"], "lexical": {"tokenizers": ["english", "regex", "none"]},
        "chunkers": [{"kind": "whole"},
                     {"kind": "fixed", "unit": ["chars", "tokens"], "size": {"low": 100, "high": 400},
                      "overlap": [0, 10, 300]},
                     {"kind": "sentence", "size": [200, 400], "overlap": {"low": 0, "high": 3}},
                     {"kind": "markdown", "size": {"low": 500, "high": 2000, "log": True}}, {"kind": "paragraph"}],
        "fusion": {"kinds": ["rrf", "weighted"], "rrf_k": {"low": 1, "high": 100}},
        "rerankers": [{"kind": "none"}, {"kind": "embedding", "model": "all-MiniLM-L6-v2", "blend": [0.0, 0.5]},
                      {"kind": "cross-encoder", "model": "some/ce", "top_n": {"low": 5, "high": 50}}],
        "candidates": [50, 100]}
SAMPLED = {  # digests computed before the kind registries replaced the hand-written choices and sampler
    SPACES / "demo.yaml": "b0661a2265687519", SPACES / "korquad.yaml": "ca458bed2c690577",
    SPACES / "scifact.yaml": "d26e20958807f6f4", BENCH / "korquad.yaml": "26562b78120fc7bb",
    BENCH / "scifact.yaml": "21eb5dbbf7a86334",
}


@pytest.mark.parametrize("path", sorted(SAMPLED), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_a_space_samples_the_same_configs_for_the_same_seed(path):
    assert sampled_digest(load_space(path)) == SAMPLED[path]


def test_every_kind_and_parameter_is_drawn_as_before():
    """Several units (drawn after size), overlap clamped to size/2, defaults for what a choice leaves out."""
    assert sampled_digest(space_from_dict(WIDE)) == "915b64cdf7585602"


def test_a_space_stored_before_per_kind_choices_loads_and_samples_the_same():
    """Study specs and logged space.yaml files list every chunker with unit 'chars' and null size/overlap."""
    old = {**WIDE, "chunkers": [{"kind": "whole", "unit": "chars", "size": None, "overlap": None,
                                 "include_title": True},
                                {**WIDE["chunkers"][1], "include_title": True},
                                {**WIDE["chunkers"][2], "unit": "chars", "include_title": True},
                                {**WIDE["chunkers"][3], "unit": "chars", "overlap": None, "include_title": True},
                                {"kind": "paragraph", "unit": "chars", "size": None, "overlap": None,
                                 "include_title": True}]}
    assert sampled_digest(space_from_dict(old)) == "915b64cdf7585602"
    with pytest.raises(SpaceError, match=r"chunkers\.0\.unit"):  # a unit other than the old default is a mistake
        space_from_dict({**BASE, "chunkers": [{"kind": "whole", "unit": "tokens"}]})
    space = space_from_dict(WIDE)
    assert space_from_dict(space.model_dump(mode="json")) == space


def test_a_kind_is_given_only_the_fields_it_has():
    with pytest.raises(SpaceError, match=r"chunkers\.0\.overlap: Extra inputs"):
        space_from_dict({**BASE, "chunkers": [{"kind": "paragraph", "overlap": 1}]})
    with pytest.raises(SpaceError, match=r"chunkers\.0\.size: Extra inputs"):
        space_from_dict({**BASE, "chunkers": [{"kind": "whole", "size": 100}]})
