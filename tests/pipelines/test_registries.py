"""One registry per component kind: unknown kinds are refused by name, and a new kind is one class and nothing else.

The reranker below is defined and registered in this file only; the pipeline config, the search space, the
sampler, the proposer's schema text, the guard's model list and the retriever all take it from the registry.
"""

import re
from typing import Literal

import numpy as np
import optuna
import pytest
from pydantic import ValidationError

from agent.loop.proposers import llm_messages, validate_proposal
from evalsets import Document
from experiments.sampler import suggest_config
from experiments.space import SpaceError, describe_space, space_from_dict
from guardrails.evidence import models_of
from pipelines import Components, PipelineConfig, Retriever
from pipelines.chunking import CHUNKERS, ChunkingConfig, make_chunker
from pipelines.fusion import FUSIONS, FusionConfig, make_fusion
from pipelines.lexical import TOKENIZERS, get_tokenizer
from pipelines.rerankers import RERANKERS, Reranker, RerankerConfig, make_reranker

BM25 = {"lexical": {"tokenizer": "regex"}, "fusion": {"kind": "none"}}


@pytest.mark.parametrize("part, value, message", [
    ("chunking", {"kind": "semantic"},
     "chunking.kind: Value error, unknown chunker kind 'semantic': use one of fixed, markdown, paragraph, sentence, "
     "whole"),
    ("chunking", {"size": 100}, "chunking.kind: Value error, a 'kind' is needed: one of fixed, markdown"),
    ("reranker", {"kind": "colbert", "model": "x"},
     "reranker.kind: Value error, unknown reranker kind 'colbert': use one of none, cross-encoder, embedding"),
    ("fusion", {"kind": "max"}, "fusion.kind: Value error, unknown fusion kind 'max': use one of none, rrf, weighted"),
    ("lexical", {"tokenizer": "mecab"},
     "lexical.tokenizer: Value error, unknown BM25 tokenizer 'mecab': use one of english, kiwi, regex"),
])
def test_a_config_naming_an_unknown_kind_is_refused_with_the_known_ones_named(part, value, message):
    with pytest.raises(ValidationError) as caught:
        PipelineConfig.model_validate({**BM25, part: value})
    assert message in "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in caught.value.errors())


@pytest.mark.parametrize("make, config, known", [
    (make_chunker, ChunkingConfig.model_construct(kind="semantic"), "fixed, markdown, paragraph, sentence, whole"),
    (lambda c: make_reranker(c, lambda name: None), RerankerConfig.model_construct(kind="colbert"),
     "cross-encoder, embedding"),
    (make_fusion, FusionConfig.model_construct(kind="max"), "rrf, weighted"),
])
def test_building_an_unknown_kind_is_refused_not_replaced_by_another(make, config, known):
    """No fall-through: a config that skipped validation still does not get some other kind's implementation."""
    with pytest.raises(KeyError, match=f"unknown .* kind '{config.kind}': use one of {known}"):
        make(config)
    with pytest.raises(KeyError, match="unknown BM25 tokenizer 'mecab': use one of english, kiwi, regex"):
        get_tokenizer("mecab")


@pytest.mark.parametrize("change, message", [
    ({"chunkers": [{"kind": "semantic"}]}, "chunkers.0.kind: Value error, unknown chunker kind 'semantic'"),
    ({"rerankers": [{"kind": "colbert"}]}, "rerankers.0.kind: Value error, unknown reranker kind 'colbert'"),
    ({"fusion": {"kinds": ["rrf", "none"]}}, "fusion.kinds.1: Value error, unknown fusion kind 'none'"),
    ({"lexical": {"tokenizers": ["mecab"]}}, "lexical.tokenizers.0: Value error, unknown BM25 tokenizer 'mecab'"),
])
def test_a_space_naming_an_unknown_kind_is_refused_with_the_known_ones_named(change, message):
    with pytest.raises(SpaceError, match=re.escape(message) + ": use one of "):
        space_from_dict({"dense_models": ["all-MiniLM-L6-v2"], "lexical": {"tokenizers": ["english"]}, **change})


def test_every_registry_knows_its_kinds():
    assert CHUNKERS.kinds() == ["fixed", "markdown", "paragraph", "sentence", "whole"]
    assert RERANKERS.kinds() == ["none", "cross-encoder", "embedding", "memory", "remote"]
    assert FUSIONS.kinds() == ["none", "rrf", "weighted"]
    assert TOKENIZERS.kinds() == ["english", "kiwi", "regex"]


