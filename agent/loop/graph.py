"""The agent loop as a LangGraph StateGraph, checkpointed in SQLite so a killed run resumes.

observe -> propose -> experiment -> evaluate -> guard -> promote -> observe ... until the budget,
a stop request, or the iteration limit ends it; then summarize.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypedDict

from agent.loop.proposers import heuristic_proposal, llm_proposal
from agent.progress import stage_lines
from agent.loop.runtime import AgentPaths, BudgetClock, write_status
from evalsets import EvalSet, load_evalset
from experiments.evaluate import score_queries
from experiments.splits import tune_and_heldout
from experiments import StudyRunner, StudySpec, default_storage
from guardrails import Policy, Project, evaluate_against_champion, record_decision
from pipelines import Components, PipelineConfig, Retriever, StageLog

_HANGUL = re.compile("[\uac00-\ud7a3]")


class AgentState(TypedDict, total=False):
    run_id: str
    budget_seconds: float
    iteration: int
    max_iterations: int
    max_trials: int | None
    champion: dict[str, Any]
    champion_heldout: float | None
    observation: str
    proposal: dict[str, Any]
    rationale: str
    proposer: str
    proposal_notes: list[str]
    study: str
    best: dict[str, Any] | None
    fold_best: list[dict[str, Any]] | None
    """Cross-fitting: the winner of each fold's study (tuned without that fold), scored on that fold."""
    best_overall: dict[str, Any] | None
    """The best config any study of this run found (by tuning score), which the heuristic builds on."""
    best_overall_value: float | None
    best_tune_value: float | None
    guard: dict[str, Any]
    promoted_version: str | None
    history: list[dict[str, Any]]
    trials_run: int
    proposals: dict[str, int]
    stop_reason: str
    summary: dict[str, Any]


@dataclass
class AgentContext:
    """What the nodes need that is not state: handles, settings, the LLM (or None)."""

    project: Project
    paths: AgentPaths
    clock: BudgetClock
    evalset_path: Path
    policy: Policy
    components: Components
    llm: Any | None
    trials_per_iteration: int = 20
    failure_set: EvalSet | None = None
    tracker: Any = None
    llm_unavailable_reason: str = ""
    storage_url: str | None = None
    """Optuna storage for the studies (default: SQLite in the project); PostgreSQL lets `evolve worker --follow`
    processes on other nodes run trials of the same studies."""
    folds: int | None = None
    """Cross-fitting folds for the decision (None: one fixed hold-back; see experiments.splits.decision_folds)."""
    say: Callable[[str], None] = print
    """Where progress lines go (the terminal of `evolve start`)."""
    _evidence: dict[str, Any] = field(default_factory=dict)
    last_state: dict[str, Any] = field(default_factory=dict)
    """The state as the last node saw it (for a summary written by the budget watchdog)."""

    def remaining(self, state: AgentState | None = None) -> float:
        return self.clock.remaining()

    @property
    def reserve(self) -> float:
        """Seconds kept after a study for evaluate, guard and promote."""
        return min(120.0, max(20.0, 0.1 * self.clock.budget_seconds))

    def write_summary(self, state: dict[str, Any], reason: str) -> dict[str, Any]:
        summary = {"run_id": state.get("run_id"), "stop_reason": reason, "iterations": state.get("iteration", 0),
                   "trials_run": state.get("trials_run", 0), "proposals": state.get("proposals", {}),
                   "champion": (state.get("champion") or {}).get("name"),
                   "champion_heldout": state.get("champion_heldout"),
                   "budget_seconds": self.clock.budget_seconds, "spent_seconds": round(self.clock.spent(), 1),
                   "best_candidate": best_candidate(state.get("history", [])), "history": state.get("history", [])}
        path = self.paths.folder / f"summary-{state.get('run_id')}.json"
        path.write_text(json.dumps(summary, indent=2, default=str))
        return summary

    def stop_requested(self) -> bool:
        return self.paths.stop.exists()


def language_of(evalset: EvalSet) -> str:
    """'ko' when Hangul makes up a fifth or more of the query characters, else 'en'."""
    sample = "".join(q.text for q in evalset.queries[:200]).replace(" ", "")
    return "ko" if len(_HANGUL.findall(sample)) >= 0.2 * max(len(sample), 1) else "en"


def run_trial_count(storage_url: str, run_id: str) -> int:
    """Finished trials of every study of this run, from the storage (what a hard stop can still count)."""
    import optuna

    from experiments.study import FINISHED, open_storage

    storage = open_storage(storage_url)
    total = 0
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name.startswith(f"{run_id}-it"):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            total += len(study.get_trials(deepcopy=False, states=FINISHED))
    return total


