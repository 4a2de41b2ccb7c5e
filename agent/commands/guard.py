"""`evolve promote`, `review`, `approve`, `reject`, `rollback`: guardrails and the human decision."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import ProjectDir, app, cache_path, console, fail

PolicyOption = Annotated[Optional[Path], typer.Option("--policy", envvar="EVOLVE_POLICY",
                                                      help="Policy YAML (default: guardrails/policy.yaml).")]
TrackingOption = Annotated[Optional[str], typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                                                       help="MLflow tracking/registry URI.")]
UiOption = Annotated[str, typer.Option("--ui-url", envvar="EVOLVE_MLFLOW_UI",
                                       help="Base URL of the MLflow UI, for links.")]


def open_project(project_dir: Path, tracking_uri: str | None, default_config: Path | None = None) -> Any:
    from experiments.tracking import default_tracking_uri
    from guardrails import AuditLog, PipelineRegistry, Project
    from guardrails.decisions import PACKAGED_DEFAULT

    uri = tracking_uri or default_tracking_uri(project_dir)
    registry = PipelineRegistry(uri, artifact_root=project_dir / "mlruns" / "artifacts")
    return Project(project_dir.resolve(), registry, AuditLog(project_dir / ".evolve" / "audit.duckdb"),
                   default_config or PACKAGED_DEFAULT)


def report_table(report: dict[str, Any]) -> Table:
    verdict = "[green]PASSED[/]" if report["passed"] else "[red]REJECTED[/]"
    table = Table(title=f"guardrails: {verdict}  {report['candidate']['config']} vs {report['champion']['config']}")
    for column in ("rule", "measured", "limit", "result", "why"):
        table.add_column(column, overflow="fold")
    for rule in report["rules"]:
        measured = f"{rule['measured']:.4f}" if isinstance(rule["measured"], float) else str(rule["measured"])
        limit = f"{rule['limit']:.4f}" if isinstance(rule["limit"], float) else str(rule["limit"])
        table.add_row(escape(rule["rule"]), measured, escape(limit), "[green]pass[/]" if rule["passed"] else "[red]FAIL[/]",
                      escape(rule["why"]))
    return table


@app.command("promote")
def promote_command(
    config: Annotated[Path, typer.Option(help="Candidate pipeline config YAML.")],
    evalset: Annotated[list[Path], typer.Option(help="Evaluation set(s); their held-back queries are used.")],
    failure_set: Annotated[Optional[Path], typer.Option(help="Failure set from user feedback (all queries used).")] = None,
    heldout_limit: Annotated[Optional[int], typer.Option(help="At most this many held-back queries per set (seeded).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study the candidate came from (linked in the registry).")] = None,
    policy: PolicyOption = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Check a candidate against the champion under the policy; register it as `candidate` only if it passes."""
    from agent.commands.serve import gating_failure_set
    from evalsets import EvalSetError
    from experiments.splits import tune_and_heldout
    from guardrails import PolicyError, guard_and_register, load_policy
    from pipelines import Components, ConfigError, load_config

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
    console.print(f"guarding [bold]{candidate.name}[/] against champion [bold]{project.champion_config().name}[/] "
                  f"on {', '.join(f'{s.name} ({len(s.queries)} q)' for s in sets)}"
                  + (f" + failure set ({len(failures.queries)} q)" if failures else ""))
    report, version = guard_and_register(project, candidate, sets, rules, Components(cache_path(project_dir)),
                                         failures, study)
    console.print(report_table(report.to_dict()))
    if version:
        console.print(f"registered [bold]{project.registry.name}[/] version {version} with alias 'candidate'; "
                      f"a human approves it with `evolve approve {version}`")
    else:
        console.print(f"[red]not registered[/]: failed {escape(', '.join(report.failed_rules))} (logged as rejected)")
        raise typer.Exit(1)


