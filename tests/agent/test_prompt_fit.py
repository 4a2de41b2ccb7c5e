"""The proposer's prompt fits the model's context: failure examples quoting long Korean pages are trimmed (quoted
chunks first, then queries, then whole examples from the last) before the request is sent.

The unit tests count with the client's safe estimate; the server tests send a ~7,000-token Korean prompt to a real
llama.cpp server with a 4,096-token context: whole, it is refused; through ``llm_proposal``, it is accepted.
"""

from __future__ import annotations

import re

import pytest

from agent.loop.prompt_fit import CHUNK_QUOTE, EXAMPLE, QUERY_QUOTE, fit_prompt
from agent.loop.proposers import ANSWER_TOKENS, LLMProposal, llm_messages, llm_proposal, proposal_json_schema
from helpers import korean_observation
from pipelines.llm import LLMClient, LLMError, LLMSettings
from pipelines.llm.tokens import estimate_chat_tokens

HISTORY = "- iteration 0: space heuristic-wide-0 (heuristic), best tune 0.61, not promoted"


def build(observation: str, history: str) -> list[dict[str, str]]:
    return llm_messages(observation, "ko", history)


def examples(observation: str) -> list[str]:
    return [line for line in observation.split("\n") if line.startswith(EXAMPLE)]


def quotes(observation: str, pattern: re.Pattern[str]) -> list[str]:
    return [m.group(1) for line in examples(observation) for m in pattern.finditer(line)]


def test_quoted_chunks_are_cut_before_any_example_is_dropped():
    """Pages of 12 sentences (~540 characters) in a model's 8,192 tokens: cutting the quotes is enough."""
    observation = korean_observation(sentences=12)
    before = estimate_chat_tokens(build(observation, HISTORY))
    budget = 8192 - ANSWER_TOKENS - 64
    fitted = fit_prompt(observation, HISTORY, build, estimate_chat_tokens, budget)
    assert before > 2 * 8192 and fitted.before == before
    assert fitted.fits and fitted.tokens == estimate_chat_tokens(build(fitted.observation, fitted.history)) <= budget
    assert fitted.cuts and fitted.cuts[0].startswith("quoted chunks cut to")
    assert not any("dropped" in cut for cut in fitted.cuts)
    assert len(examples(fitted.observation)) == 5 and fitted.history == HISTORY  # all examples, all history kept
    limit = int(fitted.cuts[0].split()[-2])
    assert len(quotes(fitted.observation, CHUNK_QUOTE)) == 15
    assert all(len(q) <= limit + 1 for q in quotes(fitted.observation, CHUNK_QUOTE))
    assert quotes(fitted.observation, QUERY_QUOTE) == quotes(observation, QUERY_QUOTE)  # queries untouched
    assert fitted.note(budget) == f"prompt {before:,} -> {fitted.tokens:,} tokens: {', '.join(fitted.cuts)}"


def test_when_cutting_is_not_enough_examples_go_from_the_last_and_the_first_survives():
    observation = korean_observation()
    first = examples(observation)[0]
    trimmed = QUERY_QUOTE.sub(lambda m: m.group(1)[:30] + "…", CHUNK_QUOTE.sub("…", first))
    one = "\n".join(trimmed if line == first else line for line in observation.split("\n")
                    if line == first or not line.startswith(EXAMPLE))
    budget = estimate_chat_tokens(build(one, HISTORY))  # room for exactly one trimmed example
    fitted = fit_prompt(observation, HISTORY, build, estimate_chat_tokens, budget)
    assert fitted.fits and fitted.tokens <= budget
    assert [cut.split(" cut")[0] for cut in fitted.cuts[:2]] == ["quoted chunks left out", "queries"]
    assert fitted.cuts[-1] == "4 examples dropped"
    kept = examples(fitted.observation)
    assert len(kept) == 1 and kept[0].startswith(EXAMPLE + quotes(first, QUERY_QUOTE)[0][:30])
    assert "cost of embedding this corpus" in fitted.observation  # lines other than examples stay


def test_the_history_goes_last_oldest_lines_first():
    history = "\n".join(f"- iteration {i}: space llm-{i} (llm), best tune 0.6{i % 10}, not promoted" for i in range(40))
    observation = korean_observation(examples=2)
    budget = estimate_chat_tokens(build("", "")) + 150
    fitted = fit_prompt(observation, history, build, estimate_chat_tokens, budget)
    assert fitted.fits and not examples(fitted.observation) and "2 examples dropped" in fitted.cuts
    assert fitted.cuts[-1].endswith("oldest of 40 history lines left out")
    assert fitted.history and history.endswith(fitted.history)  # the most recent lines are kept


def test_a_prompt_that_cannot_fit_is_not_sent():
    """A context too small even for the bare prompt: no request, a note, None (the heuristic proposes). The real
    client, pointed at a port where nothing answers: it counts by its estimate and takes the configured context."""
    client = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="none", context_tokens=1500,
                                   max_retries=0))
    assert client.context_tokens() == 1500
    proposal, notes = llm_proposal(client, korean_observation(), "ko", HISTORY, 1)
    assert proposal is None and client.calls == 0
    assert len(notes) == 1 and notes[0].endswith("not sent") and "leaves no room" in notes[0]


@pytest.fixture
def small_context(smollm2_small_context):
    """SmolLM2 behind llama.cpp with 4,096 tokens of context: the size that refused the Korean pages."""
    return smollm2_small_context


def test_a_7000_token_korean_prompt_is_refused_whole_and_accepted_fitted(small_context):
    client = LLMClient(small_context)
    observation = korean_observation()
    whole = llm_messages(observation, "ko", HISTORY)
    tokens = client.count_tokens(whole)
    assert client.context_tokens() == 4096 and 6500 < tokens < 8000
    with pytest.raises(LLMError, match="exceeds the available context size"):  # what the loop got before
        client.structured(whole, LLMProposal, max_tokens=ANSWER_TOKENS, json_schema=proposal_json_schema("ko"))
    sent = client.calls
    proposal, notes = llm_proposal(client, observation, "ko", HISTORY, 1)
    fitted = re.match(rf"prompt {tokens:,} -> ([\d,]+) tokens: quoted chunks cut to \d+ chars", notes[0])
    assert fitted and int(fitted.group(1).replace(",", "")) <= 4096 - ANSWER_TOKENS
    assert client.calls > sent and not any("LLM failed" in note for note in notes)  # sent, and answered
    assert proposal is not None or any("rejected by the schema" in note for note in notes)
    if proposal is not None:
        assert proposal.proposer == "llm" and proposal.space["dense_models"]
