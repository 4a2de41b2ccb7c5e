"""`evolve promote`: guard a config against the champion; register it as a candidate only if it passes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from agent.app import ProjectDir, app, console, fail, project_components
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, judge_agreement, try_connect_llm
from agent.project import (PolicyOption, TrackingOption, answer_lines, decision_errors, open_project, report_table,
                           say_recovered)


@app.command("promote")
def promote_command(
    config: Annotated[Path, typer.Option(help="Candidate pipeline config YAML.")],
    evalset: Annotated[list[Path], typer.Option(help="Evaluation set(s); their held-back queries are used.")],
    failure_set: Annotated[Optional[Path], typer.Option(help="Failure set from user feedback (all queries used).")] = None,
    heldout_limit: Annotated[Optional[int], typer.Option(help="At most this many held-back queries per set (seeded).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study the candidate came from (linked in the registry).")] = None,
    policy: PolicyOption = None,
    tracking_uri: TrackingOption = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Do not judge answers: decide on retrieval metrics.")] = False,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    local_model: LocalModelOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Check a candidate against the champion under the policy; register it as `candidate` only if it passes.

    With an LLM (the endpoint, else a local server), candidate and champion also answer the policy's
    `answers.queries` held-back queries and the judged answers are held to no significant regression."""
    from contextlib import ExitStack

    from agent.project import gating_failure_set
    from evalsets import EvalSetError
    from experiments import AnswerJudging, tune_and_heldout
    from guardrails import PolicyError, guard_and_register, load_policy
    from pipelines import ConfigError, load_config

    try:
        rules = load_policy(policy)
        candidate = load_config(config)
        sets = []
        for path in evalset:
            held = tune_and_heldout(path)[1]
            sets.append(held.sample(heldout_limit, seed=0) if heldout_limit else held)
        failures = gating_failure_set(failure_set, rules)  # only feedback the policy trusts gates
    except (PolicyError, ConfigError, EvalSetError) as err:
        fail(str(err))
    project = open_project(project_dir, tracking_uri)
    with decision_errors(), ExitStack() as stack:
        say_recovered(project)
        console.print(f"guarding [bold]{candidate.name}[/] against champion [bold]{project.champion_config().name}[/] "
                      f"on {', '.join(f'{s.name} ({len(s.queries)} q)' for s in sets)}"
                      + (f" + failure set ({len(failures.queries)} q)" if failures else ""))
        llm, why = (None, "--no-llm") if no_llm or rules.answers.queries == 0 else \
            try_connect_llm(stack, project_dir, base_url, model, local_model, say=console.print)
        answers = AnswerJudging(llm) if llm is not None else None
        agreement = judge_agreement(project_dir, llm.model) if llm is not None else None
        report, version = guard_and_register(project, candidate, sets, rules, project_components(project_dir),
                                             failures, study, answers=answers,
                                             answers_skipped=f"no LLM ({why})" if why else "no LLM",
                                             judge_agreement=agreement)
    console.print(report_table(report.to_dict()))
    for line in answer_lines(report.to_dict()):
        console.print(escape(line))
    if version:
        console.print(f"registered [bold]{project.registry.name}[/] version {version} with alias 'candidate'; "
                      f"a human approves it with `evolve approve {version}`")
    else:
        console.print(f"[red]not registered[/]: failed {escape(', '.join(report.failed_rules))} (logged as rejected)")
        raise typer.Exit(1)
