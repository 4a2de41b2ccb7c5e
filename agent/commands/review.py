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
    since: Annotated[Optional[str], typer.Option(help="Only candidates registered within this long, e.g. 7d.")] = None,
    tracking_uri: TrackingOption = None,
    ui_url: UiOption = "http://127.0.0.1:5000",
    project_dir: ProjectDir = Path("."),
) -> None:
    """List candidates waiting for a human, each with the guardrail report the decision log holds for it."""
    from datetime import timedelta

    from experiments import parse_duration
    from guardrails import mirror_differences, policy_sha256
    from guardrails import version_states

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
                  f"({config.name}, config sha256 {config.sha256()[:16]})")
    say_mirror(mirror_differences(project, rows))
    console.print(looks_line(rows))
    states = version_states(rows)
    cutoff = datetime.now(timezone.utc) - window if window else None
    waiting = [r for r in rows if r.action == "register" and states.get(r.version) == "candidate"
               and (cutoff is None or datetime.fromisoformat(r.ts.replace("Z", "+00:00")) >= cutoff)]
    if not waiting:
        console.print("no candidates waiting for review")
        return
    for row in waiting:
        console.print(f"\n[bold]version {row.version}[/] ({row.info.get('config', {}).get('name')}), registered "
                      f"{row.ts[:16].replace('T', ' ')} UTC, look {row.info.get('look')} since the last human decision; "
                      f"{ui_url}/#/models/{row.model}/versions/{row.version}")
        console.print(f"config sha256 {row.config_sha256}, policy sha256 {row.policy_sha256}"
                      + ("" if row.policy_sha256 == current_policy else
                         " [red](not the project's current policy: approve refuses it unless told)[/]"))
        console.print(artifact_check(project, row))
        console.print(report_table(row.info["report"]))
        for line in answer_lines(row.info["report"]):
            console.print(escape(line))
    console.print("\napprove with `evolve approve VERSION`, or `evolve reject VERSION --reason ...`")
