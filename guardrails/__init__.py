"""Guardrails: the human-set policy, checks of a candidate against the champion, registry, approvals.

Public API::

    from guardrails import load_policy, check_candidate, guard_and_register, approve, reject, rollback
"""

from guardrails.audit import AuditLog
from guardrails.checks import GuardReport, RuleResult, check_candidate
from guardrails.decisions import (
    DecisionError,
    Project,
    approve,
    evaluate_against_champion,
    guard_and_register,
    record_decision,
    reject,
    rollback,
)
from guardrails.evidence import Evidence, collect_evidence
from guardrails.policy import Policy, PolicyError, load_policy
from guardrails.registry import PipelineRegistry

__all__ = ["AuditLog", "DecisionError", "Evidence", "GuardReport", "PipelineRegistry", "Policy", "PolicyError",
           "Project", "RuleResult", "approve", "check_candidate", "collect_evidence", "evaluate_against_champion", "guard_and_register",
           "load_policy", "record_decision", "reject", "rollback"]
