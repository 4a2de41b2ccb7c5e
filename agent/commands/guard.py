"""`evolve promote`, `review`, `approve`, `reject`, `rollback`: guardrails and the human decision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import ProjectDir, app, cache_path, console, fail
from agent.paths import ProjectPaths

PolicyOption = Annotated[Optional[Path], typer.Option("--policy", envvar="EVOLVE_POLICY",
                                                      help="Policy YAML (default: guardrails/policy.yaml).")]
TrackingOption = Annotated[Optional[str], typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                                                       help="MLflow tracking/registry URI.")]
ActorOption = Annotated[Optional[str], typer.Option("--actor", envvar="EVOLVE_ACTOR",
                                                    help="Who decides (recorded with the OS user; attribution, "
                                                         "not authentication).")]
UiOption = Annotated[str, typer.Option("--ui-url", envvar="EVOLVE_MLFLOW_UI",
                                       help="Base URL of the MLflow UI, for links.")]


def open_project(project_dir: Path, tracking_uri: str | None, default_config: Path | None = None) -> Any:
    """The project's decision state; the MLflow registry is opened only when a command needs it."""
    from experiments.tracking import default_tracking_uri
    from guardrails import PACKAGED_DEFAULT, DecisionLog, PipelineRegistry, Project

    from guardrails.policy import DEFAULT_POLICY

    paths = ProjectPaths.of(project_dir)
    uri = tracking_uri or default_tracking_uri(paths.root)
    # before any approval the champion is the project's default.yaml, else the packaged default
    return Project(paths.root, lambda: PipelineRegistry(uri, artifact_root=paths.mlflow_artifacts),
                   DecisionLog(paths.decision_log), default_config or paths.default_config or PACKAGED_DEFAULT,
                   paths.policy or DEFAULT_POLICY)


@contextmanager
def decision_errors() -> Iterator[None]:
    """A refused decision, a held or broken decision log: one line and exit 2, never a traceback."""
    from guardrails import DecisionError, LogError, PolicyError

    try:
        yield
    except (DecisionError, LogError, PolicyError) as err:
        fail(str(err))


def say_recovered(project: Any) -> None:
    """Complete interrupted decisions first, saying so (every command that reads the champion calls this)."""
    from guardrails import recover

    for line in recover(project):
        console.print(f"[yellow]{escape(line)}[/]")


def say_mirror(problems: list[str]) -> None:
    for line in problems:
        console.print(f"[yellow]registry mirror:[/] {escape(line)}")


def report_table(report: dict[str, Any]) -> Table:
    """The guard report as a table; its caption says what the decision was made under (look, alpha, hashes)."""
    verdict = "[green]PASSED[/]" if report["passed"] else "[red]REJECTED[/]"
    decision = report.get("decision") or {}
    table = Table(title=f"guardrails: {verdict}  {report['candidate']['config']} vs {report['champion']['config']}",
                  caption=escape("; ".join(f"{k}: {_number(v)}" for k, v in decision.items())) or None)
    for column in ("rule", "measured", "limit", "result", "why"):
        table.add_column(column, overflow="fold")
    for rule in report["rules"]:
        table.add_row(escape(rule["rule"]), _number(rule["measured"]), escape(_number(rule["limit"])),
                      "[green]pass[/]" if rule["passed"] else "[red]FAIL[/]", escape(rule["why"]))
    return table


def _number(value: Any) -> str:
    """Four decimals, or three significant digits for the tiny alphas and p-values of late looks."""
    if isinstance(value, float):
        return f"{value:.3g}" if value and abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


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
    with decision_errors():
        say_recovered(project)
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
    """List candidates waiting for a human, each with the guardrail report the decision log holds for it."""
    from datetime import timedelta

    from experiments.durations import parse_duration
    from guardrails import mirror_differences, policy_sha256
    from guardrails.ledger import version_states

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
    console.print("\napprove with `evolve approve VERSION`, or `evolve reject VERSION --reason ...`")


def load_policy_of(project: Any) -> Any:
    from guardrails import load_policy

    return load_policy(project.policy_path)


def artifact_check(project: Any, row: Any) -> str:
    """Whether the config in MLflow is still the one the guard step evaluated (what approve will install)."""
    try:
        found = project.registry.config_of(row.version).sha256()
    except Exception as err:  # noqa: BLE001 - MLflow down: say so, the report above comes from the log
        return f"[yellow]MLflow config not checked ({escape(type(err).__name__)}); the report is the log's[/]"
    if found == row.config_sha256:
        return "MLflow config artifact: matches the evaluated config"
    return (f"[red]MLflow config artifact CHANGED after the guard step (sha256 {found}); "
            "approve will refuse it[/]")


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


@app.command("audit")
def audit_command(
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain and champion.yaml; exit 1 naming "
                                                          "the first bad row.")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="Complete interrupted decisions and put champion.yaml and "
                                                          "the MLflow aliases/tags back to what the log says.")] = False,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """The decision log: who decided what, when and why (hash-chained; the champion is what it says)."""
    from guardrails import DecisionError, materialise, mirror_differences
    from guardrails.ledger import first_bad_row, pending_intents
    from guardrails.project import champion_file_header

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
    table = Table(title=f"decision log ({project.log.path})")
    for column in ("#", "when (UTC)", "action", "version", "previous", "config sha256", "actor", "os user", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r.seq), r.ts[:19].replace("T", " "), f"{r.action} {r.phase}", r.version or "-",
                      r.previous_version or "-", (r.config_sha256 or "-")[:12], escape(r.actor or "-"),
                      escape(r.os_user), escape(r.reason or ""))
    console.print(table)
