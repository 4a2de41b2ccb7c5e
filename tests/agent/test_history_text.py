"""The earlier iterations as the LLM proposer is told them: one text, built once (agent.loop.nodes.history_text),
sent by the loop's propose_space and by the loop-replay bench (bench/loop/replay.py), so the bench measures the
prompt the loop sends."""

import inspect

from agent.loop import nodes
from agent.loop.nodes import history_text
from bench.loop import replay


def entry(i: int, outcome: str) -> dict:
    return {"iteration": i, "space_name": f"space-{i}", "proposer": "heuristic", "best_tune_value": 0.5 + i / 100,
            "covered": {"models": ["minilm", "e5-small"], "rerankers": []}, "outcome": outcome}


def test_no_history_says_nothing_yet_and_asks_nothing():
    assert history_text([]) == "- nothing yet"


def test_each_iteration_one_line_with_one_bit_of_outcome():
    text = history_text([entry(0, "promoted"), entry(1, "rejected")])
    lines = text.splitlines()
    assert lines[0] == "- iteration 0: space space-0 (heuristic) covering models minilm, e5-small; best tune 0.5, promoted"
    assert lines[1].endswith("best tune 0.51, not promoted")  # which rule failed is never told
    assert lines[2].startswith("Do not propose a space these already covered")


def test_only_the_last_twelve_are_listed():
    lines = history_text([entry(i, "kept") for i in range(15)]).splitlines()
    assert lines[0] == "- 3 earlier iterations left out"
    assert [line.split(":")[0] for line in lines[1:13]] == [f"- iteration {i}" for i in range(3, 15)]


def test_the_loop_and_the_bench_use_it():
    assert "history_text(" in inspect.getsource(nodes.propose_space)
    assert "history_text(" in inspect.getsource(replay.LLMProposer.__call__)
