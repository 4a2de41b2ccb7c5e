"""`evolve approve`, `evolve reject`, `evolve rollback`: the human decisions, each a row of the decision log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.app import ProjectDir, app, console
from agent.project import ActorOption, TrackingOption, decision_errors, open_project, say_mirror, say_recovered


@app.command("approve")
def approve_command(
    version: Annotated[str, typer.Argument(help="Registered candidate version.")],
    reason: Annotated[Optional[str], typer.Option(help="Why (recorded in the decision log); asked if missing.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    accept_policy_mismatch: Annotated[bool, typer.Option(
        "--accept-policy-mismatch", help="Approve a candidate judged under another policy than the project's "
                                         "current one (recorded in the decision log).")] = False,
    actor: ActorOption = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Make a candidate the champion: checks its config hash, writes champion.yaml, logs who/when/why, mirrors MLflow."""
    from guardrails import approve

    project = open_project(project_dir, tracking_uri)
    with decision_errors():
        say_recovered(project)
        replaced = project.champion_config().name
        if not yes and not typer.confirm(f"Make version {version} the champion that `evolve serve` runs?"):
            raise typer.Exit(1)
        reason = reason or typer.prompt("Reason (for the decision log)")
        previous, problems = approve(project, version, reason, actor, accept_policy_mismatch)
        installed = project.champion_config()
    say_mirror(problems)
    console.print(f"version {version} ({installed.name}, config sha256 {installed.sha256()[:16]}) is the champion, "
                  f"replacing {'version ' + previous if previous else 'the default config'} ({replaced}); "
                  f"{project.champion_file} written")


@app.command("reject")
def reject_command(
    version: Annotated[str, typer.Argument(help="Registered candidate version.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the decision log).")],
    actor: ActorOption = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Reject a candidate: it stays in the registry, tagged rejected, and loses the `candidate` alias."""
    from guardrails import reject

    project = open_project(project_dir, tracking_uri)
    with decision_errors():
        say_recovered(project)
        problems = reject(project, version, reason, actor)
    say_mirror(problems)
    console.print(f"version {version} rejected")


@app.command("rollback")
def rollback_command(
    reason: Annotated[Optional[str], typer.Option(help="Why (recorded in the decision log); asked if missing.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    actor: ActorOption = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Move the champion back to what the current one replaced, as the decision log has it."""
    from guardrails import rollback

    project = open_project(project_dir, tracking_uri)
    with decision_errors():
        say_recovered(project)
        if not yes and not typer.confirm("Roll the champion back to the previous one?"):
            raise typer.Exit(1)
        reason = reason or typer.prompt("Reason (for the decision log)")
        previous, problems = rollback(project, reason, actor)
        now = project.champion_config().name
    say_mirror(problems)
    console.print(f"champion is now {'version ' + previous if previous else 'the default config'} ({now})")
