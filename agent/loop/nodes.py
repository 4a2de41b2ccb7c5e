"""The loop's nodes, one function each: ``node(ctx, state) -> the state's update``.

observe_champion -> propose_space -> train_models -> run_studies -> guard_candidate -> record_decision, then again or
summarize. A node reads what earlier nodes left in the state and nothing else of theirs, so a run killed
anywhere resumes from the last checkpoint with what it needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import guardrails
from agent.loop import train_move
from agent.loop.proposers import coverage, heuristic_proposal, llm_proposal, models_for
from agent.loop.proposer_choice import choose_proposer, iteration_credit
from agent.loop.records import IterationRecord, heldout_value, records
from agent.loop.runtime import write_status
from agent.paths import ProjectPaths
from agent.loop.state import (AgentContext, AgentState, Finalist, Guard, Tuning, best_candidate, json_ready,
                              study_prefix)
from agent.progress import stage_lines
from experiments import ANSWER_METRICS, AnswerJudging, SearchSpace, StudyRunner, StudySpec
from experiments import cost_table, score, search_run, space_from_dict
from pipelines import PipelineConfig, Retriever
from pipelines.embedders import WorkAbandoned

if TYPE_CHECKING:
    import optuna

FINALIST_MIN_SECONDS = 120.0
"""An iteration's answer allowance below this all goes to the guard step (a finalist stage needs minutes on CPU)."""
OBSERVED_QUERIES = 300
"""Tuning queries the champion is scored on to show the proposer its worst ones."""


def report_status(ctx: AgentContext, state: AgentState, node: str, **extra: object) -> None:
    """status.json for `evolve status` in another terminal; the state is kept for a watchdog's summary."""
    ctx.last_state = AgentState(**state)
    history = state.get("history", [])
    metric = ctx.metric
    write_status(ctx.paths, {"run_id": state.get("run_id"), "node": node, "iteration": state.get("iteration", 0),
                             "budget_left_s": round(ctx.remaining()), "spent_s": round(ctx.clock.spent()),
                             "champion": champion.name if (champion := state.get("champion")) else None,
                             f"champion_heldout_{metric}": state.get("champion_heldout"),
                             "best_tune_value": state.get("best_overall_value"),
                             f"best_candidate_heldout_{metric}": (best_candidate(history, metric) or {}).get("heldout"),
                             "proposals": state.get("proposals", {}), "trials_run": state.get("trials_run", 0),
                             "trials_reused": state.get("trials_reused", 0),
                             "looks": ctx.looks(history),
                             "llm": (f"{ctx.llm.model} at {ctx.llm.settings.base_url}" if ctx.llm is not None
                                     else f"none ({ctx.llm_unavailable_reason or 'not configured'})"),
                             "promoted": [h.promoted_version for h in history if h.promoted_version],
                             "trained": [t["id"] for t in state.get("trained", [])], **extra})