def best_candidate(history: list[dict[str, Any]], metric: str = "ndcg@10") -> dict[str, Any] | None:
    """The iteration whose best config scored highest on the held-back queries (promoted or not)."""
    scored = []
    for entry in history:
        sets = entry.get("candidate_heldout") or {}
        heldout = [v for name, v in sets.items() if name != "failure-set"]
        if heldout and heldout[0].get(metric) is not None:
            scored.append((heldout[0][metric], entry))
    if not scored:
        return None
    value, entry = max(scored, key=lambda pair: pair[0])
    return {"iteration": entry["iteration"], "config": entry.get("best_config"), "heldout": value,
            "outcome": entry["outcome"], "promoted_version": entry.get("promoted_version"),
            "proposer": entry["proposer"], "rationale": entry["rationale"]}


def build_graph(ctx: AgentContext, checkpointer: Any):
    from langgraph.graph import END, START, StateGraph

    if ctx.folds:  # cross-fitting: every query is held back in one fold, so all of them tune some fold
        tune = heldout = load_evalset(ctx.evalset_path)
        fold_heldout = [tune_and_heldout(ctx.evalset_path, fold=f, folds=ctx.folds)[1] for f in range(ctx.folds)]
    else:
        tune, heldout = tune_and_heldout(ctx.evalset_path)
        fold_heldout = [heldout]
    language = language_of(tune)

    def status(state: AgentState, node: str, **extra: Any) -> None:
        ctx.last_state = dict(state)
        write_status(ctx.paths, {"run_id": state.get("run_id"), "node": node, "iteration": state.get("iteration", 0),
                                 "budget_left_s": round(ctx.remaining()),
                                 "spent_s": round(ctx.clock.spent()),
                                 "champion": (state.get("champion") or {}).get("name"),
                                 "champion_heldout_ndcg@10": state.get("champion_heldout"),
                                 "best_tune_value": state.get("best_overall_value"),
                                 "best_candidate_heldout_ndcg@10": (best_candidate(state.get("history", []))
                                                                    or {}).get("heldout"),
                                 "proposals": state.get("proposals", {}), "trials_run": state.get("trials_run", 0),
                                 "llm": (f"{ctx.llm.model} at {ctx.llm.settings.base_url}" if ctx.llm is not None
                                         else f"none ({ctx.llm_unavailable_reason or 'not configured'})"),
                                 "promoted": [h.get("promoted_version") for h in state.get("history", [])
                                              if h.get("promoted_version")], **extra})

    def observe(state: AgentState) -> AgentState:
        status(state, "observe")
        champion = ctx.project.champion_config()
        retriever = Retriever(champion, ctx.components).build(tune.corpus, stage_lines(ctx.say, "  "))
        rows = score_queries(retriever, tune.queries[:300], tune.qrels, StageLog())
        worst = sorted(rows, key=lambda r: r["ndcg@10"])[:5]
        by_id = {q.query_id: q for q in tune.queries}
        lines = [f"champion {champion.name}: mean ndcg@10 {sum(r['ndcg@10'] for r in rows) / len(rows):.4f} on "
                 f"{len(rows)} tuning queries ({language})"]
        for row in worst:
            right = tune.document(row["relevant"][0]) if row["relevant"] else None
            got = [tune.document(d) for d in row["top10"][:2]]
            lines.append(f'- query "{by_id[row["query_id"]].text[:200]}" ndcg@10 {row["ndcg@10"]:.2f}; returned '
                         + "; ".join(f'[{d.title[:60]}] "{d.text[:160]}"' for d in got)
                         + f'; the right document: [{right.title[:60] if right else "?"}] '
                           f'"{right.text[:160] if right else ""}"')
        if ctx.failure_set is not None:
            lines.append(f"failure set from user feedback: {len(ctx.failure_set.queries)} queries")
        held = score_queries(retriever, heldout.queries, heldout.qrels, StageLog())
        champion_heldout = sum(r["ndcg@10"] for r in held) / len(held)
        ctx.say(f"iteration {state['iteration']}: champion {champion.name}, held-back nDCG@10 {champion_heldout:.4f} "
                f"({len(held)} queries); {ctx.remaining() / 60:.1f} min of budget left")
        return {"champion": json.loads(champion.model_dump_json()), "observation": "\n".join(lines),
                "champion_heldout": champion_heldout}

    def propose(state: AgentState) -> AgentState:
        status(state, "propose")
        history = state.get("history", [])
        # the proposer learns one bit per look at the held-back queries (promoted or not), never their scores
        # or which rule failed: that keeps alpha spending over looks valid (see guardrails.stats)
        tried = "\n".join(f"- iteration {h['iteration']}: space {h['space_name']} ({h['proposer']}), best tune "
                          f"{h.get('best_tune_value')}, " + ("promoted" if h["outcome"] == "promoted" else "not promoted")
                          for h in history) or "- nothing yet"
        proposal, notes = None, []
        if ctx.llm is not None:
            # the LLM gets at most a third of what is left (the study needs the rest) and never past the reserve
            seconds = min(600.0, (ctx.remaining() - 2 * ctx.reserve) / 3)
            proposal, notes = llm_proposal(ctx.llm, state["observation"], language, tried, state["iteration"],
                                           seconds=seconds)
        else:
            notes = [f"no LLM: {ctx.llm_unavailable_reason or 'not configured'}; the heuristic proposer takes over"]
        if proposal is None:
            improved = history[-1]["outcome"] == "promoted" if history else None
            proposal = heuristic_proposal(state["iteration"], language, state["champion"], state.get("best_overall"),
                                          improved, history)
            if ctx.llm is not None:
                notes.append("LLM proposal unusable: the heuristic proposer takes over")
        counts = dict(state.get("proposals", {}))
        counts[proposal.proposer] = counts.get(proposal.proposer, 0) + 1
        for note in notes:
            ctx.say(f"  note: {note[:300]}")
        ctx.say(f"  {proposal.proposer} proposes {proposal.space.get('name')}: {proposal.rationale[:300]}")
        return {"proposal": proposal.space, "rationale": proposal.rationale, "proposer": proposal.proposer,
                "proposal_notes": notes + proposal.notes, "proposals": counts}

    def run_study(state: AgentState, name: str, trials: int, fold: int | None, timeout: float) -> dict[str, Any]:
        """One Optuna study on the proposed space (tuning without ``fold`` when cross-fitting)."""
        spec = StudySpec(study_name=name, evalset=str(ctx.evalset_path), space=state["proposal"], n_trials=trials,
                         fold=fold, folds=ctx.folds or 5)
        runner = StudyRunner(spec, ctx.storage_url or default_storage(ctx.project.root), ctx.project.root,
                             ctx.project.registry.tracking_uri, components=ctx.components)
        runner.abandon_at = ctx.clock.deadline - ctx.reserve  # a running trial stops at its next step
        runner.stage_progress = stage_lines(ctx.say, "      ")  # a cold embedding takes minutes

        def stop_if_asked(study: Any, trial: Any) -> None:
            value = f"{trial.values[0]:.4f}" if trial.values else "-"
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
                if trial.datetime_complete and trial.datetime_start else 0.0
            ctx.say(f"    trial {trial.number}: {trial.state.name.lower()} {value} ({seconds:.0f} s)")
            if ctx.stop_requested() or ctx.remaining() < ctx.reserve:
                study.stop()

        if ctx.remaining() > ctx.reserve and not ctx.stop_requested():
            runner.run(timeout=max(1.0, timeout), callbacks=[stop_if_asked])
        runner.close("the agent moved on")
        # the study's own count: trials finished before a crash and resume are counted once
        ran = runner.finished_count()
        complete = [t for t in runner.study.trials if t.state.name == "COMPLETE"]
        ctx.say(f"  study {name}: {ran} trials finished" + (f", best tuning nDCG@10 {max(t.values[0] for t in complete):.4f}"
                                                           if complete else ", none complete"))
        if not complete:
            return {"ran": ran, "best": None, "value": None}
        return {"ran": ran, "best": json.loads(runner.best_config().model_dump_json()),
                "value": max(t.values[0] for t in complete)}

    def experiment(state: AgentState) -> AgentState:
        status(state, "experiment", space=state["proposal"].get("name"))
        name = f"{state['run_id']}-it{state['iteration']}"
        trials = ctx.trials_per_iteration
        if state.get("max_trials"):
            trials = max(1, min(trials, state["max_trials"] - state.get("trials_run", 0)))
        folds = list(range(ctx.folds)) if ctx.folds else [None]
        if ctx.folds:  # the same trials in all, shared out over the folds' studies
            trials = max(3, -(-trials // ctx.folds))
        results = []
        for index, fold in enumerate(folds):
            timeout = (ctx.remaining() - ctx.reserve) / (len(folds) - index)
            results.append(run_study(state, name if fold is None else f"{name}-f{fold}", trials, fold, timeout))
        ran = state.get("trials_run", 0) + sum(r["ran"] for r in results)
        if any(r["best"] is None for r in results):
            return {"study": name, "best": None, "fold_best": None, "best_tune_value": None, "trials_run": ran}
        # the config to register: the fold winner with the best tuning score (no held-back query chooses it)
        chosen = max(results, key=lambda r: r["value"])
        update = {"study": name, "best": chosen["best"], "best_tune_value": chosen["value"], "trials_run": ran,
                  "fold_best": [r["best"] for r in results] if ctx.folds else None}
        if state.get("best_overall_value") is None or chosen["value"] > state["best_overall_value"]:
            update.update(best_overall=update["best"], best_overall_value=chosen["value"])
        return update

    def evaluate(state: AgentState) -> AgentState:
        status(state, "evaluate")
        if not state.get("best"):
            return {"guard": {"passed": False, "failed_rules": ["no complete trial"], "rules": []}}
        candidate = PipelineConfig.model_validate(state["best"])
        winners = [PipelineConfig.model_validate(c) for c in state["fold_best"]] if state.get("fold_best") else None
        report, evidence = evaluate_against_champion(ctx.project, candidate, fold_heldout, ctx.policy, ctx.components,
                                                     ctx.failure_set, scored_by=winners)
        ctx._evidence[state["study"]] = (report, evidence)
        return {"guard": json.loads(json.dumps(report.to_dict(), default=str))}

    def guard(state: AgentState) -> AgentState:
        status(state, "guard", passed=state["guard"].get("passed"))
        return {}

    def promote(state: AgentState) -> AgentState:
        status(state, "promote")
        version = None
        outcome = "rejected: " + ", ".join(state["guard"].get("failed_rules", []))
        if state.get("best"):
            candidate = PipelineConfig.model_validate(state["best"])
            if state["study"] not in ctx._evidence:  # resumed after a crash: recompute the evidence
                evaluate(state)
            report, evidence = ctx._evidence.pop(state["study"])
            version = record_decision(ctx.project, candidate, report, evidence, state["study"])
            if version:
                outcome = "promoted"
        entry = {"iteration": state["iteration"], "space_name": state["proposal"].get("name"),
                 "proposer": state["proposer"], "rationale": state["rationale"], "notes": state.get("proposal_notes"),
                 "study": state.get("study"), "best_tune_value": state.get("best_tune_value"),
                 "best_config": (state.get("best") or {}).get("name"), "champion_heldout": state.get("champion_heldout"),
                 "candidate_heldout": (state["guard"].get("candidate") or {}).get("sets"),
                 "outcome": outcome, "promoted_version": version}
        ctx.say(f"  {outcome}" + (f": registered version {version} as candidate" if version else ""))
        if ctx.tracker is not None:
            ctx.tracker(state, entry)
        return {"history": state.get("history", []) + [entry], "promoted_version": version,
                "iteration": state["iteration"] + 1}

    def should_continue(state: AgentState) -> str:
        if ctx.stop_requested():
            return "stop"
        if ctx.remaining() < 2 * ctx.reserve:
            return "budget"
        if state["iteration"] >= state.get("max_iterations", 1000):
            return "iterations"
        if state.get("max_trials") and state.get("trials_run", 0) >= state["max_trials"]:
            return "trials"
        return "continue"

    def summarize(state: AgentState) -> AgentState:
        reason = should_continue(state)
        summary = ctx.write_summary(state, reason)
        status(state, "finished", stop_reason=reason)
        return {"stop_reason": reason, "summary": summary}

    graph = StateGraph(AgentState)
    for name, node in [("observe", observe), ("propose", propose), ("experiment", experiment),
                       ("evaluate", evaluate), ("guard", guard), ("promote", promote), ("summarize", summarize)]:
        graph.add_node(name, node)
    graph.add_edge(START, "observe")
    graph.add_edge("observe", "propose")
    graph.add_edge("propose", "experiment")
    graph.add_edge("experiment", "evaluate")
    graph.add_edge("evaluate", "guard")
    graph.add_edge("guard", "promote")
    graph.add_conditional_edges("promote", lambda s: "observe" if should_continue(s) == "continue" else "summarize",
                                {"observe": "observe", "summarize": "summarize"})
    graph.add_edge("summarize", END)
    return graph.compile(checkpointer=checkpointer)
