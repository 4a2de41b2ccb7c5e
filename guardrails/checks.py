"""Apply the policy to a candidate vs the champion: one result per rule, each with its measured value and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from evalsets import language_of
from experiments import CONTAINMENT, DECIDER
from guardrails.evidence import Evidence
from guardrails.policy import Policy
from guardrails.stats import TESTS, alpha_for_look, minimum_detectable_effect, resamples_for


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
    decision: dict[str, Any] = field(default_factory=dict)  # what the decision was made under: look, alpha, hashes

    @property
    def passed(self) -> bool:
        return bool(self.rules) and all(r.passed for r in self.rules)

    @property
    def failed_rules(self) -> list[str]:
        return [r.rule for r in self.rules if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed_rules": self.failed_rules, "candidate": self.candidate,
                "champion": self.champion, "rules": [{k: _plain(v) for k, v in asdict(r).items()} for r in self.rules],
                "decision": self.decision}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GuardReport":
        """The report :meth:`to_dict` wrote (passed and failed_rules follow from the rules)."""
        return cls(data["candidate"], data["champion"], [RuleResult(**r) for r in data["rules"]],
                   dict(data.get("decision") or {}))

    def to_markdown(self) -> str:
        lines = [f"# Guardrail report: {'PASSED' if self.passed else 'REJECTED'}", ""]
        if self.decision:  # two trailing spaces: one line each in rendered markdown
            lines += [f"{key}: {_fmt(value)}  " for key, value in self.decision.items()] + [""]
        lines += [f"candidate `{self.candidate['config']}` vs champion `{self.champion['config']}`", "",
                 "| rule | measured | limit | result | why |", "| --- | --- | --- | --- | --- |"]
        for r in self.rules:
            lines.append(f"| {r.rule} | {_fmt(r.measured)} | {_fmt(r.limit)} | {'pass' if r.passed else 'FAIL'} | {r.why} |")
        return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so the report survives JSON (an np.bool_ would come back as a string)."""
    return value.item() if isinstance(value, np.generic) else value


def _fmt(value: Any) -> str:
    if isinstance(value, float):  # a late look's alpha or a tiny p-value would read 0.0000 at four decimals
        return f"{value:.3g}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def _paired(candidate: Evidence, champion: Evidence, metric: str, failure: bool, decided: bool | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Paired scores of the queries scored on ``metric`` for both; ``decided``: only those whose answer metrics
    were decided without the judge (True) or by it (False)."""
    cand, champ = [], []
    for mine, theirs in zip(candidate.sets, champion.sets):
        if mine.is_failure_set != failure:
            continue
        for qid, row in mine.per_query.items():
            if decided is not None and (metric == "answer_correctness" and DECIDER in row) != decided:
                continue
            if metric in row and metric in theirs.per_query.get(qid, {}):
                cand.append(row[metric])
                champ.append(theirs.per_query[qid][metric])
    return np.array(cand), np.array(champ)


def check_candidate(candidate: Evidence, champion: Evidence, policy: Policy, look: int = 1,
                    judge_agreement: dict[str, Any] | None = None) -> GuardReport:
    """Every rule of the policy on this candidate. ``look`` numbers this guard decision among those since the
    last human decision (1 for the first): it sets the significance level alpha spending grants it.
    ``judge_agreement``: the judge's latest calibration ({"kappa", "n"}), for ``answers.min_judge_kappa``."""
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
    alpha = 1.0 if sig.p_value >= 1 else alpha_for_look(sig.p_value, look, sig.looks)
    report.decision.update({"look": look, "looks": sig.looks, "family_alpha": sig.p_value, "alpha_of_look": alpha})
    add(_significance(cand, champ, sig, look, alpha))
    add(_detectable(cand - champ, sig, metric, look, alpha))

    for mine, theirs in zip(candidate.sets, champion.sets):
        allowed = policy.max_regression.failure_set if mine.is_failure_set else policy.max_regression.for_set(mine.name)
        drop = theirs.mean(metric) - mine.mean(metric)
        add(RuleResult(f"max_regression [{mine.name}]", drop, allowed, drop <= allowed,
                       f"{metric} {mine.mean(metric):.4f} vs champion {theirs.mean(metric):.4f} "
                       f"on {len(mine.per_query)} queries"))

    report.rules += answer_rules(candidate, champion, policy, judge_agreement)

    add(RuleResult("latency_p95_ms", candidate.latency_p95_ms, policy.max_latency_p95_ms,
                   candidate.latency_p95_ms <= policy.max_latency_p95_ms, "single-query searches, query embedding included"))
    add(RuleResult("index_mb", candidate.index_mb, policy.max_index_mb, candidate.index_mb <= policy.max_index_mb,
                   "dense index + BM25 matrix held in memory"))
    for model, licence in candidate.models.items():
        allowed = model in policy.allowed_models or licence in policy.allowed_licences
        add(RuleResult(f"licence [{model}]", licence, "allowed_licences / allowed_models", allowed,
                       "listed" if allowed else "licence not on the policy's allow-list"))
    return report


