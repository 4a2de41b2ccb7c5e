"""The human-set promotion policy: loaded and validated, never written by evolve."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from experiments import parse_metric
from pipelines import load_model

DEFAULT_POLICY = Path(__file__).resolve().parent / "policy.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Significance(_Strict):
    """The paired test of candidate vs champion on the held-back queries.

    ``p_value`` is the family-wise level: the chance that any candidate no better than the champion
    passes in *any* of the looks (guard decisions) since the last human decision. With
    ``looks: alpha_spending`` the k-th look is tested at ``p_value * gamma_k`` (sum of gamma_k <= 1,
    see :func:`guardrails.stats.alpha_for_look`); ``per_look`` tests every look at ``p_value`` (the old
    rule, kept for comparison only: it controls one look, not the run).

    The default test is the sign-flip permutation test: exact when candidate and champion are exchangeable,
    whereas the paired bootstrap passes noise too often at the small alphas of later looks when most queries
    do not change (bench/results/promotion_sim.md, section c).
    """

    test: Literal["paired_bootstrap", "permutation"] = "permutation"
    p_value: float = Field(0.05, gt=0, le=1, description="family-wise level over all looks since the last human "
                                                        "decision; 1.0 turns the test off")
    looks: Literal["alpha_spending", "per_look"] = "alpha_spending"
    power: float = Field(0.8, gt=0, lt=1, description="power at which the minimum detectable effect is reported")
    resamples: int = Field(10_000, ge=100, le=1_000_000)
    seed: int = 0


class LookGate(_Strict):
    """Which candidates spend a look (guardrails.gate), from tuning evidence alone: a pipeline not looked at since
    the last human decision, ahead of the champion by ``min_gain`` on the same tuning queries, and ahead of every
    earlier look's tuning gain by ``record_margin`` (in ``record_units``); cross-fitted decisions instead look at
    most every ``crossfit_interval_minutes``. Off: every candidate is looked at."""

    enabled: bool = True
    record_margin: float = Field(0.5, ge=0, description="how far a candidate's tuning gain must exceed the best "
                                                        "tuning gain of the looks since the last human decision")
    record_units: Literal["absolute", "standard_errors"] = Field("standard_errors", description=(
        "standard_errors: the gain divided by its standard error, so configs far from the champion (noisier "
        "differences) cannot set records a real gain of a close one never beats "
        "(bench/guardrails/promotion_sim.py, long runs)"))
    crossfit_interval_minutes: float = Field(60.0, ge=0, description=(
        "cross-fitted decisions (every query tunes some fold, so tuning evidence is not independent of the held-back "
        "scores): at most one look this often, by a schedule that reads no score"))


class MaxRegression(_Strict):
    default: float = Field(0.01, ge=0, le=1)
    per_set: dict[str, float] = Field(default_factory=dict)
    failure_set: float = Field(0.0, ge=0, le=1)

    def for_set(self, name: str) -> float:
        return self.per_set.get(name, self.default)


AnswerMetric = Literal["answer_correctness", "faithfulness", "context_relevance"]


class Answers(_Strict):
    """Answer quality: the LLM-judged second stage (``experiments.answers``), run when an LLM is reachable.

    A candidate is held to "no significant regression" on each metric in ``hold``: the same one-sided paired test
    as the primary metric (``significance.test``), asking whether the champion's answers are better, at
    ``significance.p_value`` shared out over the held metrics: a false alarm only refuses, so no alpha is spent
    over looks on it.
    """

    hold: list[AnswerMetric] = Field(default_factory=lambda: ["answer_correctness", "faithfulness",
                                                              "context_relevance"])
    queries: int = Field(30, ge=0, le=10_000, description="held-back queries judged per config; 0 turns answers off")
    finalists: int = Field(2, ge=1, le=20, description="best trials of a study whose answers are judged")
    finalist_queries: int = Field(10, ge=1, le=10_000, description="tuning queries each finalist is judged on")
    budget_share: float = Field(0.25, gt=0, le=1, description="largest share of a loop's budget answers may take")
    min_judge_kappa: float | None = Field(None, ge=-1, le=1, description=(
        "answer rules count only for a judge whose latest `evolve judge calibrate` agreement (Cohen's kappa) with "
        "human labels on the held-back set's language is at least this; null: any judge"))
    min_paired_queries: int = Field(6, ge=2, le=10_000, description=(
        "the answer stage runs only where one timed answer and verdict say the allowance pays for this many queries "
        "judged for both candidate and champion; 6 is the fewest paired 0/1 verdicts that can refuse at 0.05 over "
        "three held metrics (0.5^6 < 0.0167)"))


class Online(_Strict):
    """Evidence from live traffic (`evolve serve --interleave`): a candidate with at least ``min_queries`` interleaved
    queries may not lose to the champion significantly (two-sided sign test of wins against losses at
    ``max_loss_p``). Read at review and approval, never at the guard step (no traffic exists then); it can only
    refuse, never promote. Absent from the policy: off."""

    min_queries: int = Field(200, ge=1, description="interleaved queries before the rule judges (fewer: pending)")
    max_loss_p: float = Field(0.05, gt=0, le=1, description="a loss with a sign-test p-value below this refuses")


class Policy(_Strict):
    primary_metric: str = "ndcg@10"
    min_gain: float = Field(0.005, ge=-1, le=1, description="negative: allow a small loss (e.g. for a cheaper model)")
    significance: Significance = Field(default_factory=Significance)
    max_regression: MaxRegression = Field(default_factory=MaxRegression)
    max_latency_p95_ms: float = Field(250, gt=0)
    max_index_mb: float = Field(4096, gt=0)
    allowed_licences: list[str] = Field(default_factory=list)
    allowed_models: list[str] = Field(default_factory=list)
    min_queries: int = Field(30, ge=1)
    answers: Answers = Field(default_factory=Answers)
    looks_gate: LookGate = Field(default_factory=LookGate)
    online: Online | None = Field(None, description="live-traffic rule (off when absent)")
    failure_set_sources: list[Literal["api", "import", "unknown"]] = Field(
        default_factory=lambda: ["api"],
        description="feedback sources whose failure queries may gate promotion (imports only when a human lists them)")

    @field_validator("primary_metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        parse_metric(value)
        return value.lower()


LATER_FIELDS = {"answers": Answers, "looks_gate": LookGate}
"""Sections added after the first decisions were recorded: at their defaults they do not enter the policy's
address, so a candidate judged before they existed still matches an unchanged policy."""


LATER_KEYS = {"answers": {"min_paired_queries": 6}}
"""Keys added to a section after decisions were recorded under it: at their defaults they do not enter the address."""


class PolicyError(ValueError):
    pass


def policy_sha256(policy: Policy) -> str:
    """sha256 of the policy's canonical JSON (sorted keys, no spaces): equal policies hash equal, whatever the
    order of the YAML keys."""
    data = policy.model_dump(mode="json")
    for name, part in LATER_FIELDS.items():  # added after decisions were first recorded: at its default, left out
        if data[name] == part().model_dump(mode="json"):
            del data[name]
    if data.get("online") is None:  # added later, off by default: an unchanged policy keeps its address
        data.pop("online", None)
    for section, keys in LATER_KEYS.items():  # keys added to a section later: at their default, left out
        for key, default in keys.items():
            if section in data and data[section].get(key) == default:
                del data[section][key]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_policy(path: Path | str | None = None) -> Policy:
    return load_model(Path(path) if path else DEFAULT_POLICY, Policy, PolicyError, "policy", empty_ok=True)