def observe_champion(ctx: AgentContext, state: AgentState) -> AgentState:
    """The champion's worst tuning queries, for the proposer. Held-back queries are scored by the guard step only:
    what it measured for this champion is carried in the state, and never shown to the proposer."""
    report_status(ctx, state, "observe_champion")
    version = ctx.corpus_version()
    changed = "corpus_version" in state and state["corpus_version"] != version  # ingested again since the last look
    if changed:
        ctx.reload_evalset()
    dropped = max(part.dropped_queries for part in (ctx.split.tune, *ctx.split.heldout))
    if changed:
        ctx.say(f"corpus changed: version {state['corpus_version']} -> {version}, {len(ctx.split.tune.corpus)} "
                f"documents; {dropped} evaluation queries dropped (their relevant documents were removed); the "
                "champion is scored again on it before anything is proposed")
    elif "corpus_version" not in state and dropped:
        ctx.say(f"corpus version {version}: {dropped} evaluation queries dropped (their relevant documents were "
                "removed)")
    champion = ctx.project.champion_config()
    tune, metric = ctx.split.tune, ctx.metric
    # on a cold cache this embeds the whole corpus (minutes to hours): like a trial, it stops between batches on
    # `evolve stop` or when the budget is down to the reserve, and the batches done stay cached for the next run
    ctx.components.stop_check = lambda: ctx.stop_requested() or ctx.remaining() < ctx.reserve
    try:
        retriever = Retriever(champion, ctx.components).build(tune.corpus, stage_lines(ctx.say, "  "))
    except WorkAbandoned as err:
        why = "a stop was requested" if ctx.stop_requested() else "the budget is spent"
        ctx.say(f"observing the champion stopped ({why}): {err}; the embedded batches are cached, so the next run "
                "goes on from them")
        return {"observation_abandoned": f"{why}: {err}", "corpus_version": version}
    finally:
        ctx.components.stop_check = None
    rows = score(search_run(retriever, tune.queries[:OBSERVED_QUERIES]), tune.qrels, (metric,))
    by_id = {q.query_id: q for q in tune.queries}
    lines = [f"champion {champion.name}: mean {metric} {sum(r[metric] for r in rows) / len(rows):.4f} on "
             f"{len(rows)} tuning queries ({ctx.language})"]
    for row in sorted(rows, key=lambda r: r[metric])[:5]:
        right = tune.document(row["relevant"][0]) if row["relevant"] else None
        got = [tune.document(d) for d in row["top10"][:2]]
        lines.append(f'- query "{by_id[row["query_id"]].text[:200]}" {metric} {row[metric]:.2f}; returned '
                     + "; ".join(f'[{d.title[:60]}] "{d.text[:160]}"' for d in got)
                     + f'; the right document: [{right.title[:60] if right else "?"}] '
                       f'"{right.text[:160] if right else ""}"')
    if ctx.failure_set is not None:
        lines.append(f"failure set from user feedback: {len(ctx.failure_set.queries)} queries")
    # priced for the chunks of the config the next moves are made around (the best so far, else the champion)
    chunking = (state.get("best_overall") or champion).chunking
    costs = cost_table(models_for(ctx.language, ctx.components.catalog), tune.corpus, chunking, ctx.components)
    lines.append(f"cost of embedding this corpus ({chunking.kind} chunks) with each model on this machine; "
                 f"BM25, fusion and cached models cost seconds; {ctx.remaining() / 60:.0f} min of budget left:")
    lines += [f"- {cost.line()}" for cost in costs]
    measured = state.get("champion_heldout_sha256") == champion.sha256() and not changed
    heldout = state.get("champion_heldout") if measured else None
    ctx.say(f"iteration {state['iteration']}: champion {champion.name}, held-back {metric} "
            + (f"{heldout:.4f} (at the last guard step)" if heldout is not None else "not measured yet (the guard "
               "step measures it)") + f"; {ctx.remaining() / 60:.1f} min of budget left")
    return {"champion": champion, "observation": "\n".join(lines),
            "champion_heldout": heldout, "corpus_version": version,
            "model_costs": {cost.model: round(cost.expected_seconds, 1) for cost in costs},
            **({"champion_heldout_sha256": None} if changed else {})}


