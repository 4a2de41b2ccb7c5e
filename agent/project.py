"""What the decision commands share: the project's decision state, its options, errors and the report table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import console, fail
from agent.paths import ProjectPaths

if TYPE_CHECKING:
    from evalsets import EvalSet
    from guardrails import Policy, Project, Row

PolicyOption = Annotated[Optional[Path], typer.Option("--policy", envvar="EVOLVE_POLICY",
                                                      help="Policy YAML (default: guardrails/policy.yaml).")]
TrackingOption = Annotated[Optional[str], typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                                                       help="MLflow tracking/registry URI.")]
ActorOption = Annotated[Optional[str], typer.Option("--actor", envvar="EVOLVE_ACTOR",
                                                    help="Who decides (recorded with the OS user; attribution, "
                                                         "not authentication).")]
UiOption = Annotated[str, typer.Option("--ui-url", envvar="EVOLVE_MLFLOW_UI",
                                       help="Base URL of the MLflow UI, for links.")]


def open_project(project_dir: Path, tracking_uri: str | None, default_config: Path | None = None) -> Project:
    """The project's decision state; the MLflow registry is opened only when a command needs it."""
    from agent.app import DEMO_CONFIG, PACKAGE_ROOT
    from guardrails import DEFAULT_POLICY, PACKAGED_DEFAULT, DecisionLog, PipelineRegistry, Project

    paths = ProjectPaths.of(project_dir)
    uri = paths.tracking_uri(tracking_uri)
    # before any approval the champion is the project's default.yaml, else the packaged default; the
    # repository checkout itself is the demo's project, which starts from the demo config
    starting = DEMO_CONFIG if paths.root == PACKAGE_ROOT else PACKAGED_DEFAULT
    return Project(paths.root, lambda: PipelineRegistry(uri, artifact_root=paths.mlflow_artifacts),
                   DecisionLog(paths.decision_log), default_config or paths.default_config or starting,
                   paths.policy or DEFAULT_POLICY, paths.catalog)


@contextmanager
def decision_errors() -> Iterator[None]:
    """A refused decision, a held or broken decision log: one line and exit 2, never a traceback."""
    from guardrails import DecisionError, LogError, PolicyError

    try:
        yield
    except (DecisionError, LogError, PolicyError) as err:
        fail(str(err))


def say_recovered(project: Project) -> None:
    """Complete interrupted decisions first, saying so (every command that reads the champion calls this)."""
    from guardrails import recover

    for line in recover(project):
        console.print(f"[yellow]{escape(line)}[/]")


def looks_line(rows: list[Row]) -> str:
    """Looks spent and candidates kept from the guard since the last human decision (the look gate), one line."""
    from guardrails import looks_and_skips

    spent, skipped = looks_and_skips(rows)
    return (f"since the last human decision: {spent} looks spent (alpha spent over them), {skipped} candidates not "
            "looked at (the look gate; `evolve audit` gives each reason)")


def say_mirror(problems: list[str]) -> None:
    for line in problems:
        console.print(f"[yellow]registry mirror:[/] {escape(line)}")


def report_table(report: dict[str, object], why: bool = True, skip: tuple[str, ...] = ()) -> Table:
    """The guard report as a table; its caption says what the decision was made under (look, alpha, hashes, each
    short). ``why``: a column with each rule's explanation; ``skip``: decision keys printed elsewhere."""
    import re

    verdict = "[green]PASSED[/]" if report["passed"] else "[red]REJECTED[/]"
    decision = {k: v for k, v in (report.get("decision") or {}).items() if k not in skip}

    def value(v: object) -> str:
        return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1", _number(v)) if isinstance(v, str) else _number(v)

    table = Table(title=f"guardrails: {verdict}  {report['candidate']['config']} vs {report['champion']['config']}",
                  caption=escape("; ".join(f"{k}: {value(v)}" for k, v in decision.items())) or None)
    for column in ("rule", "measured", "limit", "result") + (("why",) if why else ()):
        table.add_column(column, overflow="fold")
    for rule in report["rules"]:
        result = ("info" if rule["limit"] == "info" and rule["passed"] else
                  "[green]pass[/]" if rule["passed"] else "[red]FAIL[/]")
        table.add_row(escape(rule["rule"]), _number(rule["measured"]), escape(_number(rule["limit"])), result,
                      *((escape(rule["why"]),) if why else ()))
    return table


def answer_lines(report: dict[str, object]) -> list[str]:
    """The judged answer means of candidate and champion per held-back set, or why answers were not judged."""
    candidate, champion = report["candidate"], report["champion"]
    note = candidate.get("answers") or {}
    if not note or note.get("skipped"):
        return [f"answers: not judged ({note.get('skipped', 'no LLM at the guard step')})"]
    lines = [f"answers judged by {note.get('judge_model')}: {note.get('spend', '')}"]
    for name, values in candidate.get("sets", {}).items():
        theirs = champion.get("sets", {}).get(name, {})
        parts = [f"{metric} {values[metric]:.3f} vs champion {theirs[metric]:.3f} (n={values[metric + '_judged']})"
                 for metric in ("answer_correctness", "faithfulness", "context_relevance")
                 if metric in values and metric in theirs]
        if parts:
            lines.append(f"  {name}: " + "; ".join(parts))
    return lines


def _number(value: object) -> str:
    """Four decimals, or three significant digits for the tiny alphas and p-values of late looks."""
    if isinstance(value, float):
        return f"{value:.3g}" if value and abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def load_policy_of(project: Project) -> Policy:
    from guardrails import load_policy

    return load_policy(project.policy_path)


def artifact_check(project: Project, row: Row) -> str:
    """Whether the config in MLflow is still the one the guard step evaluated (what approve will install)."""
    try:
        found = project.registry.config_of(row.version).sha256()
    except Exception as err:  # noqa: BLE001 - MLflow down: say so, the report above comes from the log
        return f"[yellow]MLflow config not checked ({escape(type(err).__name__)}); the report is the log's[/]"
    if found == row.config_sha256:
        return "MLflow config artifact: matches the evaluated config"
    return (f"[red]MLflow config artifact CHANGED after the guard step (sha256 {found}); "
            "approve will refuse it[/]")


def gating_failure_set(path: Optional[Path], rules: Policy) -> EvalSet | None:
    """The failure set's queries that may gate promotion under the policy's ``failure_set_sources`` (None
    without a set, or when none may); says in one line how many gate and how many the policy left out."""
    if path is None:
        return None
    from evalsets import load_evalset
    from evalsets import gating_subset

    full = load_evalset(path)
    gating = gating_subset(full, rules.failure_set_sources)
    console.print(f"failure set {path}: {len(gating.queries)} of {len(full.queries)} queries gate promotion, "
                  f"{len(full.queries) - len(gating.queries)} left out by the policy "
                  f"(failure_set_sources: {', '.join(rules.failure_set_sources) or 'none'})",
                  highlight=False, soft_wrap=True)
    return gating if gating.queries else None
