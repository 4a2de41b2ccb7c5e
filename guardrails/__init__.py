"""Guardrails: the human-set policy, checks of a candidate against the champion, the decision log, approvals.

The decision log (:class:`DecisionLog`) is the one source of truth for the champion; the MLflow
registry mirrors it. Public API::

    from guardrails import load_policy, check_candidate, guard_and_register, approve, reject, rollback
"""

from guardrails.checks import GuardReport, RuleResult, check_candidate
from guardrails.decisions import (
    approve,
    ensure_trained_models,
    evaluate_against_champion,
    guard_and_register,
    logged_decision,
    record_decision,
    MACHINE_ACTOR,
    per_query_outcome,
    record_not_looked,
    reject,
    rollback,
    stale_champion,
)
from guardrails.project import materialise, recover
from guardrails.gate import LookVerdict, TuningEvidence, look_verdict, looks_and_skips, tuning_details
from guardrails.evidence import Evidence, collect_evidence
from guardrails.ledger import (
    ChainBroken,
    ChampionRecord,
    DecisionLog,
    LogError,
    LogLocked,
    Row,
    first_bad_row,
    pending_intents,
    register_row,
    version_states,
)
from guardrails.mirror import mirror_differences, sync_mirror
from guardrails.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy, policy_sha256
from guardrails.project import PACKAGED_DEFAULT, DecisionError, Project, champion_file_header
from guardrails.registry import PipelineRegistry
from guardrails.traffic import TRAFFIC_START, TRAFFIC_STOP, log_traffic, online_rule, traffic_candidate
from guardrails.stats import alpha_for_look, minimum_detectable_effect, paired_bootstrap_p, permutation_p, resamples_for

__all__ = ["TRAFFIC_START", "TRAFFIC_STOP", "log_traffic", "online_rule", "traffic_candidate", "ChainBroken", "ChampionRecord", "DEFAULT_POLICY", "DecisionError", "DecisionLog", "Evidence",
           "GuardReport", "LogError", "LogLocked", "LookVerdict", "MACHINE_ACTOR", "PACKAGED_DEFAULT",
           "PipelineRegistry", "Policy", "PolicyError", "Project", "Row", "RuleResult", "TuningEvidence", "alpha_for_look",
           "approve", "champion_file_header", "check_candidate", "collect_evidence", "ensure_trained_models",
           "evaluate_against_champion", "first_bad_row", "guard_and_register", "load_policy", "logged_decision",
           "look_verdict", "looks_and_skips", "materialise", "minimum_detectable_effect", "mirror_differences",
           "paired_bootstrap_p", "pending_intents", "per_query_outcome", "permutation_p", "policy_sha256",
           "record_decision", "record_not_looked", "recover", "register_row", "reject", "resamples_for", "rollback",
           "stale_champion", "sync_mirror", "tuning_details", "version_states"]