def _significance(cand: np.ndarray, champ: np.ndarray, sig: Any, look: int, alpha: float) -> RuleResult:
    name, n = f"significance ({sig.test})", len(cand)
    if sig.p_value >= 1:
        p_value = TESTS[sig.test](cand, champ, sig.resamples, sig.seed)
        return RuleResult(name, p_value, sig.p_value, True, f"one-sided p-value of the paired per-query differences "
                          f"(n={n}); test turned off by the policy")
    resamples = resamples_for(alpha, sig.resamples)
    p_value = TESTS[sig.test](cand, champ, resamples, sig.seed)
    if sig.looks == "per_look":
        controls = ("per_look: controls this look alone, so over many looks noise passes far more often than "
                    f"{sig.p_value:g}")
    else:
        controls = ("alpha spending: over all looks since the last human decision, a candidate no better than the "
                    f"champion passes with chance <= {sig.p_value:g}")
    why = (f"one-sided p={p_value:.3g} of the paired per-query differences (n={n}, {resamples} resamples) vs alpha "
           f"{alpha:.3g} of look {look}; {controls}")
    if 1 / (resamples + 1) >= alpha:
        why += f"; alpha is below the smallest p-value {resamples} resamples can give: this look cannot pass"
    return RuleResult(name, p_value, alpha, p_value < alpha, why)


def _detectable(diff: np.ndarray, sig: Any, metric: str, look: int, alpha: float) -> RuleResult:
    """Informational, always passes: the smallest gain this many held-back queries can detect at this look."""
    effect, sd, fallback = minimum_detectable_effect(diff, min(alpha, 0.5), sig.power)
    why = (f"smallest {metric} gain found with power {sig.power:g} at alpha {alpha:.3g} of look {look}: "
           f"(z(1-alpha) + z(power)) * sd / sqrt(n), sd of the paired differences {sd:.4f}, n={len(diff)}")
    if fallback:
        why += "; their observed sd is 0, so the largest possible sd (1.0) is used: a conservative upper bound"
    return RuleResult("minimum detectable effect", effect if np.isfinite(effect) else None, "info", True, why)


