"""`evolve approve`, `evolve reject`, `evolve rollback`: the human decisions, each a row of the decision log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from agent.app import ProjectDir, app, console
from agent.project import ActorOption, TrackingOption, decision_errors, open_project, say_mirror, say_recovered

if TYPE_CHECKING:
    from guardrails import Project

CandidateVersion = Annotated[str, typer.Argument(help="Registered candidate version.")]
AskedReason = Annotated[Optional[str], typer.Option(help="Why (recorded in the decision log); asked if missing.")]
NoQuestion = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]


@contextmanager
def _deciding(project_dir: Path, tracking_uri: str | None) -> Iterator[Project]:
    """The project a decision is made in, with what every decision needs first: interrupted decisions completed
    (said), and a refused decision or a held log as one line, not a traceback."""
    project = open_project(project_dir, tracking_uri)
    with decision_errors():
        say_recovered(project)
        yield project


@app.command("approve")
def approve_command(
    version: CandidateVersion,
    reason: AskedReason = None,
    yes: NoQuestion = False,
    accept_policy_mismatch: Annotated[bool, typer.Option(
        "--accept-policy-mismatch", help="Approve a candidate judged under another policy than the project's "
                                         "current one (recorded in the decision log).")] = False,
    accept_stale_champion: Annotated[bool, typer.Option(
        "--accept-stale-champion", help="Approve a candidate judged against an earlier champion than today's "
                                        "(recorded in the decision log).")] = False,
    actor: ActorOption = None,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN", help="The running server's API token "
                                                 "(its live traffic is read for the policy's online rule).")] = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Make a candidate the champion: checks its config hash, writes champion.yaml, logs who/when/why, mirrors MLflow."""
    from guardrails import approve

    with _deciding(project_dir, tracking_uri) as project:
        replaced = project.champion_config().name
        _online_rule(project, version, token)
        if not yes:
            _before_asking(project, version)
            if not typer.confirm(f"Make version {version} the champion that `evolve serve` runs?"):
                raise typer.Exit(1)
        reason = reason or typer.prompt("Reason (for the decision log)")
        previous, problems = approve(project, version, reason, actor, accept_policy_mismatch, accept_stale_champion)
        installed = project.champion_config()
    say_mirror(problems)
    console.print(f"version {version} ({installed.name}, config sha256 {installed.sha256()[:16]}) is the champion, "
                  f"replacing {'version ' + previous if previous else 'the default config'} ({replaced}); "
                  f"{project.champion_file} written")


def _online_rule(project, version: str, token: Optional[str]) -> None:
    """Refuse a candidate the policy's online rule fails (enough interleaved queries, a significant loss); say the
    online evidence either way when there is any. Nothing is decided on it otherwise."""
    from agent.app import fail
    from agent.online import NO_TRAFFIC, online_evidence
    from agent.project import load_policy_of

    policy = load_policy_of(project)
    lines, rule = online_evidence(project.root, token, version, policy)
    if not rule.passed:
        fail(f"version {version} fails the policy's online rule: {rule.why} ({rule.measured}); nothing was changed")
    if lines != [NO_TRAFFIC]:
        console.print("online evidence (live traffic; the guard's report is offline):", highlight=False)
        for line in lines:
            console.print(f"  {escape(line)}", highlight=False)
    if policy.online is not None:
        console.print(f"online rule: {escape(rule.why)}", highlight=False)


def _before_asking(project, version: str) -> None:
    """What the reviewer decides on: the guard's delta and p, wins/losses/ties, the config diff against today's
    champion, and whether the comparison was made against it."""
    from agent.review_view import config_diff, headline, p_text, signed, wins_losses_ties
    from guardrails import register_row, stale_champion

    row = register_row(project.log.rows(), version)
    if row is None:
        return  # approve names the problem
    champion, record = project.champion()
    report = row.info.get("report") or {}
    metric, delta, p_value = headline(report)
    console.print(f"version {version} ({escape(str((row.info.get('config') or {}).get('name')))}): {metric} "
                  f"{signed(delta)} vs the champion it was judged against, p {p_text(p_value)}, "
                  f"wins/losses/ties {wins_losses_ties(report) or 'not in the report'}", highlight=False)
    stale = stale_champion(row, champion, record)
    if stale:
        console.print(f"[yellow]{escape(stale)}[/]", highlight=False)
    diff = config_diff(row.info.get("config") or {}, champion.model_dump(mode="json"))
    console.print(f"config against today's champion ({escape(champion.name)}):"
                  + ("" if diff else " no setting differs"), highlight=False)
    for line in diff:
        console.print(f"  {escape(line)}", highlight=False)


@app.command("reject")
def reject_command(
    version: CandidateVersion,
    reason: Annotated[str, typer.Option(help="Why (recorded in the decision log).")],
    actor: ActorOption = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Reject a candidate: it stays in the registry, tagged rejected, and loses the `candidate` alias."""
    from guardrails import reject

    with _deciding(project_dir, tracking_uri) as project:
        problems = reject(project, version, reason, actor)
    say_mirror(problems)
    console.print(f"version {version} rejected")


@app.command("rollback")
def rollback_command(
    reason: AskedReason = None,
    yes: NoQuestion = False,
    actor: ActorOption = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Move the champion back to what the current one replaced, as the decision log has it."""
    from guardrails import rollback

    with _deciding(project_dir, tracking_uri) as project:
        if not yes and not typer.confirm("Roll the champion back to the previous one?"):
            raise typer.Exit(1)
        reason = reason or typer.prompt("Reason (for the decision log)")
        previous, problems = rollback(project, reason, actor)
        now = project.champion_config().name
    say_mirror(problems)
    console.print(f"champion is now {'version ' + previous if previous else 'the default config'} ({now})")
