"""Guardrails: the human-set policy and approvals (to come; see the issues)."""