def answer_rules(candidate: Evidence, champion: Evidence, policy: Policy,
                 judge_agreement: dict[str, Any] | None) -> list[RuleResult]:
    """"No significant regression" on each answer metric the policy holds, or one line saying why none applies.

    One-sided paired test (the policy's test) of "the champion's answers are better" on the held-back queries
    scored for both, refused when p is below ``significance.p_value`` shared out over the metrics tested
    (Bonferroni): a candidate no worse than the champion is then refused by noise with chance at most
    ``p_value`` per look. No alpha is spent over looks: a false alarm can only refuse, the safe direction.

    Each rule says what decided it: ``answer_correctness`` on short references is decided by containment
    (deterministic, :mod:`experiments.short_answers`), the rest by the judge. A judge below the policy's
    ``min_judge_kappa`` on the set's language has its verdicts reported, not used; the deterministic part of
    ``answer_correctness`` still counts."""
    sig, held = policy.significance, policy.answers.hold
    if not held:
        return []
    if not candidate.answers or candidate.answers.get("skipped"):
        why = candidate.answers.get("skipped", "no LLM was given to the guard step")
        return [RuleResult("answer metrics", "skipped", "info", True,
                           f"not measured: {why}; the decision rests on retrieval metrics")]
    judge = candidate.answers.get("judge_model", "?")
    rules, trusted = _judge_trust(candidate, judge, policy.answers.min_judge_kappa, judge_agreement)
    tests = []
    for metric in held:
        deterministic = _paired(candidate, champion, metric, failure=False, decided=True)
        judged = _paired(candidate, champion, metric, failure=False, decided=False)
        if not trusted:
            judged = (judged[0][:0], judged[1][:0])
            if not len(deterministic[0]):
                continue
        parts = [f"{CONTAINMENT} on {len(deterministic[0])}"] if len(deterministic[0]) else []
        parts += [f"the judge {judge} on {len(judged[0])}"] if len(judged[0]) else []
        cand, champ = np.concatenate([deterministic[0], judged[0]]), np.concatenate([deterministic[1], judged[1]])
        scored = "scored for both" if len(deterministic[0]) else f"judged by {judge}"
        tests.append((metric, cand, champ, scored, "decided by " + (" and ".join(parts) or "no") + " queries"))
    level = sig.p_value / max(1, len(tests))
    for metric, cand, champ, scored, decided in tests:
        name = f"no significant regression [{metric}]"
        if len(cand) < 2:
            rules.append(RuleResult(name, None, level, True, f"{len(cand)} queries scored for both configs: "
                                    f"too few to test; not applied ({decided})"))
            continue
        p_value = TESTS[sig.test](champ, cand, resamples_for(level, sig.resamples), sig.seed)
        effect, _, _ = minimum_detectable_effect(champ - cand, min(level, 0.5), sig.power)
        passed = sig.p_value >= 1 or p_value >= level
        rules.append(RuleResult(name, p_value, level, passed,
                                f"{metric} {cand.mean():.3f} vs champion {champ.mean():.3f} on {len(cand)} queries "
                                f"{scored}; {decided}; one-sided p={p_value:.3g} that the champion's answers "
                                f"are better ({sig.test}); below {level:.3g} ({sig.p_value:g} over {len(tests)} "
                                f"tested metrics) refuses; the smallest drop this detects with power {sig.power:g} is "
                                f"{effect:.3f}"))
    return rules


def _judge_trust(candidate: Evidence, judge: str, floor: float | None, agreement: dict[str, Any] | None
                 ) -> tuple[list[RuleResult], bool]:
    """Whether the judge's verdicts count (its kappa on the held-back set's language against ``floor``), and the
    line that says why not. A calibration that names languages is read for the set's; an older one, pooled."""
    if floor is None:
        return [], True
    language = language_of([text for s in candidate.sets if not s.is_failure_set for text in s.texts.values()])
    agreement = agreement or {}
    per_language = agreement.get("languages")
    found = per_language.get(language) if per_language is not None else agreement
    kappa = (found or {}).get("kappa")
    if kappa is not None and kappa >= floor:
        return [], True
    on = f" on {language}" if per_language is not None else ""
    measured = "not calibrated" if kappa is None else round(float(kappa), 4)
    known = (f"{kappa:.3f} (n={found.get('n')})" if kappa is not None else
             f"unknown{on} (run `evolve judge calibrate` with labels in this language)" if per_language is not None
             else "unknown (run `evolve judge calibrate`)")
    return [RuleResult(f"judge agreement [{judge}]", measured, floor, True,
                       f"Cohen's kappa of {judge} with human labels{on} {known} is below the policy's {floor:g}: "
                       "its answer verdicts are reported, not used (correctness on short references is decided "
                       "without it)")], False
