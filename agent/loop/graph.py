"""The agent loop as a LangGraph StateGraph, checkpointed in SQLite so a killed run resumes: wiring only.

observe_champion -> propose_space -> train_models -> run_studies -> guard_candidate -> record_decision -> ...
until the budget, a stop request, or the iteration or trial limit ends it; then summarize. The nodes are in
:mod:`agent.loop.nodes`, the state and the context they share in :mod:`agent.loop.state`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from itertools import pairwise
from typing import TYPE_CHECKING

from agent.loop import nodes
from agent.loop.state import AgentContext, AgentState, typed_state

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

Node = Callable[[AgentContext, AgentState], AgentState]

ITERATION = (nodes.observe_champion, nodes.propose_space, nodes.train_models, nodes.run_studies,
             nodes.guard_candidate, nodes.record_decision)
"""The nodes of one iteration, in order; each node is named as its function."""


def _after_observing(done: str, proceed: str, state: AgentState) -> str:
    return done if state.get("observation_abandoned") else proceed


def _typed(node: Node, ctx: AgentContext, state: AgentState) -> AgentState:
    """``node`` on the state with its models (a checkpoint from an older evolve holds their JSON forms)."""
    return node(ctx, typed_state(state))


def build_graph(ctx: AgentContext, checkpointer: BaseCheckpointSaver) -> CompiledStateGraph:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(AgentState)
    for node in (*ITERATION, nodes.summarize):
        graph.add_node(node.__name__, partial(_typed, node, ctx))
    graph.add_edge(START, ITERATION[0].__name__)
    again, done = ITERATION[0].__name__, nodes.summarize.__name__
    for before, after in pairwise(ITERATION):
        if before is nodes.observe_champion:  # an observation stopped by `evolve stop` or the budget ends the run
            graph.add_conditional_edges(before.__name__, partial(_after_observing, done, after.__name__),
                                        {done: done, after.__name__: after.__name__})
        else:
            graph.add_edge(before.__name__, after.__name__)
    graph.add_conditional_edges(ITERATION[-1].__name__,
                                lambda state: again if nodes.next_step(ctx, typed_state(state)) == "continue" else done,
                                {again: again, done: done})
    graph.add_edge(done, END)
    return graph.compile(checkpointer=checkpointer)
