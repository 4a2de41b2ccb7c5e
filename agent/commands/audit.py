"""`evolve audit`: the decision log; --verify checks its chain, --repair completes and re-mirrors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import ProjectDir, app, console, fail
from agent.project import TrackingOption, decision_errors, looks_line, open_project, say_mirror, say_recovered


@app.command("audit")
def audit_command(
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain and champion.yaml; exit 1 naming "
                                                          "the first bad row.")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="Complete interrupted decisions and put champion.yaml and "
                                                          "the MLflow aliases/tags back to what the log says.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column in full (hashes, OS user, previous "
                                                      "version, the whole reason).")] = False,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """The decision log: who decided what, when and why (hash-chained; the champion is what it says)."""
    from guardrails import DecisionError, materialise, mirror_differences
    from guardrails import first_bad_row, pending_intents
    from guardrails import champion_file_header

    project = open_project(project_dir, tracking_uri)
    if verify:
        with decision_errors():
            rows = project.log.rows(verify=False)
        problem = first_bad_row(rows)
        if problem:
            fail(f"decision log {project.log.path}: broken at {problem}", code=1)
        header = champion_file_header(project.champion_file)
        if header and not any(r.row_hash == header["decision"] for r in rows):
            fail(f"{project.champion_file} names decision {header['decision'][:16]}, which is not in the log", code=1)
        pending = pending_intents(rows)
        if not pending:
            try:
                project.champion()
            except DecisionError as err:
                fail(str(err), code=1)
        console.print(f"decision log {project.log.path}: {len(rows)} rows, chain holds"
                      + (f", head {rows[-1].row_hash[:16]}" if rows else "")
                      + ("" if pending else f"; {project.champion_file.name} matches the audited champion")
                      + (f"; {len(pending)} interrupted decision(s) pending: the next command completes them"
                         if pending else ""))
        return
    if repair:
        with decision_errors():
            say_recovered(project)
            problems = materialise(project)
            rows = project.log.rows()
        say_mirror(problems)
        left = mirror_differences(project, rows)
        console.print(f"{project.champion_file.name} and the MLflow mirror now follow the decision log"
                      if not left else "champion.yaml follows the decision log; the MLflow mirror still differs")
        say_mirror(left)
        return
    with decision_errors():
        rows = project.log.rows()
    if wide:
        console.print(_wide_table(project, rows))
    else:
        console.print(f"decision log {project.log.path}", highlight=False)
        for line in _short_lines(rows, console.width):
            console.print(escape(line), highlight=False, soft_wrap=True)
        console.print("every column in full: `evolve audit --wide`", highlight=False)
    console.print(looks_line(rows), highlight=False)


def _wide_table(project, rows) -> Table:
    table = Table(title=f"decision log ({project.log.path})")
    for column in ("#", "when (UTC)", "action", "version", "previous", "config sha256", "actor", "os user", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r.seq), r.ts[:19].replace("T", " "), f"{r.action} {r.phase}", r.version or "-",
                      r.previous_version or "-", (r.config_sha256 or "-")[:12], escape(r.actor or "-"),
                      escape(r.os_user), escape(r.reason or ""))
    return table


def _short_lines(rows, width: int) -> list[str]:
    """One line a row, fitting ``width``: short date, action, version, who, the primary metric's delta (guard rows),
    the reason cut to what is left."""
    from agent.review_view import headline, signed
    from guardrails import MACHINE_ACTOR

    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[:max(n - 1, 0)] + "…"

    head = f"{'#':>3} {'when (UTC)':<16} {'action':<14} {'ver':>3} {'actor':<12} {'delta':>7} reason"
    room = max(width - len(head) + len("reason"), 10)
    lines = [head]
    for r in rows:
        delta = headline(r.info.get("report") or {})[1] if r.action in ("register", "guard-reject") else None
        actor = "evolve" if r.actor == MACHINE_ACTOR else (r.actor or r.os_user)
        reason = (r.reason or "").splitlines()[0] if r.reason else ""
        lines.append(f"{r.seq:>3} {r.ts[:16].replace('T', ' '):<16} "
                     f"{cut(r.action + ('' if r.phase == 'done' else ' ' + r.phase), 14):<14} {r.version or '-':>3} "
                     f"{cut(actor, 12):<12} {signed(delta) if delta is not None else '':>7} {cut(reason, room)}")
    return lines
