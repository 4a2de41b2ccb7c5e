"""`evolve review`: the candidates waiting for a human, with the reports the decision log holds."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from agent.app import ProjectDir, app, console, fail
from agent.project import (
    TrackingOption,
    UiOption,
    artifact_check,
    decision_errors,
    load_policy_of,
    looks_line,
    open_project,
    answer_lines,
    report_table,
    say_mirror,
    say_recovered,
)


@app.command("review")
def review_command(
    version: Annotated[Optional[str], typer.Argument(help="One candidate's details (its guard report).")] = None,
    since: Annotated[Optional[str], typer.Option(help="Only candidates registered within this long, e.g. 7d.")] = None,
    tracking_uri: TrackingOption = None,
    ui_url: UiOption = "http://127.0.0.1:5000",
    project_dir: ProjectDir = Path("."),
) -> None:
    """Candidates waiting for a human, one line each (strongest evidence first); `evolve review N`: one in full."""
    from datetime import timedelta

    from agent.review_view import overview_lines
    from experiments import parse_duration
    from guardrails import mirror_differences, policy_sha256
    from guardrails import version_states
    from guardrails import stale_champion

    try:
        window = timedelta(seconds=parse_duration(since)) if since else None
    except ValueError as err:
        fail(str(err))
    project = open_project(project_dir, tracking_uri)
    with decision_errors():
        say_recovered(project)
        config, record = project.champion()
        rows = project.log.rows()
        current_policy = policy_sha256(load_policy_of(project))
    console.print(f"champion: {'version ' + record.version if record.version else 'default config'} "
                  f"({escape(config.name)}, config {config.sha256()[:12]})", highlight=False)
    say_mirror(mirror_differences(project, rows))
    console.print(looks_line(rows), highlight=False)
    states = version_states(rows)
    cutoff = datetime.now(timezone.utc) - window if window else None
    waiting = [r for r in rows if r.action == "register" and states.get(r.version) == "candidate"
               and (cutoff is None or datetime.fromisoformat(r.ts.replace("Z", "+00:00")) >= cutoff)]
    stale = {r.version: stale_champion(r, config, record) for r in waiting}
    if version is not None:
        row = next((r for r in rows if r.action == "register" and r.version == version), None)
        if row is None:
            fail(f"version {version} is not in the decision log (only versions registered by the guard step are)")
        if states.get(version) != "candidate":
            console.print(f"version {version} is {states.get(version)}, no longer a candidate", highlight=False)
        _details(project, row, stale_champion(row, config, record), current_policy, ui_url)
        return
    if not waiting:
        console.print("no candidates waiting for review")
        return
    try:
        alias = project.registry.alias_version("candidate")
    except Exception:  # noqa: BLE001 - MLflow down: the overview comes from the log
        alias = None
    console.print()
    for line in overview_lines(waiting, stale, alias):
        console.print(escape(line), highlight=False, soft_wrap=True)
    _online_overview(project, [r.version for r in waiting])
    if any(stale.values()):
        console.print("[yellow]stale[/]: judged against an earlier champion; approve refuses it unless guarded "
                      "again or told (`evolve review N` names both)", highlight=False)
    console.print("details: `evolve review VERSION`; decide: `evolve approve VERSION` or "
                  "`evolve reject VERSION --reason ...`", highlight=False)


def _details(project, row, stale: str | None, current_policy: str, ui_url: str) -> None:
    """One candidate in full: the guard report (info rows as info, each hash once), the explanations, answers."""
    from agent.review_view import short, short_why

    report = row.info["report"]
    decision = report.get("decision") or {}
    console.print(f"\n[bold]version {row.version}[/] ({escape(str(row.info.get('config', {}).get('name')))}), "
                  f"registered {row.ts[:16].replace('T', ' ')} UTC, look {row.info.get('look')} since the last "
                  "human decision", highlight=False)
    console.print(f"{ui_url}/#/models/{row.model}/versions/{row.version}", highlight=False, soft_wrap=True)
    console.print(f"config {short(row.config_sha256)}, policy {short(row.policy_sha256)}"
                  + ("" if row.policy_sha256 == current_policy else
                     " [red](not the project's current policy: approve refuses it unless told)[/]"), highlight=False)
    if stale:
        console.print(f"[yellow]judged against an earlier champion[/]: {escape(stale)}; approve refuses it unless "
                      "guarded again (`evolve promote`) or given --accept-stale-champion", highlight=False)
    else:
        console.print(f"judged against today's champion (config {short(decision.get('champion_config_sha256'))})",
                      highlight=False)
    console.print(artifact_check(project, row), highlight=False)
    console.print(report_table(report, why=False, skip=("config_sha256", "policy_sha256", "champion_config_sha256",
                                                        "champion_version")))
    for rule in report["rules"]:
        console.print(f"- {escape(rule['rule'])}: {escape(short_why(rule['why']))}", highlight=False)
    for line in answer_lines(report):
        console.print(escape(line), highlight=False)
    _online(project, row.version)


def _online_overview(project, versions: list[str]) -> None:
    """One line per candidate that took live traffic: the online rule's verdict (details: `evolve review N`)."""
    import os

    from agent.online import NO_TRAFFIC, online_evidence

    policy = load_policy_of(project)
    for version in versions:
        lines, rule = online_evidence(project.root, os.environ.get("EVOLVE_API_TOKEN"), version, policy)
        if lines != [NO_TRAFFIC]:
            console.print(f"  online, version {version}: {'pass' if rule.passed else 'FAIL'}: {escape(rule.why)}",
                          highlight=False, soft_wrap=True)


def _online(project, version: str) -> None:
    """The online half of the evidence, apart from the offline guard report above: live traffic and the policy's
    online rule on it (which never promotes; approve refuses a candidate it fails)."""
    import os

    from agent.online import online_evidence, publish_online_evidence

    lines, rule = online_evidence(project.root, os.environ.get("EVOLVE_API_TOKEN"), version, load_policy_of(project))
    problem = publish_online_evidence(project, version, lines, rule)  # the UI's version page shows it too
    console.print("\n[bold]online evidence[/] (live traffic in `evolve serve`; everything above is offline, on "
                  "held-back queries):", highlight=False)
    for line in lines:
        console.print(f"  {escape(line)}", highlight=False)  # wrapped to the terminal
    verdict = "pass" if rule.passed else "[red]FAIL[/]"
    console.print(f"  {escape(rule.rule)} ({escape(str(rule.limit))}): {verdict}: {escape(rule.why)}",
                  highlight=False)
    if problem:
        console.print(f"  [yellow]{escape(problem)}[/]", highlight=False)
