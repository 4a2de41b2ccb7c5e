"""`evolve start` (the loop), `evolve status` (from another terminal), `evolve stop` (graceful)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import DEMO_CONFIG, DEMO_EVALSET, ProjectDir, app, console, err_console, fail, project_components
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, try_connect_llm
from agent.paths import ProjectPaths
from agent.project import PolicyOption, TrackingOption, decision_errors, looks_line, open_project, say_recovered

if TYPE_CHECKING:
    from agent.loop.state import RunSummary
    from agent.training import TrainingSources



class ProposerChoice(str, Enum):
    """--proposer (agent.loop.proposer_choice)."""

    auto = "auto"
    llm = "llm"
    heuristic = "heuristic"


@app.command("start")
def start_command(
    budget: Annotated[str, typer.Option(help="Wall time for the whole loop: 10m, 2h, 48h.")] = "48h",
    trials: Annotated[Optional[int], typer.Option(help="Stop after this many trials in total (besides --budget).")] = None,
    evalset: Annotated[Path, typer.Option(help="Evaluation set to tune on (default: the bundled demo set).")] = DEMO_EVALSET,
    failure_set: Annotated[Optional[Path], typer.Option(help="Failure set from `evolve feedback failures`.")] = None,
    trials_per_iteration: Annotated[int, typer.Option(help="Trials of each proposed study.")] = 20,
    max_iterations: Annotated[int, typer.Option(help="Stop after this many proposals.")] = 1000,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="No LLM: the heuristic proposes, and answers are not judged.")] = False,
    proposer: Annotated[ProposerChoice, typer.Option(case_sensitive=False, help=(
        "Who proposes search spaces when an LLM is connected: 'auto' lets the two take turns, then asks the LLM "
        "only while its iterations raise the best tuning score faster per hour than the heuristic's (the LLM "
        "still judges answers); 'llm' or 'heuristic' always asks that one."))] = ProposerChoice.auto,
    base_url: BaseUrlOption = None, model: ModelOption = None,
    local_model: LocalModelOption = None,
    storage: Annotated[Optional[str], typer.Option(envvar="EVOLVE_OPTUNA_STORAGE",
                                                   help="Optuna storage URL (default: SQLite in the project). With "
                                                        "postgresql://..., `evolve worker --follow` on other nodes "
                                                        "runs trials of the loop's studies.")] = None,
    wait_for_workers: Annotated[str, typer.Option(help=(
        "With a shared --storage: how long each study waits for an `evolve worker --follow` process to take one of "
        "its trials before the loop runs trials itself (e.g. 2m when the loop's node has no GPU); 0s: no wait."))] = "0s",
    new: Annotated[bool, typer.Option("--new", help="Start a new run even if an unfinished one can resume.")] = False,
    decision: Annotated[str, typer.Option(help="How candidates are tested: 'fixed' holds 30% of the queries back; "
                                               "'crossfit' holds each query back in one of --folds folds, tuning "
                                               "one study per fold on the others, so every query counts in the "
                                               "decision; 'auto' cross-fits sets under 1000 queries without a "
                                               "train split.")] = "auto",
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-fitting folds.")] = 5,
    train: Annotated[bool, typer.Option("--train/--no-train", help="Let the loop train its own models (a query "
                                        "adapter; with a GPU or 45+ min left also an embedder and a cross-encoder) "
                                        "when its training data has grown: the set's 'train' split, --synthesized "
                                        "sets and feedback on its corpus.")] = True,
    synthesized: Annotated[Optional[list[Path]], typer.Option(
        help="Set written by `evolve evalset synthesize` whose questions may train (repeatable).")] = None,
    policy: PolicyOption = None, tracking_uri: TrackingOption = None, project_dir: ProjectDir = Path("."),
) -> None:
    """Run the loop: observe_champion -> propose_space -> train_models -> run_studies -> guard_candidate -> record_decision, within the budget.

    Killed (even with SIGKILL)? Run the same command again: the run resumes where it stopped, with its
    remaining budget (time while dead does not count) and every finished trial kept. Promoted configs wait for
    `evolve review` / `evolve approve`.
    """
    from agent.loop.checkpoints import LatestCheckpoints
    from agent.loop.graph import ITERATION, build_graph
    from agent.loop.runtime import AgentPaths, BudgetClock, Watchdog, read_status, write_status
    from agent.loop.state import AgentContext, checkpoint_serializer, typed_state
    from agent.loop.tracking import AgentTracker
    from agent.project import gating_failure_set
    from evalsets import EvalSetError, load_evalset, pending
    from experiments import parse_duration
    from guardrails import PolicyError, load_policy

    paths = AgentPaths(project_dir.resolve())
    try:
        budget_seconds = parse_duration(budget)
        try:
            worker_wait_seconds = parse_duration(wait_for_workers)
        except ValueError as err:
            raise ValueError(f"--wait-for-workers: {err}") from None
        # --policy, else the project's own (what `evolve approve` checks candidates against), else the packaged one
        rules = load_policy(policy or ProjectPaths.of(project_dir).policy)
        load_evalset(evalset)
        failures = gating_failure_set(failure_set, rules)  # only feedback the policy trusts gates
    except (ValueError, PolicyError, EvalSetError) as err:
        fail(str(err))
    paths.stop.unlink(missing_ok=True)
    from experiments import decision_folds

    resume = None
    if paths.current_run.exists() and not new:
        current = json.loads(paths.current_run.read_text())
        if not (paths.folder / f"summary-{current['run_id']}.json").exists():
            resume = current
    if resume:
        run_id = resume["run_id"]
        left = resume["budget_seconds"] - resume.get("spent_seconds", 0.0)
        console.print(f"resuming run [bold]{run_id}[/] ({max(0.0, left) / 60:.1f} min of its budget left)")
        evalset = Path(resume["evalset"])
    else:
        run_id = datetime.now(timezone.utc).strftime("run-%Y%m%dT%H%M%S")
        try:
            run_folds = decision_folds(evalset, decision, folds)
        except ValueError as err:
            fail(str(err))
        resume = {"run_id": run_id, "evalset": str(evalset.resolve()), "budget_seconds": budget_seconds,
                  "spent_seconds": 0.0, "started": datetime.now(timezone.utc).isoformat(), "folds": run_folds,
                  "train": train, "synthesized": [str(p.resolve()) for p in synthesized or []]}
        paths.current_run.write_text(json.dumps(resume))
        console.print(f"new run [bold]{run_id}[/]: budget {budget}, evaluation set {evalset}")
    try:
        unreviewed = len(pending(Path(resume["evalset"]))) if Path(resume["evalset"]).is_dir() else 0
    except EvalSetError as err:
        fail(str(err))
    if unreviewed:
        console.print(f"{unreviewed} synthesized questions of the set are not reviewed by a person yet "
                      f"(`evolve evalset review --set {resume['evalset']}`)")
    clock = BudgetClock(paths.current_run, resume["budget_seconds"], resume.get("spent_seconds", 0.0))

    baseline = None
    if Path(resume["evalset"]) == DEMO_EVALSET.resolve():
        baseline = DEMO_CONFIG  # the offline demo starts from the config it is built around
    project = open_project(project_dir.resolve(), tracking_uri, baseline)
    with decision_errors():  # the loop refuses a champion.yaml that is not the audited champion
        say_recovered(project)
        _, record = project.champion()
    if record.version is None:
        console.print(f"no approved champion yet: candidates must beat {project.default_config.name}")
    tracker = AgentTracker(project.registry.tracking_uri, run_id, ProjectPaths.of(project_dir).mlflow_artifacts,
                           {"budget": budget, "evalset": str(evalset), "trials_per_iteration": trials_per_iteration})
    from contextlib import ExitStack

    with ExitStack() as stack:
        llm, reason = None, ""
        if no_llm:
            reason = "--no-llm"
        else:
            llm, reason = try_connect_llm(stack, project_dir, base_url, model, local_model, say=console.print)
        console.print(f"proposer: {'LLM ' + llm.model if llm else 'heuristic (' + reason + ')'}")
        ctx = AgentContext(project, paths, clock, Path(resume["evalset"]), rules, project_components(project_dir),
                           llm, trials_per_iteration, failures, tracker, reason, storage, resume.get("folds"),
                           say=lambda line: console.print(escape(line), highlight=False), proposer_mode=proposer.value,
                           worker_wait=worker_wait_seconds)
        ctx.training = _training_sources(Path(resume["evalset"]), resume)
        if ctx.training:
            console.print(f"training data for the train move: {ctx.training.describe()}", highlight=False)
        console.print("decision: " + (f"cross-fitted over {ctx.folds} folds (one study per fold; every query "
                                      "held back once)" if ctx.folds else "one fixed hold-back of the queries")
                      + "; alpha spent over the looks since the last human decision")
        saver = LatestCheckpoints.at(paths.checkpoints, serde=checkpoint_serializer())
        saver.prune_all()  # runs saved before checkpoints were pruned keep their newest few too
        graph = build_graph(ctx, saver)
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}

        def hard_stop() -> None:
            node = (read_status(paths) or {}).get("node")
            state = typed_state(ctx.last_state or {"run_id": run_id})
            state["trials_run"] = ctx.trials_finished(run_id)
            ctx.write_summary(state, f"budget (hard stop during {node})")
            write_status(paths, {**(read_status(paths) or {}), "node": "finished",
                                 "stop_reason": f"budget (hard stop during {node})"})
            err_console.print(f"budget spent during {node}: stopped (the running trial is abandoned)")
            stack.close()  # stop the local LLM server

        if saver.get_tuple(config) is not None and clock.remaining() <= 0:  # killed after its budget ran out
            summary = ctx.write_summary(typed_state(graph.get_state(config).values), "budget")
            write_status(paths, {**(read_status(paths) or {}), "node": "finished", "stop_reason": "budget"})
            _print_summary(summary)
            return
        watchdog = Watchdog(clock, hard_stop, grace=0.0)
        watchdog.start()
        stack.callback(watchdog.stop)
        with decision_errors():  # a champion changed outside the decision log stops the loop with one line
            if saver.get_tuple(config) is not None:
                snapshot = graph.get_state(config)
                if not snapshot.next and "summary" not in snapshot.values:
                    # a crash inside the graph itself (not a node) left no step to resume: go on at the next iteration
                    console.print("the run's checkpoint has no step left to resume (it crashed between two steps): "
                                  "it goes on with its next observation")
                    graph.update_state(config, {}, as_node=ITERATION[-1].__name__)
                final = graph.invoke(None, config)
            else:
                final = graph.invoke({"run_id": run_id, "budget_seconds": resume["budget_seconds"], "iteration": 0,
                                      "max_iterations": max_iterations, "max_trials": trials, "history": [],
                                      "proposals": {}, "trials_run": 0}, config)
    _print_summary(final["summary"])


def _print_summary(summary: RunSummary) -> None:
    from agent.loop.records import records

    table = Table(title=f"run {summary['run_id']}: stopped by {summary['stop_reason']}")
    metric = summary.get("metric", "ndcg@10")
    for column in ("iteration", "proposer", "space", f"best tune {metric}", "outcome", "rationale"):
        table.add_column(column, overflow="fold")
    history = records(summary["history"])
    for h in history:
        value = h.best_tune_value
        table.add_row(str(h.iteration), h.proposer, str(h.space_name), f"{value:.4f}" if value is not None else "-",
                      escape(h.outcome), escape(h.rationale[:200]))
    console.print(table)
    held = summary.get("champion_heldout")
    held_text = f"{held:.4f}" if held is not None else "not measured (no guard look on this champion and corpus)"
    promoted = [h.promoted_version for h in history if h.promoted_version]
    trained = [model for h in history for model in h.trained]
    if trained:
        console.print(f"trained: {', '.join(trained)} (`evolve models` lists them)", highlight=False)
    looks = summary.get("looks") or {}
    console.print(f"{summary['iterations']} iterations, {summary['trials_run']} trials "
                  f"({summary.get('trials_reused', 0)} from kept scores), proposals {summary['proposals']}, "
                  f"looks: {looks.get('spent', 0)} spent, {looks.get('skipped', 0)} not looked "
                  f"({looks.get('since_human_decision', 0)} since the last human decision), "
                  f"repeated looks: {looks.get('repeated', 0)}; "
                  f"{summary.get('spent_seconds', 0) / 60:.1f} of {summary.get('budget_seconds', 0) / 60:.0f} min; "
                  f"champion {summary['champion']} held-back {metric} {held_text}; "
                  f"promoted candidates: {', '.join(promoted) or 'none'}. Review them with `evolve review`.")


@app.command("status")
def status_command(
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """The audited champion (and whether MLflow mirrors it), then the live state of the loop: node, iteration,
    best vs champion, budget left."""
    from agent.loop.runtime import AgentPaths, pid_alive, read_status
    from guardrails import mirror_differences

    project = open_project(project_dir.resolve(), tracking_uri)
    with decision_errors():
        say_recovered(project)
        config, record = project.champion()
        problems = mirror_differences(project, project.log.rows())
    console.print(f"champion: {'version ' + record.version if record.version else 'default config'} ({config.name}, "
                  f"config sha256 {config.sha256()[:16]}), from the decision log")
    for line in problems:
        console.print(f"[yellow]registry mirror differs:[/] {escape(line)} (`evolve audit --repair` puts it back)")
    if not problems:
        console.print("registry mirror: in sync with the decision log")
    with decision_errors():
        console.print(looks_line(project.log.rows()))
    status = read_status(AgentPaths(project_dir.resolve()))
    if status is None:
        console.print("loop: no evolve run in this project yet (`evolve start` runs one)", highlight=False)
        return
    alive = pid_alive(status["pid"]) and status.get("node") != "finished"
    table = Table(title=f"run {status['run_id']}: {'running' if alive else 'not running'}")
    table.add_column("fact")
    table.add_column("value")
    for key, value in status.items():
        table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    console.print(table)


@app.command("stop")
def stop_command(project_dir: ProjectDir = Path(".")) -> None:
    """Ask a running loop to stop gracefully (it finishes the running trial and writes its summary)."""
    from agent.loop.runtime import AgentPaths

    paths = AgentPaths(project_dir.resolve())
    paths.stop.write_text(datetime.now(timezone.utc).isoformat())
    console.print(f"stop requested ({paths.stop}); the loop ends after its current trial")


def _training_sources(evalset: Path, resume: dict[str, Any]) -> TrainingSources | None:
    """What the loop's train move may learn from: the decision set's 'train' split (its other splits are guarded),
    the synthesized sets given, and feedback on the set's corpus. None with --no-train."""
    from agent.training import TrainingSources
    from evalsets import available_splits

    if not resume.get("train", True):
        return None
    return TrainingSources(train_splits=[evalset] if "train" in available_splits(evalset) else [],
                           synthesized=[Path(p) for p in resume.get("synthesized", [])], feedback_corpus=evalset,
                           guard=[evalset])
