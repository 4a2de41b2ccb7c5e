"""Guardrails: the human-set policy, checks of a candidate against the champion, the decision log, approvals.

The decision log (:class:`DecisionLog`) is the one source of truth for the champion; the MLflow
registry mirrors it. Public API::

    from guardrails import load_policy, check_candidate, guard_and_register, approve, reject, rollback
"""

from guardrails.checks import GuardReport, RuleResult, check_candidate
from guardrails.decisions import (
    approve,
    evaluate_against_champion,
    guard_and_register,
    logged_decision,
    materialise,
    record_decision,
    recover,
    reject,
    rollback,
)
from guardrails.evidence import Evidence, collect_evidence
from guardrails.ledger import ChainBroken, ChampionRecord, DecisionLog, LogError, LogLocked
from guardrails.mirror import mirror_differences, sync_mirror
from guardrails.policy import Policy, PolicyError, load_policy, policy_sha256
from guardrails.project import PACKAGED_DEFAULT, DecisionError, Project
from guardrails.registry import PipelineRegistry

__all__ = ["ChainBroken", "ChampionRecord", "DecisionError", "DecisionLog", "Evidence", "GuardReport", "LogError",
           "LogLocked", "PACKAGED_DEFAULT", "PipelineRegistry", "Policy", "PolicyError", "Project", "RuleResult",
           "approve", "check_candidate", "collect_evidence", "evaluate_against_champion", "guard_and_register",
           "load_policy", "logged_decision", "materialise", "mirror_differences", "policy_sha256", "record_decision",
           "recover", "reject", "rollback", "sync_mirror"]