def propose_space(ctx: AgentContext, state: AgentState) -> AgentState:
    """A search space for the next studies: from the LLM when there is one and it answers inside the schema,
    else from the heuristic."""
    report_status(ctx, state, "propose_space")
    history = state.get("history", [])
    tried = history_text(history)
    proposal, notes = None, []
    offer = train_move.training_offer(ctx, state)
    asked, why_asked = choose_proposer(history, state["iteration"], ctx.llm is not None, ctx.proposer_mode)
    if ctx.llm is not None:
        ctx.say(f"  asking the {'LLM' if asked == 'llm' else 'heuristic'}: {why_asked}")
    if asked == "llm":
        # the LLM gets at most a third of what is left (the study needs the rest) and never past the reserve
        seconds = min(600.0, (ctx.remaining() - 2 * ctx.reserve) / 3)
        proposal, notes = llm_proposal(ctx.llm, state["observation"], ctx.language, tried, state["iteration"],
                                       seconds=seconds, offer=offer, catalog=ctx.components.catalog)
    elif ctx.llm is None:
        notes = [f"no LLM: {ctx.llm_unavailable_reason or 'not configured'}; the heuristic proposer takes over"]
    if proposal is None:
        improved = history[-1].promoted if history else None
        best = state.get("best_overall")
        proposal = heuristic_proposal(state["iteration"], ctx.language, state["champion"].model_dump(mode="json"),
                                      best.model_dump(mode="json") if best else None, improved,
                                      [h.as_state() for h in history], offer["kinds"] if offer else (),
                                      state.get("model_costs"), ctx.remaining(), ctx.components.catalog)
        if asked == "llm":
            notes.append("LLM proposal unusable: the heuristic proposer takes over")
    counts = dict(state.get("proposals", {}))
    counts[proposal.proposer] = counts.get(proposal.proposer, 0) + 1
    for note in notes:
        ctx.say(f"  note: {note[:300]}")
    space = space_from_dict(proposal.space, f"the {proposal.proposer}'s proposal")
    ctx.say(f"  {proposal.proposer} proposes {space.name}: {proposal.rationale[:300]}")
    return {"proposal": space, "rationale": proposal.rationale, "proposer": proposal.proposer,
            "proposal_move": proposal.move, "proposal_base": proposal.base,
            "proposal_notes": notes + proposal.notes, "proposals": counts, "proposal_train": proposal.train,
            "asked": asked, "best_before": state.get("best_overall_value"), "remaining_at_proposal": ctx.remaining()}


def history_text(history: list[dict[str, object]] | list[IterationRecord]) -> str:
    """The earlier iterations as the LLM proposer is told them (the last 12), so bench/loop/llm_proposer.py measures
    the prompt the loop sends. The proposer learns one bit per look at the held-back queries (promoted or not),
    never their scores or which rule failed: that keeps alpha spending over looks valid (see guardrails.stats)."""
    tried = "\n".join(f"- iteration {h.iteration}: space {h.space_name} ({h.proposer}) covering "
                      f"{_covered_line(h.covered)}; best tune {h.best_tune_value}, "
                      + ("promoted" if h.promoted else "not promoted")
                      for h in records(history[-12:])) or "- nothing yet"
    if len(history) > 12:
        tried = f"- {len(history) - 12} earlier iterations left out\n" + tried
    return tried + ("\nDo not propose a space these already covered: change a stage they did not, or try models, "
                    "chunkers or rerankers none of them offered." if history else "")


def _covered_line(covered: dict[str, list[str]] | None) -> str:
    """A space's coverage in one line for the LLM's history."""
    if not covered:
        return "?"
    return "; ".join(f"{part} {', '.join(values)}" for part, values in covered.items() if values)


def train_models(ctx: AgentContext, state: AgentState) -> AgentState:
    """The train move, when the proposal asked for one: evolve's own models, trained within the iteration's share
    of the budget and added to the proposed space (agent.loop.train_move). A resumed run that dies here trains
    again from the checkpoints; a model finished before is found, not retrained."""
    if not state.get("proposal_train"):
        return {}
    report_status(ctx, state, "train_models", kinds=state["proposal_train"])
    return train_move.train_models(ctx, state, state["proposal_train"])


