"""The loop's train move: offered when training data has grown, asked for by either proposer (the process test is
tests/e2e/test_train_loop.py)."""

from __future__ import annotations

import numpy as np
import pytest

from agent.loop.proposers import heuristic_proposal, llm_proposal, validate_proposal
from agent.loop.train_move import with_trained
from experiments.space import SpaceError, space_from_dict
from pipelines import ModelCatalog
from pipelines.embedders import save_adapter


def test_the_heuristic_trains_when_offered_and_the_models_join_its_space(tmp_path):
    catalog = ModelCatalog(tmp_path / "models")
    champion = {"dense": {"model": "all-MiniLM-L6-v2"}, "lexical": {"tokenizer": "english"},
                "fusion": {"kind": "rrf"}}
    proposal = heuristic_proposal(0, "en", champion, None, None, [], train=["adapter", "embedder"])
    assert proposal.train == ["adapter", "embedder"] and "train" in proposal.space["name"]
    folder = save_adapter(tmp_path / "w", np.eye(384, dtype=np.float32))
    adapter = catalog.trained().save("adapter", folder, {"base_model": "all-MiniLM-L6-v2"}).model_id
    trained = [{"id": adapter, "kind": "adapter"},
               {"id": "trained:reranker-0123456789ab", "kind": "reranker"},
               {"id": "trained:memory-0123456789ab", "kind": "memory"}]
    space = with_trained(space_from_dict(proposal.space), trained, catalog)  # validated as a whole space
    assert space.dense_models == ["all-MiniLM-L6-v2", adapter]
    assert [r.kind for r in space.rerankers] == ["none", "cross-encoder", "memory"]
    memory = space.rerankers[-1].model_dump(mode="json", exclude_none=True)
    assert (memory["blend"]["low"], memory["blend"]["high"]) == (0.2, 0.5) and "threshold" not in memory
    with pytest.raises(SpaceError, match="trained:adapter-aaaaaaaaaaaa is not in"):  # a model that is not there
        with_trained(space, [{"id": "trained:adapter-aaaaaaaaaaaa", "kind": "adapter"}], catalog)
    with pytest.raises(SpaceError, match="is not in"):  # the adapter is in this project's catalog, not another's
        with_trained(space_from_dict(proposal.space), trained[:1], ModelCatalog(tmp_path / "elsewhere"))
    assert heuristic_proposal(0, "en", champion, None, None, []).train == []


class OneReply:
    model = "scripted"

    def __init__(self, reply: dict):
        self.reply = reply

    def structured(self, messages, schema, **params):
        self.messages = messages
        return schema.model_validate(self.reply)


def test_the_llm_may_ask_only_for_offered_training_and_name_only_models_evolve_trained(tmp_path):
    catalog = ModelCatalog(tmp_path / "models")
    space = {"dense_models": ["all-MiniLM-L6-v2"], "lexical": {"tokenizers": ["english"]}}
    llm = OneReply({"rationale": "train both", "space": space, "train": ["adapter", "embedder"]})
    offer = {"examples": 120, "per_source": {"train-split": 120}, "kinds": ["adapter"]}
    proposal, notes = llm_proposal(llm, "obs", "en", "- nothing yet", 1, offer=offer)
    assert proposal.train == ["adapter"]
    assert any("not offered for ['embedder']" in n for n in notes)
    assert "Training is offered: 120 training examples" in llm.messages[0]["content"]
    proposal, _ = llm_proposal(OneReply({"rationale": "r", "space": space, "train": ["adapter"]}), "obs", "en", "", 2)
    assert proposal.train == []  # nothing offered: nothing trained

    folder = save_adapter(tmp_path / "w", np.eye(384, dtype=np.float32))
    own = catalog.trained().save("adapter", folder, {"base_model": "all-MiniLM-L6-v2"}).model_id
    validate_proposal({**space, "dense_models": ["all-MiniLM-L6-v2", own]}, "llm-3", catalog)
    with pytest.raises(SpaceError, match="trained:adapter-aaaaaaaaaaaa is not in"):
        validate_proposal({**space, "dense_models": ["trained:adapter-aaaaaaaaaaaa"]}, "llm-4", catalog)
    with pytest.raises(SpaceError, match=f"{own} is not in"):
        validate_proposal({**space, "dense_models": [own]}, "llm-5", ModelCatalog(tmp_path / "other"))