@app.command("review")
def review_command(
    since: Annotated[Optional[str], typer.Option(help="Only candidates registered within this long, e.g. 7d.")] = None,
    tracking_uri: TrackingOption = None,
    ui_url: UiOption = "http://127.0.0.1:5000",
    project_dir: ProjectDir = Path("."),
) -> None:
    """List candidates waiting for a human, each with its guardrail report against the champion."""
    from datetime import timedelta

    from experiments.durations import parse_duration

    try:
        window = timedelta(seconds=parse_duration(since)) if since else None
    except ValueError as err:
        fail(str(err))
    project = open_project(project_dir, tracking_uri)
    registry = project.registry
    champion = registry.alias_version("champion")
    console.print(f"champion: {'version ' + champion if champion else 'packaged default'} "
                  f"({project.champion_config().name})")
    candidates = registry.versions(status="candidate", since=window)
    if not candidates:
        console.print("no candidates waiting for review")
        return
    for version in candidates:
        created = datetime.fromtimestamp(version.creation_timestamp / 1000, timezone.utc)
        console.print(f"\n[bold]version {version.version}[/] ({version.tags.get('evolve.config_name')}), "
                      f"registered {created:%Y-%m-%d %H:%M} UTC; "
                      f"{ui_url}/#/models/{registry.name}/versions/{version.version}")
        console.print(report_table(registry.report_of(version.version)))
    console.print("\napprove with `evolve approve VERSION`, or `evolve reject VERSION --reason ...`")


@app.command("approve")
def approve_command(
    version: Annotated[str, typer.Argument(help="Registered candidate version.")],
    reason: Annotated[Optional[str], typer.Option(help="Why (recorded in the audit log); asked if missing.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Make a candidate the champion: moves the alias, rewrites champion.yaml, records who/when/why."""
    from guardrails import DecisionError, approve

    project = open_project(project_dir, tracking_uri)
    if not yes and not typer.confirm(f"Make version {version} the champion that `evolve serve` runs?"):
        raise typer.Exit(1)
    reason = reason or typer.prompt("Reason (for the audit log)")
    replaced = project.champion_config().name
    try:
        previous = approve(project, version, reason)
    except DecisionError as err:
        fail(str(err))
    console.print(f"version {version} ({project.champion_config().name}) is the champion, replacing "
                  f"{'version ' + previous if previous else 'the config file'} ({replaced}); "
                  f"{project.champion_file} rewritten")


@app.command("reject")
def reject_command(
    version: Annotated[str, typer.Argument(help="Registered candidate version.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")],
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Reject a candidate: it stays in the registry, tagged rejected, and loses the `candidate` alias."""
    from guardrails import DecisionError, reject

    try:
        reject(open_project(project_dir, tracking_uri), version, reason)
    except DecisionError as err:
        fail(str(err))
    console.print(f"version {version} rejected")


@app.command("rollback")
def rollback_command(
    reason: Annotated[Optional[str], typer.Option(help="Why (recorded in the audit log); asked if missing.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Move `champion` back to the version the current champion replaced."""
    from guardrails import DecisionError, rollback

    project = open_project(project_dir, tracking_uri)
    if not yes and not typer.confirm("Roll the champion back to the previous one?"):
        raise typer.Exit(1)
    reason = reason or typer.prompt("Reason (for the audit log)")
    try:
        previous = rollback(project, reason)
    except DecisionError as err:
        fail(str(err))
    console.print(f"champion is now {'version ' + previous if previous else 'the config it replaced'} "
                  f"({project.champion_config().name})")


@app.command("audit")
def audit_command(project_dir: ProjectDir = Path(".")) -> None:
    """Show the audit log of promotion decisions (who, when, what, why)."""
    from guardrails import AuditLog

    entries = AuditLog(project_dir / ".evolve" / "audit.duckdb").entries()
    table = Table(title="audit log")
    for column in ("when (UTC)", "actor", "action", "version", "previous", "reason"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(f"{e['ts']:%Y-%m-%d %H:%M:%S}", e["actor"], e["action"], e["version"] or "-",
                      e["previous_version"] or "-", escape(e["reason"] or ""))
    console.print(table)
