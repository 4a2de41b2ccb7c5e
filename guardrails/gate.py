"""Which candidates the guard looks at: decided from tuning evidence alone, before any held-back query is read.

Every look (a guard decision on the held-back queries) spends alpha (``guardrails.stats.alpha_for_look``), and
the level falls with the look count since the last human decision. A loop that looks at every iteration runs out
of alpha within hours; most of those looks were at candidates that could not have passed. A candidate goes to
the guard only when

1. its behaviour (the config without its name) was not looked at since the last human decision;
2. on the same tuning queries (the champion is trial 0 of every study; cross-fitting: every fold's study) it
   beats the champion by at least the policy's ``min_gain``;
3. its tuning gain beats the tuning gain of every earlier look since the last human decision by the policy's
   ``looks_gate.record_margin`` (a new record: the Ladder, Blum & Hardt 2015).

The family-wise bound is untouched: with a fixed hold-back, whether to look depends on tuning queries and past
outcomes only, never on held-back scores, so the union bound over looks still gives P(any candidate no better
than the champion passes) <= ``significance.p_value`` between two human decisions, however many iterations the
loop makes. Cross-fitted decisions are different: every query there tunes some fold, so conditions 2 and 3 would
pick looks by the very noise the look then tests; their looks are thinned by a schedule that reads no score
instead (:func:`look_verdict`). A candidate that does not qualify is recorded in the decision log as
``not-looked`` with the reason; it spends no alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from guardrails.ledger import GUARD_ACTIONS, LOOK_SKIPPED, Row, since_human_decision
from guardrails.policy import Policy
from pipelines import PipelineConfig


@dataclass(frozen=True)
class TuningEvidence:
    """A candidate against the champion on the same tuning queries: the per-query differences of the primary
    metric (candidate minus champion), pooled over the folds' studies when cross-fitting."""

    behaviour_sha256: str
    differences: tuple[float, ...]
    champion_behaviour_sha256: str | None = None
    """The champion's behaviour address (a study whose best is the champion itself has no candidate)."""

    @property
    def queries(self) -> int:
        return len(self.differences)

    @property
    def gain(self) -> float:
        return sum(self.differences) / len(self.differences) if self.differences else 0.0

    @property
    def standard_error(self) -> float:
        n = len(self.differences)
        if n < 2:
            return math.inf
        mean = self.gain
        return math.sqrt(sum((d - mean) ** 2 for d in self.differences) / (n - 1) / n)

    def score(self, units: str) -> float:
        """The gain in the gate's units: absolute, or in standard errors (0 when nothing differs)."""
        if units == "absolute":
            return self.gain
        se = self.standard_error
        return self.gain / se if se > 0 and math.isfinite(se) else 0.0

    def to_dict(self) -> dict[str, Any]:
        se = self.standard_error
        return {"behaviour_sha256": self.behaviour_sha256, "gain": round(self.gain, 6), "queries": self.queries,
                "standard_error": round(se, 6) if math.isfinite(se) else None}


@dataclass(frozen=True)
class LookVerdict:
    look: bool
    reason: str
    record: float | None
    """The best tuning evidence of the looks since the last human decision (the gate's units), None: no look yet."""


def behaviour_of(row: Row) -> str | None:
    """The behaviour address of the config a guard row decided on (rows from before it was logged: computed)."""
    found = row.info.get("behaviour_sha256")
    if found:
        return found
    config = row.info.get("config")
    try:
        return PipelineConfig.model_validate(config).behaviour_sha256() if config else None
    except ValueError:
        return None


def looks_and_skips(rows: Sequence[Row]) -> tuple[int, int]:
    """(looks spent, candidates not looked at) since the last human decision."""
    recent = since_human_decision(rows)
    return (sum(1 for r in recent if r.action in GUARD_ACTIONS), sum(1 for r in recent if r.action == LOOK_SKIPPED))


def look_verdict(rows: Sequence[Row], evidence: TuningEvidence | None, policy: Policy, crossfit: bool = False,
                 now: datetime | None = None) -> LookVerdict:
    """Whether this candidate may spend a look, and why (in words a reviewer reads in the log).

    ``crossfit``: every query tunes some fold's study and is held back by another, so tuning evidence is not
    independent of the held-back scores a look tests; choosing looks by it would select looks whose held-back
    noise is favourable and void the union bound. There, looks are thinned by a schedule that reads no score:
    at most one every ``looks_gate.crossfit_interval_minutes`` (and never twice at one pipeline)."""
    gate = policy.looks_gate
    looked = [r for r in since_human_decision(rows) if r.action in GUARD_ACTIONS]
    units = gate.record_units
    scores = [r.info["tuning"]["score"] for r in looked if isinstance(r.info.get("tuning"), dict)
              and r.info["tuning"].get("units") == units and r.info["tuning"].get("score") is not None]
    record = max(scores) if scores else None
    if not gate.enabled:
        return LookVerdict(True, "the look gate is off (policy looks_gate.enabled: false)", record)
    if evidence is None:
        return LookVerdict(False, "no tuning evidence against the champion (its trial 0 did not complete on the "
                                  "candidate's tuning queries)", record)
    if evidence.behaviour_sha256 == evidence.champion_behaviour_sha256:
        return LookVerdict(False, "the studies' best is the champion itself (trial 0): nothing beat it", record)
    if evidence.behaviour_sha256 in {behaviour_of(r) for r in looked}:
        return LookVerdict(False, f"its pipeline ({evidence.behaviour_sha256[:12]}) was looked at since the last "
                                  "human decision", record)
    if crossfit:
        return _scheduled(looked, gate.crossfit_interval_minutes, now or datetime.now(timezone.utc), record)
    if evidence.gain < policy.min_gain:
        return LookVerdict(False, f"tuning gain over the champion {evidence.gain:+.4f} on {evidence.queries} queries "
                                  f"is below min_gain {policy.min_gain}", record)
    score = evidence.score(units)
    if record is not None and score < record + gate.record_margin:
        unit = "" if units == "absolute" else " standard errors"
        return LookVerdict(False, f"tuning gain {score:+.4f}{unit} is not a new record: an earlier look since the "
                                  f"last human decision had {record:+.4f}{unit} (margin {gate.record_margin})", record)
    return LookVerdict(True, f"tuning gain {evidence.gain:+.4f} on {evidence.queries} queries: a new record", record)


def _scheduled(looked: Sequence[Row], minutes: float, now: datetime, record: float | None) -> LookVerdict:
    """The cross-fitting schedule: a look when none was made in the last ``minutes`` (reads no score)."""
    if looked:
        last = datetime.fromisoformat(looked[-1].ts.replace("Z", "+00:00"))
        waited = (now - last).total_seconds() / 60
        if waited < minutes:
            return LookVerdict(False, f"cross-fitted decisions look at most every {minutes:g} min (the last look was "
                                      f"{waited:.0f} min ago; the schedule reads no score)", record)
    return LookVerdict(True, f"cross-fitted: the first look in {minutes:g} min (the schedule reads no score)", record)


def tuning_details(evidence: TuningEvidence | None, policy: Policy) -> dict[str, Any] | None:
    """What the log keeps of the tuning evidence (the next verdicts read ``score`` back in the gate's units)."""
    if evidence is None:
        return None
    units = policy.looks_gate.record_units
    return {**evidence.to_dict(), "units": units, "score": round(evidence.score(units), 6)}
