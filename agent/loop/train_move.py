"""The loop's train move: when its training data has grown enough, train evolve's own models and put them in the
next study's space, paid for from the loop's budget like any trial.

When: at least :data:`MIN_EXAMPLES` guarded examples, and :data:`GROWTH` times as many as the last training used
(the first time: any amount over the minimum). What: a query adapter on the best dense model so far (seconds on a
CPU, no re-embedding) and a memory of the training questions under that model (seconds); with a GPU, or on a CPU
with :data:`SLOW_KINDS_AFTER_S` of budget left, also a fine-tuned embedder and a cross-encoder started from it
(minutes, and the corpus is embedded again). Each kind gets a share of the time the iteration may spend training
and stops at a checkpoint when it runs out (a later train move, or a resumed run, goes on from there).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypedDict

from agent.paths import ProjectPaths
from agent.training import gather, mine
from experiments import SearchSpace
from pipelines import torch_device
from pipelines.embedders import resolve_model

if TYPE_CHECKING:
    from agent.loop.state import AgentContext, AgentState, Trained
    from pipelines import ModelCatalog

MIN_EXAMPLES = 50
GROWTH = 1.25
SLOW_KINDS_AFTER_S = 2700.0
"""On a CPU, fine-tuning an embedder and a reranker (and embedding the corpus again) takes tens of minutes."""
TRAIN_SHARE = 0.25
"""Of the time an iteration has left, at most this share goes to training."""
NEGATIVES = 7
"""Hard negatives mined per query once; each kind takes as many as it uses."""
ENGLISH_FALLBACK = "all-MiniLM-L6-v2"


class TrainingOffer(TypedDict):
    """What the loop may train now, as the proposers are told it."""

    examples: int
    per_source: dict[str, int]
    kinds: list[str]


def training_offer(ctx: AgentContext, state: AgentState) -> TrainingOffer | None:
    """{examples, per_source, kinds} when the loop may train now, else None (no sources, too little or no new data).
    Counting is cheap: the sets and the feedback store are read, nothing is embedded."""
    if not ctx.training:
        return None
    try:
        data = gather(ctx.project.root, ctx.training)
    except Exception as err:  # noqa: BLE001 - an unreadable source must not stop the loop: say it, go on
        ctx.say(f"  training data unreadable, no train move: {str(err).splitlines()[0][:200]}")
        return None
    count, last = len(data.examples), state.get("trained_on", 0)
    if count < MIN_EXAMPLES or (last and count < GROWTH * last):
        return None
    kinds = ["adapter", "memory"]
    if torch_device() == "cuda" or ctx.remaining() >= SLOW_KINDS_AFTER_S:
        kinds += ["embedder", "reranker"] if _fine_tunable(ctx, state) else []
    return TrainingOffer(examples=count, per_source=data.summary()["per_source"], kinds=kinds)


def _dense_base(ctx: AgentContext, state: AgentState) -> str:
    """The dense model the best config so far (else the champion) uses; the language's first model without one."""
    from agent.loop.proposers import models_for

    for config in (state.get("best_overall"), state.get("champion")):
        if config is not None and config.dense is not None and config.dense.model:
            return config.dense.model
    return models_for(ctx.language, ctx.components.catalog)[0]


def _fine_tunable(ctx: AgentContext, state: AgentState) -> str | None:
    """The transformer an embedder starts from: the dense base when it is a sentence-transformers model, else the
    packaged English MiniLM for English sets, else none (no Korean model here has trainable weights)."""
    base = _dense_base(ctx, state)
    if resolve_model(base, ctx.components.catalog).loader == "sentence-transformers":
        return base
    return ENGLISH_FALLBACK if ctx.language == "en" else None


def train_models(ctx: AgentContext, state: AgentState, kinds: list[str]) -> AgentState:
    """Train the asked kinds within the iteration's training share; returns the state update: ``trained`` (this
    run's models, newest last), ``trained_on`` and the space with the new models added."""
    from experiments.training import TrainSettings, log_trained_model, train_model
    from agent.progress import stage_lines

    data = gather(ctx.project.root, ctx.training)
    allowance = TRAIN_SHARE * max(0.0, ctx.remaining() - ctx.reserve - ctx.answer_allowance(state))
    started = time.time()
    ctx.say(f"  train move: {len(data.examples)} examples {data.summary()['per_source']}; up to "
            f"{allowance:.0f} s for {', '.join(kinds)}")
    mine(data, state["champion"], ctx.components, NEGATIVES, stage_lines(ctx.say, "    "))
    trained: list[Trained] = []
    base_embedder = None
    for index, kind in enumerate(kinds):
        left = allowance - (time.time() - started)
        if left < 5 or ctx.stop_requested():
            ctx.say(f"    {kind}: no training time left")
            break
        base = {"adapter": _dense_base(ctx, state), "memory": _dense_base(ctx, state),
                "embedder": _fine_tunable(ctx, state), "reranker": base_embedder or _fine_tunable(ctx, state)}[kind]
        if base is None:
            continue
        deadline = time.time() + left / (len(kinds) - index)
        try:
            outcome = train_model(kind, base, data, TrainSettings(), ctx.components, deadline=deadline,
                                  progress=lambda done, total, k=kind: ctx.say(f"    {k}: step {done}/{total}")
                                  if done == total or done % 50 == 0 else None)
        except ValueError as err:
            ctx.say(f"    {kind} from {base}: not trained ({err})")
            continue
        if outcome.model is None:
            ctx.say(f"    {kind} from {base}: stopped at step {outcome.report['steps']} of "
                    f"{outcome.report['planned_steps']} (checkpoint kept; a later train move goes on)")
            continue
        model = outcome.model
        log_trained_model(model, ctx.project.registry.tracking_uri,
                          ProjectPaths.of(ctx.project.root).mlflow_artifacts)
        if kind == "embedder":
            base_embedder = model.model_id
        trained.append({"id": model.model_id, "kind": kind, "base": base, "seconds": outcome.report.get("seconds"),
                        "examples": len(data.examples), "iteration": state.get("iteration", 0)})
        ctx.say(f"    trained {model.model_id} from {base} in {outcome.report.get('seconds')} s")
    return {"trained": state.get("trained", []) + trained, "trained_on": len(data.examples),
            "proposal": with_trained(state["proposal"], trained, ctx.components.catalog)}


def with_trained(space: SearchSpace, trained: list[Trained], catalog: ModelCatalog | None = None) -> SearchSpace:
    """The space with the new models as choices beside what it had: dense ids among its dense models, a reranker
    as a cross-encoder choice and a memory as a memory choice beside 'none' (its blend around the default SciFact's
    train split chose, bench/results/training-memory.md; its threshold the one it calibrated for its embedder)."""
    dense = [t["id"] for t in trained if t["kind"] in ("adapter", "embedder")]
    rerankers = [{"kind": "cross-encoder", "model": t["id"], "top_n": [20, 50], "blend": {"low": 0.3, "high": 0.7}}
                 for t in trained if t["kind"] == "reranker"]
    rerankers += [{"kind": "memory", "model": t["id"], "top_n": [100], "blend": {"low": 0.2, "high": 0.5}}
                  for t in trained if t["kind"] == "memory"]  # the threshold: the memory's calibrated one
    if dense:
        space = space.with_dense_models(dense, catalog)
    if rerankers:
        space = space.with_rerankers(rerankers, catalog)
    return space
