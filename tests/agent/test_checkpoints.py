"""The loop's checkpoints stay a few per run however long it runs, and a run killed midway still resumes from them
(a real LangGraph graph on a real SQLite file; the whole loop's SIGKILL resume is tests/e2e/test_agent.py)."""

from __future__ import annotations

import sqlite3
from typing import TypedDict

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from agent.loop.checkpoints import KEEP, LatestCheckpoints


class State(TypedDict):
    step: int
    history: list[str]


def loop_graph(saver, steps: int, crash_at: int | None = None):
    """A graph shaped like the loop's: one node per step, each appending to a growing history, until ``steps``."""
    crashed = []

    def work(state: State) -> State:
        if state["step"] == crash_at and not crashed:
            crashed.append(True)
            raise RuntimeError("killed")
        return {"step": state["step"] + 1, "history": [*state["history"], f"iteration {state['step']}" * 50]}

    graph = StateGraph(State)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_conditional_edges("work", lambda s: END if s["step"] >= steps else "work")
    return graph.compile(checkpointer=saver)


def test_a_long_run_keeps_its_newest_checkpoints_only(tmp_path):
    config = {"configurable": {"thread_id": "run-a"}, "recursion_limit": 1000}
    plain = SqliteSaver(sqlite3.connect(tmp_path / "plain.sqlite", check_same_thread=False))
    loop_graph(plain, 120).invoke({"step": 0, "history": []}, config)
    stored = sqlite3.connect(tmp_path / "plain.sqlite").execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    assert stored > 120  # every step kept, each with the whole history: the growth this module stops

    saver = LatestCheckpoints.at(tmp_path / "pruned.sqlite")
    final = loop_graph(saver, 120).invoke({"step": 0, "history": []}, config)
    assert final["step"] == 120 and len(final["history"]) == 120
    assert saver.count("run-a") == KEEP
    assert sqlite3.connect(tmp_path / "pruned.sqlite").execute("SELECT COUNT(*) FROM writes").fetchone()[0] <= KEEP * 4
    assert saver.get_tuple(config).checkpoint["channel_values"]["step"] == 120  # the newest is the one kept


def test_a_run_killed_midway_resumes_from_the_newest_checkpoint_with_nothing_lost(tmp_path):
    config = {"configurable": {"thread_id": "run-b"}, "recursion_limit": 1000}
    saver = LatestCheckpoints.at(tmp_path / "checkpoints.sqlite")
    graph = loop_graph(saver, 60, crash_at=37)
    with pytest.raises(RuntimeError, match="killed"):
        graph.invoke({"step": 0, "history": []}, config)
    assert saver.count("run-b") == KEEP
    # a new process: a new connection to the same file
    again = LatestCheckpoints.at(tmp_path / "checkpoints.sqlite")
    final = loop_graph(again, 60).invoke(None, config)
    assert final["step"] == 60
    assert final["history"] == [f"iteration {i}" * 50 for i in range(60)]  # no iteration lost or repeated


def test_runs_saved_before_pruning_are_trimmed_when_the_loop_starts(tmp_path):
    path = tmp_path / "checkpoints.sqlite"
    plain = SqliteSaver(sqlite3.connect(path, check_same_thread=False))
    for run in ("old-1", "old-2"):
        loop_graph(plain, 20).invoke({"step": 0, "history": []}, {"configurable": {"thread_id": run}})
    saver = LatestCheckpoints.at(path)
    assert saver.count("old-1") > KEEP
    saver.prune_all()
    assert saver.count("old-1") == saver.count("old-2") == KEEP
    assert loop_graph(saver, 20).get_state({"configurable": {"thread_id": "old-2"}}).values["step"] == 20
    with pytest.raises(ValueError, match="at least 1"):
        LatestCheckpoints.at(path, keep=0)