def test_the_schema_text_states_only_limits_that_validation_enforces():
    """Every 'field': low..high in the proposer's schema text: both ends accepted (the kind's other fields at their
    lowest), just outside refused."""
    text = describe_space(["all-MiniLM-L6-v2"])
    base = {"dense_models": ["all-MiniLM-L6-v2"], "lexical": {"tokenizers": ["english"]}}
    checked, where = 0, None
    for line in text.splitlines():
        kind = re.search(r'"kind": "([^"]+)"', line)
        section = re.match(r'- "(\w+)"', line)
        where = section.group(1) if section else where  # a kind's line follows its section's
        for name, low, high in re.findall(r'"(\w+)": (-?\d+)\.\.(-?\d+)', line):
            ends = ((int(low), True), (int(high), True), (int(low) - 1, False), (int(high) + 1, False))
            for value, accepted in ends:
                if where == "lexical":
                    space = {**base, "lexical": {"tokenizers": ["english"], name: value}}
                elif where == "fusion":
                    space = {**base, "fusion": {"kinds": ["rrf", "weighted"], name: value}}
                elif where == "generation":
                    space = {**base, "generation": {name: value}}
                else:
                    choice = {"kind": kind.group(1), name: value}
                    if '"model"' in line:
                        choice["model"] = "all-MiniLM-L6-v2"
                    if '"overlap"' in line and name != "overlap":  # the other fields at their lowest
                        choice["overlap"] = 0
                    space = {**base, where: [choice]}
                if accepted:
                    space_from_dict(space)
                else:
                    with pytest.raises(SpaceError, match=name):
                        space_from_dict(space)
                checked += 1
    assert checked == 4 * 14  # 4 chunker sizes, sentence overlap, k1, b, rrf_k, dense_weight, top_n, blend, and
    # generation contexts, context_tokens, max_answer_tokens


# --- a new kind is one class -------------------------------------------------------------------------


@pytest.fixture
def reverse_kind(monkeypatch):
    """A reranker kind that reverses the first-stage head: defined and registered here, forgotten afterwards."""
    monkeypatch.setattr(RERANKERS, "classes", dict(RERANKERS.classes))

    class ReverseConfig(RerankerConfig):
        kind: Literal["reverse"] = "reverse"

    @RERANKERS.register
    class ReverseReranker(Reranker):
        """Reverses the order of the first-stage head (needs no model)."""

        config = ReverseConfig

        @classmethod
        def from_config(cls, config, embedders):
            return cls(config.blend)

        def score(self, queries, candidates):
            return [np.arange(len(texts), dtype=np.float64) for texts in candidates]

    return ReverseReranker


def test_a_reranker_kind_registered_in_a_test_is_a_whole_new_kind(reverse_kind, tmp_path):
    config = PipelineConfig.model_validate({**BM25, "reranker": {"kind": "reverse", "top_n": 3}})
    assert type(config.reranker) is reverse_kind.config
    assert PipelineConfig.from_yaml(config.to_yaml()) == config
    assert models_of(config) == {}  # the guard asks the kind which models it uses: none

    # the space accepts it, the schema text and the proposer's prompt offer it, a proposal may use it
    space = {"dense_models": ["none"], "lexical": {"tokenizers": ["regex"]},
             "rerankers": [{"kind": "none"}, {"kind": "reverse", "top_n": [2, 3]}]}
    assert space_from_dict(space).rerankers[1].label == "reverse"
    line = '{"kind": "reverse", "top_n": 1..1000 (candidates re-scored per query), "blend": 0..1'
    assert line in describe_space(["all-MiniLM-L6-v2"])
    assert "Reverses the order of the first-stage head" in llm_messages("obs", "en", "-")[0]["content"]
    assert validate_proposal(space, "llm-1")["rerankers"][1]["kind"] == "reverse"

    # a study samples it
    trial = optuna.trial.FixedTrial({"reranker": "reverse", "reranker.top_n": 3})
    sampled = suggest_config(trial, space_from_dict(space))
    assert sampled.reranker == config.reranker

    # and a retriever runs it: the first-stage head of three comes back reversed, the tail stays below it
    docs = [Document(f"d{i}", "", "apple " * (6 - i) + f"filler {i}") for i in range(5)]
    components = Components(tmp_path / "cache.sqlite")
    plain = Retriever(PipelineConfig.model_validate(BM25), components).build(docs).search(["apple"])[0]
    reversed_ = Retriever(config, components).build(docs).search(["apple"])[0]
    assert [d for d, _ in plain] == ["d0", "d1", "d2", "d3", "d4"]
    assert [d for d, _ in reversed_] == ["d2", "d1", "d0", "d3", "d4"]


def test_a_kind_registered_in_a_test_is_forgotten_after_it():
    assert "reverse" not in RERANKERS.kinds()
    with pytest.raises(ValidationError, match="unknown reranker kind 'reverse'"):
        PipelineConfig.model_validate({**BM25, "reranker": {"kind": "reverse"}})
