"""Promotion decisions: guard + register a candidate; approve, reject, roll back (humans only).

The champion is what `evolve serve` runs: the registry's `champion` alias, mirrored into the
project's default config file (``champion.yaml``) on every approval or rollback. Before any
approval the packaged default config is the champion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evalsets import EvalSet
from guardrails.audit import AuditLog
from guardrails.checks import GuardReport, check_candidate
from guardrails.evidence import Evidence, collect_evidence
from guardrails.policy import Policy
from guardrails.registry import PipelineRegistry
from pipelines import Components, PipelineConfig, load_config, save_config

PACKAGED_DEFAULT = Path(__file__).resolve().parent.parent / "pipelines" / "configs" / "default.yaml"


class DecisionError(ValueError):
    """A decision that cannot be made (unknown version, nothing to roll back to...)."""


@dataclass
class Project:
    """Where the decisions of one project live."""

    root: Path
    registry: PipelineRegistry
    audit: AuditLog
    default_config: Path = PACKAGED_DEFAULT
    """What serves (and what candidates must beat) before any approval has written champion.yaml."""

    @property
    def champion_file(self) -> Path:
        return self.root / "champion.yaml"

    def champion_config(self) -> PipelineConfig:
        return load_config(self.champion_file if self.champion_file.exists() else self.default_config)


def evaluate_against_champion(project: Project, candidate: PipelineConfig, heldout_sets: list[EvalSet],
                              policy: Policy, components: Components,
                              failure_set: EvalSet | None = None) -> tuple[GuardReport, Evidence]:
    """Evidence for candidate and champion on the same held-back queries, checked against the policy."""
    cand = collect_evidence(candidate, heldout_sets, components, failure_set)
    champ = collect_evidence(project.champion_config(), heldout_sets, components, failure_set)
    return check_candidate(cand, champ, policy), cand


def record_decision(project: Project, candidate: PipelineConfig, report: GuardReport, evidence: Evidence,
                    study: str | None = None) -> str | None:
    """Register a passing candidate (alias `candidate`) or log the rejection; audited either way."""
    per_query = {s.name: [{"query_id": q, **m} for q, m in s.per_query.items()] for s in evidence.sets}
    run_id, version = project.registry.record_decision(candidate, report, per_query, study)
    project.audit.record("register" if version else "guard-rejected", version,
                         "passed the policy" if version else f"failed: {', '.join(report.failed_rules)}",
                         project.registry.name, details={"run_id": run_id, "config": candidate.name}, actor="evolve")
    return version


def guard_and_register(project: Project, candidate: PipelineConfig, heldout_sets: list[EvalSet],
                       policy: Policy, components: Components, failure_set: EvalSet | None = None,
                       study: str | None = None) -> tuple[GuardReport, str | None]:
    """Compare candidate and champion on the held-back sets (and failures); register only if every rule passes."""
    report, evidence = evaluate_against_champion(project, candidate, heldout_sets, policy, components, failure_set)
    return report, record_decision(project, candidate, report, evidence, study)


def approve(project: Project, version: str, reason: str, actor: str | None = None) -> str | None:
    """Make a registered candidate the champion; returns the previous champion version."""
    registry = project.registry
    try:
        status = registry.version(version).tags.get("evolve.status")
    except Exception:
        raise DecisionError(f"no version {version} of {registry.name}") from None
    if status != "candidate":
        raise DecisionError(f"version {version} is {status!r}, only candidates can be approved")
    previous = registry.alias_version("champion")
    previous_yaml = project.champion_config().to_yaml()
    config = registry.config_of(version)
    registry.move_alias("champion", version)
    registry.set_status(version, "champion")
    if previous:
        registry.set_status(previous, "retired")
    if registry.alias_version("candidate") == version:
        registry.move_alias("candidate", None)
    save_config(config, project.champion_file)
    project.audit.record("approve", version, reason, registry.name, previous,
                         {"config": config.name, "previous_config_yaml": previous_yaml}, actor)
    return previous


def reject(project: Project, version: str, reason: str, actor: str | None = None) -> None:
    registry = project.registry
    try:
        status = registry.version(version).tags.get("evolve.status")
    except Exception:
        raise DecisionError(f"no version {version} of {registry.name}") from None
    if status != "candidate":
        raise DecisionError(f"version {version} is {status!r}, only candidates can be rejected")
    registry.set_status(version, "rejected")
    if registry.alias_version("candidate") == version:
        registry.move_alias("candidate", None)
    project.audit.record("reject", version, reason, registry.name, actor=actor)


def rollback(project: Project, reason: str, actor: str | None = None) -> str | None:
    """Move `champion` back to what the current champion replaced: a version, or the config file before it."""
    registry = project.registry
    current = registry.alias_version("champion")
    if current is None:
        raise DecisionError("there is no approved champion to roll back")
    approval = next((e for e in reversed(project.audit.entries())
                     if e["action"] == "approve" and e["version"] == current), None)
    if approval is None:
        raise DecisionError(f"no approval of version {current} in the audit log")
    previous = approval["previous_version"]
    registry.set_status(current, "rolled-back")
    if previous:
        registry.move_alias("champion", previous)
        registry.set_status(previous, "champion")
        save_config(registry.config_of(previous), project.champion_file)
    else:  # the champion before the first approval: the config file it replaced
        registry.move_alias("champion", None)
        previous_yaml = json.loads(approval["details"]).get("previous_config_yaml")
        project.champion_file.write_text(previous_yaml, encoding="utf-8")
    project.audit.record("rollback", previous, reason, registry.name, current, actor=actor)
    return previous