def run_studies(ctx: AgentContext, state: AgentState) -> AgentState:
    """One Optuna study on the proposed space (one per fold when cross-fitting), sharing out the time left;
    the candidate is the winner with the best tuning score (no held-back query chooses it)."""
    report_status(ctx, state, "run_studies", space=state["proposal"].name)
    name = f"{study_prefix(state['run_id'])}{state['iteration']}"
    trials = ctx.trials_per_iteration
    if state.get("max_trials"):
        trials = max(1, min(trials, state["max_trials"] - state.get("trials_run", 0)))
    folds = list(range(ctx.folds)) if ctx.folds else [None]
    if ctx.folds:  # the same trials in all, shared out over the folds' studies
        trials = max(3, -(-trials // ctx.folds))
    # answers get their share first: the guard step's answers decide, so finalists get half only when there is
    # enough for both (FINALIST_MIN_SECONDS), else the guard step gets it all
    allowance = ctx.answer_allowance(state)
    finalist_share = allowance / 2 if ctx.policy.answers.finalists > 1 and allowance >= FINALIST_MIN_SECONDS else 0.0
    champion = ctx.project.champion_config()
    results = []
    for index, fold in enumerate(folds):
        timeout = (ctx.remaining() - ctx.reserve - allowance + finalist_share * index / len(folds)) \
            / (len(folds) - index)
        results.append(_run_study(ctx, state["proposal"], name if fold is None else f"{name}-f{fold}", trials, fold,
                                  timeout, finalist_share / len(folds), champion))
    ran = state.get("trials_run", 0) + sum(r.ran for r in results)
    reused_now = sum(r.reused for r in results)
    reused = state.get("trials_reused", 0) + reused_now
    spent = state.get("answer_seconds", 0.0) + sum(r.answer_seconds for r in results)
    finalists = [f for r in results for f in r.finalists] or None
    answers: AgentState = {"answer_seconds": spent, "finalists": finalists,  # the guard step gets the rest
                           "answer_allowance": allowance - (spent - state.get("answer_seconds", 0.0))}
    chosen = max(results, key=lambda r: r.value if r.value is not None else float("-inf"))
    if any(r.best is None for r in results) or chosen.best is None or chosen.value is None:
        return {"study": name, "best": None, "fold_best": None, "best_tune_value": None, "trials_run": ran,
                "trials_reused": reused, "iteration_reused": reused_now, "tuning": None, **answers}
    # the gate's evidence: each fold's winner against the champion on that study's tuning queries, pooled
    pooled = None if any(r.differences is None for r in results) else \
        [d for r in results for d in r.differences or []]
    tuning: Tuning = {"behaviour_sha256": chosen.best.behaviour_sha256(), "differences": pooled,
                      "champion_tune_value": chosen.champion_value,
                      "champion_behaviour_sha256": champion.behaviour_sha256()}
    update: AgentState = {"study": name, "best": chosen.best, "best_tune_value": chosen.value,
                          "trials_run": ran, "trials_reused": reused, "iteration_reused": reused_now, "tuning": tuning,
                          "fold_best": [r.best for r in results if r.best] if ctx.folds else None, **answers}
    if state.get("best_overall_value") is None or chosen.value > state["best_overall_value"]:
        update.update(best_overall=chosen.best, best_overall_value=chosen.value)
    return update


@dataclass
class StudyOutcome:
    """What one study of an iteration found (one per fold when cross-fitting)."""

    ran: int
    """Finished trials."""
    reused: int
    """Trials scored from the score cache."""
    best: PipelineConfig | None = None
    value: float | None = None
    """The best's tuning score."""
    finalists: list[Finalist] = field(default_factory=list)
    answer_seconds: float = 0.0
    differences: list[float] | None = None
    """The best's per-query tuning differences from the champion (None: the champion's trial 0 did not complete)."""
    champion_value: float | None = None


def _run_study(ctx: AgentContext, space: SearchSpace, name: str, trials: int, fold: int | None,
               timeout: float, answer_seconds: float = 0.0, champion: PipelineConfig | None = None) -> StudyOutcome:
    """One study (tuning without ``fold`` when cross-fitting) with ``champion`` as its trial 0, and when
    ``answer_seconds`` allow, its finalists judged on their answers (the best answers win)."""
    spec = StudySpec(study_name=name, evalset=str(ctx.evalset_path), space=space.model_dump(mode="json"),
                     metric=ctx.metric, n_trials=trials, fold=fold, folds=ctx.folds or 5)
    places = ProjectPaths.of(ctx.project.root).study_places(ctx.project.registry.tracking_uri)
    runner = StudyRunner(spec, ctx.storage, places, components=ctx.components)
    runner.abandon_at = ctx.clock.deadline - ctx.reserve  # a running trial stops at its next step
    runner.stage_progress = stage_lines(ctx.say, "      ")  # a cold embedding takes minutes

    def stop_if_asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = f"{trial.values[0]:.4f}" if trial.values else "-"
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
            if trial.datetime_complete and trial.datetime_start else 0.0
        why = trial.user_attrs.get("fail_reason", "") if trial.state.name == "FAIL" else ""
        ctx.say(f"    trial {trial.number}: {trial.state.name.lower()} {value} ({seconds:.0f} s)"
                + (f": {why.splitlines()[-1][:300]}" if why else ""))
        if ctx.stop_requested() or ctx.remaining() < ctx.reserve:
            study.stop()

    if ctx.worker_wait > 0 and ctx.remaining() > ctx.reserve and not ctx.stop_requested():
        runner.enqueue_first(champion)  # the workers start with the champion, as the loop would
        joined = runner.wait_for_workers(min(ctx.worker_wait, ctx.remaining() - ctx.reserve), ctx.stop_requested)
        ctx.say(f"    {'a worker took' if joined else 'no worker took'} a trial of {name} within "
                f"{ctx.worker_wait:.0f} s" + ("" if joined else ": the loop runs them itself"))
    if ctx.remaining() > ctx.reserve and not ctx.stop_requested():
        runner.run(timeout=max(1.0, timeout), callbacks=[stop_if_asked], champion=champion)
    runner.close("the agent moved on")
    ran = runner.finished_count()  # the study's own count: trials finished before a crash and resume count once
    reused = runner.reused_count()
    best = runner.best()
    held = runner.champion_trial()
    ctx.say(f"  study {name}: {ran} trials finished ({reused} from kept scores, no retrieval)"
            + (f", champion (trial 0) {ctx.metric} {held.values[0]:.4f}" if held is not None else "")
            + (f", best tuning {ctx.metric} {best[1]:.4f}" if best else ", none complete"))
    if best is None:
        return StudyOutcome(ran, reused)
    chosen, finalists, spent = _judge_finalists(ctx, runner, answer_seconds)
    config, value = chosen or best
    return StudyOutcome(ran, reused, config, value, finalists, spent, runner.tuning_differences(config),
                        held.values[0] if held is not None else None)


def _judge_finalists(ctx: AgentContext, runner: StudyRunner, seconds: float
                     ) -> tuple[tuple[PipelineConfig, float] | None, list[Finalist], float]:
    """The study's second stage: its best trials (distinct configs, the policy's ``answers.finalists``) answer
    some of the queries the study tuned on, and the one with the best judged answers becomes the candidate.

    Only tuning queries are used, so the choice leaves the held-back queries untouched. Returns (the chosen
    config and its tuning value, or None to keep the retrieval winner; the finalists; seconds spent)."""
    answers = ctx.policy.answers
    finalists = runner.finalists(answers.finalists) if seconds > 5 else []
    if len(finalists) < 2:
        return None, [], 0.0
    judging = AnswerJudging(ctx.llm, deadline=time.monotonic() + seconds)
    scored: list[Finalist] = []
    for config, value, number in finalists:
        retriever = Retriever(config, ctx.components).build(runner.tune.corpus)
        rows = judging.score(retriever, runner.query_order, config.generation, answers.finalist_queries)
        means = {m: sum(r[m] for r in rows.values() if m in r) / n for m in ANSWER_METRICS
                 if (n := sum(m in r for r in rows.values()))}
        if means:
            runner.log_trial_metrics(number, {f"answers.{m}": v for m, v in means.items()})
        scored.append({"trial": number, "config": config.name, "tune_value": value, "answers": means,
                       "answer_score": sum(means.values()) / len(means) if means else None,
                       "generation": config.generation.model_dump()})
    judged = [(entry["answer_score"], -index) for index, entry in enumerate(scored)
              if entry["answer_score"] is not None]
    ctx.say(f"    finalists' answers ({judging.spend.line()}): "
            + "; ".join(f"trial {e['trial']} {ctx.metric} {e['tune_value']:.4f}, answers "
                        + (f"{e['answer_score']:.2f}" if e["answer_score"] is not None else "not judged")
                        for e in scored))
    if not judged or max(judged)[1] == 0:
        return None, scored, judging.spend.seconds
    pick = -max(judged)[1]
    config, value, _ = finalists[pick]
    ctx.say(f"    trial {scored[pick]['trial']} answers best: it is the study's candidate")
    return (config.model_copy(update={"name": f"{runner.spec.study_name}-best"}), value), scored, \
        judging.spend.seconds


def guard_candidate(ctx: AgentContext, state: AgentState) -> AgentState:
    """Score candidate and champion on the held-back queries (the only place they are scored) and apply the
    policy: the report, and the evidence the decision is recorded with."""
    report_status(ctx, state, "guard_candidate")
    if not state.get("best"):
        return {"guard": {"passed": False, "failed_rules": ["no complete trial"], "rules": []}, "evidence": None}
    candidate = state["best"]
    verdict = guardrails.look_verdict(ctx.project.log.rows(), tuning_evidence(state), ctx.policy,
                                      crossfit=bool(ctx.folds))
    if not verdict.look:  # decided on tuning evidence alone: no held-back query is read, no alpha is spent
        ctx.say(f"  not looked at: {verdict.reason}")
        return {"guard": {"passed": False, "not_looked": verdict.reason, "failed_rules": [], "rules": []},
                "evidence": None}
    ctx.say(f"  look: {verdict.reason}")
    winners = state.get("fold_best") or None
    # what run_studies left of this iteration's answer allowance (it kept that time free), within the time left
    allowance = min(state.get("answer_allowance", ctx.answer_allowance(state)), ctx.remaining() - 10)
    judging = AnswerJudging(ctx.llm, deadline=time.monotonic() + allowance) if allowance > 5 else None
    skipped = ctx.answers_skipped(state) if allowance <= 5 else ""
    agreement = ctx.judge_agreement(ctx.llm.model) if judging is not None else None
    report, evidence = guardrails.evaluate_against_champion(ctx.project, candidate, ctx.split.heldout, ctx.policy,
                                                            ctx.components, ctx.failure_set, scored_by=winners,
                                                            answers=judging, answers_skipped=skipped,
                                                            judge_agreement=agreement)
    spent = state.get("answer_seconds", 0.0) + (judging.spend.seconds if judging else 0.0)
    budget = ctx.policy.answers.budget_share * ctx.clock.budget_seconds
    ctx.say(f"  answers: {judging.spend.line()}; {spent:.0f} s of the {budget:.0f} s answers may take"
            if judging is not None else f"  answer metrics skipped: {skipped}")
    guard = Guard(**json_ready(report.to_dict()))
    return {"guard": guard, "evidence": json_ready(evidence.to_dict()),
            "champion_heldout": heldout_value(guard["champion"], ctx.metric),
            "champion_heldout_sha256": report.decision["champion_config_sha256"], "answer_seconds": spent}


def record_decision(ctx: AgentContext, state: AgentState) -> AgentState:
    """Register a passing candidate or log the refusal: one row of the decision log per iteration, also when the
    run is resumed after being killed around the write. Then the iteration's history entry."""
    report_status(ctx, state, "record_decision")
    version = None
    outcome = "rejected: " + ", ".join(state["guard"].get("failed_rules", []))
    if state["guard"].get("not_looked"):
        outcome = f"not looked: {state['guard']['not_looked']}"
        _record_not_looked_once(ctx, state)
    elif state.get("best"):
        version = _record_once(ctx, state)
        if version:
            outcome = "promoted"
    guard = state["guard"]
    entry = IterationRecord(
        iteration=state["iteration"], space_name=state["proposal"].name, proposer=state["proposer"],
        asked=state.get("asked", state["proposer"]), rationale=state["rationale"] or "",
        notes=state.get("proposal_notes"), move=state.get("proposal_move"), base=state.get("proposal_base"),
        covered=coverage(state["proposal"].model_dump(mode="json")), study=state.get("study"), metric=ctx.metric,
        best_tune_value=state.get("best_tune_value"), best_config=best.name if (best := state.get("best")) else None,
        champion_tune_value=(state.get("tuning") or {}).get("champion_tune_value"),
        trials_reused=state.get("iteration_reused", 0), champion_heldout=state.get("champion_heldout"),
        candidate_heldout=(guard.get("candidate") or {}).get("sets"),
        champion_heldout_sets=(guard.get("champion") or {}).get("sets"),
        answers=(guard.get("candidate") or {}).get("answers"), finalists=state.get("finalists"),
        answer_seconds=state.get("answer_seconds", 0.0),
        trained=[t["id"] for t in state.get("trained", []) if t["iteration"] == state["iteration"]],
        outcome=outcome, promoted_version=version, looked=not guard.get("not_looked") and bool(state.get("best")),
        tuning=guardrails.tuning_details(tuning_evidence(state), ctx.policy),
        **iteration_credit(state.get("best_before"), state.get("best_tune_value"),
                           state.get("remaining_at_proposal", ctx.remaining()) - ctx.remaining()))
    ctx.say(f"  {outcome}" + (f": registered version {version} as candidate" if version else ""))
    if ctx.tracker is not None:
        ctx.tracker(state, entry)
    return {"history": [*state.get("history", []), entry], "promoted_version": version,
            "evidence": None, "iteration": state["iteration"] + 1}


def _record_once(ctx: AgentContext, state: AgentState) -> str | None:
    """The version registered for this iteration's candidate (None: refused), writing the decision only if the log
    does not hold it yet (a run killed after the write but before its checkpoint comes back here)."""
    candidate = state["best"]
    logged = guardrails.logged_decision(ctx.project, state["study"], candidate.sha256())
    if logged is not None:
        ctx.say(f"  the decision on {state['study']} was recorded before the run was interrupted")
        return logged.version if logged.action == "register" else None
    if not state.get("evidence"):  # a state checkpointed without it (never after guard_candidate): measure again
        state = {**state, **guard_candidate(ctx, state)}
        if state["guard"].get("not_looked"):
            _record_not_looked_once(ctx, state)
            return None
    report = guardrails.GuardReport.from_dict(state["guard"])
    evidence = guardrails.Evidence.from_dict(state["evidence"])
    return guardrails.record_decision(ctx.project, candidate, report, evidence, state["study"],
                                      guardrails.tuning_details(tuning_evidence(state), ctx.policy))


def _record_not_looked_once(ctx: AgentContext, state: AgentState) -> None:
    """The ``not-looked`` row for this iteration's candidate, written once (a resumed run finds it)."""
    candidate = state["best"]
    if guardrails.logged_decision(ctx.project, state["study"], candidate.sha256()) is None:
        guardrails.record_not_looked(ctx.project, candidate, ctx.policy, state["guard"]["not_looked"],
                                     state["study"], guardrails.tuning_details(tuning_evidence(state), ctx.policy))


def tuning_evidence(state: AgentState) -> guardrails.TuningEvidence | None:
    """The candidate's per-query tuning differences from the champion that run_studies left (None: none)."""
    tuning = state.get("tuning") or {}
    if not tuning.get("differences"):
        return None
    return guardrails.TuningEvidence(tuning["behaviour_sha256"], tuple(tuning["differences"]),
                                     tuning.get("champion_behaviour_sha256"))


def next_step(ctx: AgentContext, state: AgentState) -> str:
    """'continue', or why the loop stops: stop, budget, iterations, trials."""
    if ctx.stop_requested():
        return "stop"
    if ctx.remaining() < 2 * ctx.reserve:
        return "budget"
    if state["iteration"] >= state.get("max_iterations", 1000):
        return "iterations"
    if state.get("max_trials") and state.get("trials_run", 0) >= state["max_trials"]:
        return "trials"
    return "continue"


def summarize(ctx: AgentContext, state: AgentState) -> AgentState:
    """The run's summary file, and the status says it has finished."""
    reason = next_step(ctx, state)
    summary = ctx.write_summary(state, reason)
    report_status(ctx, state, "finished", stop_reason=reason)
    return {"stop_reason": reason, "summary": summary}
