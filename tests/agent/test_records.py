"""The loop's history is one typed record per iteration: validated where it is read, tolerant of records an older
or newer evolve wrote (a resumed checkpoint, a summary file), and strict about what every record must hold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.loop.proposer_choice import credit
from agent.loop.records import IterationRecord, records
from agent.loop.state import best_candidate


def held(value: float, failure: float | None = None) -> dict:
    sets = {"claude-docs-qa": {"ndcg@10": value, "queries": 30}}
    if failure is not None:
        sets["failure-set"] = {"ndcg@10": failure, "queries": 5}
    return sets


def test_a_record_round_trips_through_the_state_form():
    record = IterationRecord(iteration=3, proposer="heuristic", asked="llm", outcome="promoted", promoted_version="2",
                             candidate_heldout=held(0.71), covered={"models": ["all-MiniLM-L6-v2"], "chunkers": [None]},
                             looked=True, gain=0.01, seconds=120.0)
    state = record.as_state()
    assert IterationRecord.model_validate(state) == record
    assert record.who_was_asked == "llm" and record.promoted and not record.not_looked
    assert record.held_back() == 0.71


def test_older_and_newer_entries_read_and_broken_ones_do_not():
    older = {"iteration": 0, "proposer": "heuristic", "space_name": "wide-0", "rationale": None,
             "outcome": "rejected: heldout_gain"}  # before asked, covered, gain and seconds were kept
    newer = {**older, "iteration": 1, "a_field_from_the_future": {"x": 1}}
    first, second = records([older, newer])
    assert first.who_was_asked == "heuristic" and first.gain is None and first.trained == []
    assert second.iteration == 1
    with pytest.raises(ValidationError, match="iteration"):
        records([{"proposer": "heuristic", "outcome": "promoted"}])
    with pytest.raises(ValidationError, match="best_tune_value"):
        records([{**older, "best_tune_value": "high"}])


def test_readers_take_records_or_their_state_form_alike():
    history = [IterationRecord(iteration=0, proposer="llm", candidate_heldout=held(0.70), gain=None),
               IterationRecord(iteration=1, proposer="heuristic", candidate_heldout=held(0.69, failure=0.99),
                               gain=0.02, seconds=60.0),
               IterationRecord(iteration=2, proposer="heuristic", asked="llm", outcome="not looked: no gain",
                               gain=0.0, seconds=30.0)]
    as_state = [h.as_state() for h in history]
    # the failure set is never the held-back score a candidate is ranked by
    assert best_candidate(history, "ndcg@10")["iteration"] == 0
    assert best_candidate(as_state, "ndcg@10") == best_candidate(history, "ndcg@10")
    assert credit(as_state, "heuristic").looks == 1 and credit(history, "llm").seconds == 30.0


def test_the_checkpoint_keeps_the_state_s_models_and_an_older_checkpoint_s_json_is_read_as_them():
    """The loop's state holds configs, the space and the history as models; the checkpointer's serializer gives
    them back as models, and a state an older evolve checkpointed (their JSON forms) is validated once."""
    from agent.loop.state import checkpoint_serializer, typed_state
    from helpers import bm25_space
    from pipelines import PipelineConfig

    config = PipelineConfig.model_validate({"name": "c", "lexical": {"tokenizer": "english"}, "fusion": {"kind": "none"}})
    record = IterationRecord(iteration=0, proposer="heuristic", candidate_heldout=held(0.5), outcome="promoted")
    state = {"champion": config, "best": config, "fold_best": [config], "proposal": bm25_space(), "history": [record],
             "guard": {"passed": True, "failed_rules": [], "rules": []}}
    serde = checkpoint_serializer()
    back = serde.loads_typed(serde.dumps_typed(state))
    assert as_json(back) == as_json(state) and isinstance(back["proposal"], type(state["proposal"]))
    assert isinstance(back["history"][0], IterationRecord) and back["champion"].sha256() == config.sha256()

    older = {**state, "champion": config.model_dump(mode="json"), "best": config.model_dump(mode="json"),
             "fold_best": [config.model_dump(mode="json")], "proposal": state["proposal"].model_dump(mode="json"),
             "history": [record.as_state()]}
    assert as_json(typed_state(older)) == as_json(state)
    assert isinstance(typed_state(older)["fold_best"][0], PipelineConfig)


def as_json(state: dict) -> dict:
    """A state with each model as its JSON form and its type (a space's choices compare by value only so)."""
    def plain(value):
        if isinstance(value, list):
            return [plain(v) for v in value]
        return (type(value).__name__, value.model_dump(mode="json")) if hasattr(value, "model_dump") else value

    return {key: plain(value) for key, value in state.items()}
