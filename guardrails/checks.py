"""Apply the policy to a candidate vs the champion: one result per rule, each with its measured value and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from guardrails.evidence import Evidence
from guardrails.policy import Policy
from guardrails.stats import TESTS


@dataclass
class RuleResult:
    rule: str
    measured: Any
    limit: Any
    passed: bool
    why: str


@dataclass
class GuardReport:
    candidate: dict[str, Any]
    champion: dict[str, Any]
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rules) and all(r.passed for r in self.rules)

    @property
    def failed_rules(self) -> list[str]:
        return [r.rule for r in self.rules if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed_rules": self.failed_rules, "candidate": self.candidate,
                "champion": self.champion, "rules": [asdict(r) for r in self.rules]}

    def to_markdown(self) -> str:
        lines = [f"# Guardrail report: {'PASSED' if self.passed else 'REJECTED'}", "",
                 f"candidate `{self.candidate['config']}` vs champion `{self.champion['config']}`", "",
                 "| rule | measured | limit | result | why |", "| --- | --- | --- | --- | --- |"]
        for r in self.rules:
            lines.append(f"| {r.rule} | {_fmt(r.measured)} | {_fmt(r.limit)} | {'pass' if r.passed else 'FAIL'} | {r.why} |")
        return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _paired(candidate: Evidence, champion: Evidence, metric: str, failure: bool) -> tuple[np.ndarray, np.ndarray]:
    cand, champ = [], []
    for mine, theirs in zip(candidate.sets, champion.sets):
        if mine.is_failure_set != failure:
            continue
        for qid, row in mine.per_query.items():
            if qid in theirs.per_query:
                cand.append(row[metric])
                champ.append(theirs.per_query[qid][metric])
    return np.array(cand), np.array(champ)


def check_candidate(candidate: Evidence, champion: Evidence, policy: Policy) -> GuardReport:
    metric = policy.primary_metric
    report = GuardReport(candidate.summary(metric), champion.summary(metric))
    add = report.rules.append
    cand, champ = _paired(candidate, champion, metric, failure=False)

    add(RuleResult("min_queries", len(cand), policy.min_queries, len(cand) >= policy.min_queries,
                   f"{len(cand)} held-back queries scored for both configs"))
    gain = float(cand.mean() - champ.mean()) if len(cand) else 0.0
    add(RuleResult(f"min_gain ({metric})", gain, policy.min_gain, gain >= policy.min_gain,
                   f"pooled mean {cand.mean() if len(cand) else 0:.4f} vs champion {champ.mean() if len(champ) else 0:.4f}"))
    sig = policy.significance
    p_value = TESTS[sig.test](cand, champ, sig.resamples, sig.seed)
    add(RuleResult(f"significance ({sig.test})", p_value, sig.p_value, p_value < sig.p_value or sig.p_value >= 1,
                   f"one-sided p-value of the paired per-query differences (n={len(cand)})"
                   + ("; test turned off by the policy" if sig.p_value >= 1 else "")))

    for mine, theirs in zip(candidate.sets, champion.sets):
        allowed = policy.max_regression.failure_set if mine.is_failure_set else policy.max_regression.for_set(mine.name)
        drop = theirs.mean(metric) - mine.mean(metric)
        add(RuleResult(f"max_regression [{mine.name}]", drop, allowed, drop <= allowed,
                       f"{metric} {mine.mean(metric):.4f} vs champion {theirs.mean(metric):.4f} "
                       f"on {len(mine.per_query)} queries"))

    add(RuleResult("latency_p95_ms", candidate.latency_p95_ms, policy.max_latency_p95_ms,
                   candidate.latency_p95_ms <= policy.max_latency_p95_ms, "single-query searches, query embedding included"))
    add(RuleResult("index_mb", candidate.index_mb, policy.max_index_mb, candidate.index_mb <= policy.max_index_mb,
                   "dense index + BM25 matrix held in memory"))
    for model, licence in candidate.models.items():
        allowed = model in policy.allowed_models or licence in policy.allowed_licences
        add(RuleResult(f"licence [{model}]", licence, "allowed_licences / allowed_models", allowed,
                       "listed" if allowed else "licence not on the policy's allow-list"))
    return report
