"""How often does a loop promote noise, and how often a real gain? Old rule (p < 0.05 at every look) vs alpha spending.

    .venv/bin/python -m bench.guardrails.promotion_sim [--data ../shared/data] [--loops 1000] [--decisions 200] [--rescore]
                                            [--long-loops 2000] [--long-only]

Null noise comes from real per-query scores: two lexical configs with near-equal means are scored on a
shared set (pipelines + experiments.evaluate, as bench/retrieval/foundation.py does) and their per-query nDCG@10
differences, centred to mean 0, are what a candidate no better than the champion looks like:

- scifact (test, 300 queries): BM25 english k1 1.2 vs k1 1.5 (b 0.75)
- korquad (korquad-v1-dev, the shared half, 3,473 queries): BM25 kiwi k1 1.2 b 0.75 vs k1 0.9 b 0.4
- scifact-tokenizer (stress): BM25 regex vs english tokenizer (k1 1.2 b 0.75): a noisier pair (sd about 2.5x)

A loop fixes its held-back set once (n queries drawn from the pool without replacement). Every decision draws a
fresh candidate: the differences on those n queries get independent random signs (so the same queries move by
the same amounts as between the two real configs, in fresh directions: mean 0 by symmetry), plus a true gain
delta added to every query's difference (no clipping to [0, 1]: only the differences enter the rule). A decision
promotes when the mean difference >= min_gain (0.005) and the one-sided test passes at the look's alpha.

The long runs (1,000 loops of 200 decisions) use the normal approximation of the sign-flip permutation test,
z = sum(d) / sqrt(sum(d^2)); section (c) re-runs the first ten looks (94% of the alpha) with the guard's own
tests, guardrails.stats.permutation_p and paired_bootstrap_p at the resamples check_candidate uses, and a last
section compares the approximation with them decision by decision. Writes bench/results/per_query_<set>.json
(the scores, reused unless --rescore), bench/results/promotion_sim.json and promotion_sim.md.

Long runs (issue 31, point 5): a loop that looks at the rate it really looks, for 48 hours and for 7 days of
back-to-back runs with no human decision in between (look counts and records carry over), at the demo's rate (70
iterations an hour, 300 tuning queries, 18 trials a study; and the same with 100 tuning queries) and at a
KorQuAD-sized rate (6 an hour, 2,431 tuning queries, 12 trials). Each iteration's candidate is the best of its
study on the tuning queries (the champion is trial 0; the others are noise configs, true gain 0: the max is the
winner's curse); from an arrival hour on, every study also holds a new config with a true gain of 0.02. The
designs compared: today's rule (every iteration a look), one look an hour, a schedule that reads no score, and
the gate (a look only for a new config whose tuning gain over the champion is >= min_gain and, with a record,
beats the largest tuning gain, or gain in standard errors, of the earlier looks by a margin), under 6/(pi^2 k^2)
or 1/(k log^2(k+1)) spending. It reports (a) the share of noise-only loops that promote anything and (b) the
share that promote the gain, per arrival hour. The model and its assumptions: long_tables. The tuning and
held-back sums of a fresh sign pattern are drawn from their exact distributions (sum_survival), the study's best
of m noise trials by inverting 1 - (1 - G)^m, so a week at 70 iterations an hour x 2,000 loops takes a minute
or two, not hours. --long-only recomputes this section alone and keeps the others from the existing json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

from bench import RESULTS, ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from guardrails import alpha_for_look, minimum_detectable_effect, paired_bootstrap_p, permutation_p, resamples_for

METRIC = "ndcg@10"
ALPHA, MIN_GAIN, POWER, GAIN = 0.05, 0.005, 0.8, 0.02


def _bm25(name: str, tokenizer: str, k1: float, b: float) -> dict:
    return {"name": name, "lexical": {"tokenizer": tokenizer, "k1": k1, "b": b}, "fusion": {"kind": "none"}}


PAIRS = {
    "scifact": ("scifact", _bm25("bm25-english-k1.2", "english", 1.2, 0.75),
                _bm25("bm25-english-k1.5", "english", 1.5, 0.75)),
    "korquad": ("korquad-v1-dev", _bm25("bm25-kiwi-k1.2-b.75", "kiwi", 1.2, 0.75),
                _bm25("bm25-kiwi-k0.9-b.4", "kiwi", 0.9, 0.4)),
    "scifact-tokenizer": ("scifact", _bm25("bm25-english-k1.2", "english", 1.2, 0.75),
                          _bm25("bm25-regex-k1.2", "regex", 1.2, 0.75)),
}


# --- real per-query scores ----------------------------------------------------------------------------------

def per_query_scores(key: str, data_dir: Path, rescore: bool) -> dict:
    path = RESULTS / f"per_query_{key}.json"
    if path.is_file() and not rescore:
        return json.loads(path.read_text("utf-8"))
    from evalsets import load_evalset
    from experiments import evaluate
    from pipelines import Components, PipelineConfig

    folder, *configs = PAIRS[key]
    data = load_evalset(data_dir / folder)
    components = Components(ROOT / ".evolve" / "cache" / "embeddings.sqlite")
    scored = {}
    for raw in configs:
        started = time.perf_counter()
        result = evaluate(data, PipelineConfig.model_validate(raw), components)
        scored[raw["name"]] = {row["query_id"]: row[METRIC] for row in result.per_query}
        print(f"{key}: {raw['name']} {METRIC} {result.means[METRIC]:.4f} ({time.perf_counter() - started:.1f} s)",
              flush=True)
    ids = [q.query_id for q in data.queries]
    a, b = (scored[c["name"]] for c in configs)
    out = {"set": folder, "split": data.split, "metric": METRIC, "configs": configs, "query_ids": ids,
           "scores": {c["name"]: [round(scored[c["name"]][q], 6) for q in ids] for c in configs},
           "means": {c["name"]: round(float(np.mean(list(scored[c["name"]].values()))), 4) for c in configs}}
    assert len(a) == len(b) == len(ids)
    path.write_text(json.dumps(out, ensure_ascii=False) + "\n", "utf-8")
    return out


def differences(scores: dict) -> np.ndarray:
    first, second = (np.asarray(scores["scores"][c["name"]]) for c in scores["configs"])
    return second - first


# --- the loop model -------------------------------------------------------------------------------------------

def zeta(s: float, terms: int = 10_000) -> float:
    """Riemann zeta for s > 1 (partial sum + Euler-Maclaurin tail), for normalising p-series spending."""
    k = np.arange(1, terms, dtype=np.float64)
    return float(np.sum(k ** -s) + terms ** (1 - s) / (s - 1) + terms ** -s / 2 + s * terms ** (-s - 1) / 12)


def spending_alphas(name: str, looks: int) -> np.ndarray:
    """alpha_k for looks 1..looks. The two policy rules come from guardrails.stats; the others are compared with it."""
    if name in ("alpha_spending", "per_look"):
        return np.array([alpha_for_look(ALPHA, k, name) for k in range(1, looks + 1)])
    exponent = float(name.removeprefix("p-series "))
    k = np.arange(1, looks + 1, dtype=np.float64)
    return ALPHA * k ** -exponent / zeta(exponent)


def thresholds(alphas: np.ndarray) -> np.ndarray:
    z = NormalDist().inv_cdf
    return np.array([z(1 - a) for a in alphas])


def z_scores(x: np.ndarray) -> np.ndarray:
    """Normal approximation of the sign-flip permutation test, per row: under 'no difference' the sum of the
    differences has mean 0 and variance sum(x^2) over the 2^n sign patterns, so z = sum(x) / sqrt(sum(x^2)).
    (The paired bootstrap's approximation, mean / (sd / sqrt(n)), differs by using the centred sd.)"""
    total, energy = x.sum(axis=1), np.sqrt((x * x).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(energy > 0, total / energy, -np.inf)


def normal_p(diff: np.ndarray) -> float:
    """One-sided p-value of the normal approximation, for one decision (the simulation compares z directly)."""
    return 1 - NormalDist().cdf(float(np.clip(z_scores(diff[None, :])[0], -40, 40)))


def simulate(noise: np.ndarray, n: int, loops: int, gains: np.ndarray, alphas: np.ndarray, seed: int) -> np.ndarray:
    """The look (1-based) of each loop's first promotion, 0 when it never promotes. gains[t] is look t+1's true gain."""
    rng = np.random.default_rng(seed)
    held = np.stack([noise[rng.choice(len(noise), n, replace=False)] for _ in range(loops)])  # fixed per loop
    crit = thresholds(alphas)
    first = np.zeros(loops, dtype=np.int64)
    for t, gain in enumerate(gains):
        signs = rng.integers(0, 2, size=held.shape, dtype=np.int8) * 2 - 1
        x = signs * held + gain
        promoted = (x.mean(axis=1) >= MIN_GAIN) & (z_scores(x) > crit[t])
        first[(first == 0) & promoted] = t + 1
    return first


def decision_power(noise: np.ndarray, n: int, loops: int, look: int, alphas: np.ndarray, seed: int) -> float:
    """Chance that one candidate with the true gain is promoted when it is tested at this look's alpha."""
    return float(np.mean(simulate(noise, n, loops, np.array([GAIN]), alphas[look - 1:look], seed) == 1))


def mde(noise: np.ndarray, n: int, alpha: float) -> float:
    """The guard's minimum detectable effect (guardrails.stats) with the pool's sd, for n held-back queries."""
    return minimum_detectable_effect(noise, alpha, POWER)[0] * math.sqrt(len(noise) / n)


# --- validation: the approximation against the tests the guard runs ------------------------------------------

GUARD_TESTS = {"permutation": permutation_p, "paired_bootstrap": paired_bootstrap_p}


def validate(noise: np.ndarray, n: int, cases: int, resamples: int, seed: int) -> dict:
    """The rule with each guard test vs with the simulation's approximation, on the same sampled decisions:
    ``cases`` null candidates and ``cases // 2`` with gains 0.01 / 0.02 (alternating)."""
    rng = np.random.default_rng(seed)
    gains, big_enough, p = [], [], {name: [] for name in (*GUARD_TESTS, "normal")}
    for i in range(cases + cases // 2):
        gain = 0.0 if i < cases else (0.01, GAIN)[i % 2]
        diff = noise[rng.choice(len(noise), n, replace=False)] * (rng.integers(0, 2, n) * 2 - 1) + gain
        gains.append(gain)
        big_enough.append(diff.mean() >= MIN_GAIN)
        for name, test in GUARD_TESTS.items():
            p[name].append(test(diff, np.zeros(n), resamples, i))
        p["normal"].append(normal_p(diff))
    null, big_enough = np.array(gains) == 0, np.array(big_enough)
    p = {name: np.array(values) for name, values in p.items()}
    out = {"n": n, "null_cases": cases, "gain_cases": cases // 2, "resamples": resamples,
           "mean_abs_p_difference_vs_permutation": round(float(np.mean(np.abs(p["normal"] - p["permutation"]))), 5),
           "alphas": {}}
    for alpha in (0.05, alpha_for_look(ALPHA, 1), alpha_for_look(ALPHA, 5)):
        passes = {name: big_enough & (values < alpha) for name, values in p.items()}
        out["alphas"][f"{alpha:.4g}"] = {
            "agree_with_permutation": round(float(np.mean(passes["normal"] == passes["permutation"])), 4),
            **{f"null_pass_{name}": round(float(np.mean(hit[null])), 4) for name, hit in passes.items()}}
    return out


def aa_with_guard_tests(noise: np.ndarray, n: int, loops: int, looks: int, seed: int) -> dict:
    """A/A loops through the first looks with the guard's own tests (paired bootstrap and sign-flip permutation,
    resamples raised for the look's alpha as check_candidate does), old and new rule on the same decisions, next
    to the normal approximation the long simulation uses."""
    rng = np.random.default_rng(seed)
    rules = ("per_look", "alpha_spending")
    alphas = {rule: spending_alphas(rule, looks) for rule in rules}
    hit = {(rule, test): np.zeros(loops, dtype=bool) for rule in rules for test in (*GUARD_TESTS, "normal")}
    for loop in range(loops):
        held = noise[rng.choice(len(noise), n, replace=False)]
        for t in range(looks):
            diff = held * (rng.integers(0, 2, n) * 2 - 1)
            if diff.mean() < MIN_GAIN:  # fails min_gain whatever the test says
                continue
            resamples = resamples_for(alphas["alpha_spending"][t], 10_000)
            p = {name: test(diff, np.zeros(n), resamples, loop * looks + t) for name, test in GUARD_TESTS.items()}
            p["normal"] = normal_p(diff)
            for rule, test in hit:
                hit[rule, test][loop] |= p[test] < alphas[rule][t]
    return {"n": n, "loops": loops, "looks": looks,
            **{f"{rule} {test}": round(float(v.mean()), 4) for (rule, test), v in hit.items()}}


def power_with_guard_tests(noise: np.ndarray, n: int, cases: int, look: int, seed: int) -> dict:
    """Single-decision power for the true gain at this look (alpha spending) with the guard's own tests."""
    rng = np.random.default_rng(seed)
    alpha = alpha_for_look(ALPHA, look)
    resamples = resamples_for(alpha, 10_000)
    passed = {"paired_bootstrap": 0, "permutation": 0, "normal": 0}
    for case in range(cases):
        diff = noise[rng.choice(len(noise), n, replace=False)] * (rng.integers(0, 2, n) * 2 - 1) + GAIN
        if diff.mean() < MIN_GAIN:
            continue
        passed["paired_bootstrap"] += paired_bootstrap_p(diff, np.zeros(n), resamples, case) < alpha
        passed["permutation"] += permutation_p(diff, np.zeros(n), resamples, case) < alpha
        passed["normal"] += normal_p(diff) < alpha
    return {"n": n, "look": look, "cases": cases, **{k: round(v / cases, 4) for k, v in passed.items()}}


# --- long runs: a loop that looks at the rate it really looks (issue 31, point 5) -------------------------------

HELD_BACK = 300
HOURS = 168                        # 7 days of back-to-back runs, no human decision in between
STRETCHES = {"48 h": 48, "7 d": 168}
ARRIVALS = (1, 12, 24, 47, 95, 167)  # hour from which the +0.02 gain is reachable (95, 167: 7 days only)
FAR = "scifact-tokenizer"          # the "far" noise configs' per-query differences (sd 0.166)
SCENARIOS = {
    # iterations an hour, tuning queries, trials a study (trial 0 the champion), the pool the close noise is from
    "demo": {"pool": "scifact", "rate": 70, "tuning": 300, "trials": 18,
             "why": "claude-docs-qa/SciFact-sized: ~70 looks an hour on 2 cores (issue 31: 12 iterations in the "
                    "10-minute demo), 224 trials / 12 iterations ~ 18 a study; 300 tuning queries"},
    "demo, 100 tuning queries": {"pool": "scifact", "rate": 70, "tuning": 100, "trials": 18,
                                 "why": "sensitivity: the demo's rate with a third of the tuning evidence (the demo "
                                        "set itself has 100 questions, cross-fitted over 5 folds)"},
    "korquad": {"pool": "korquad", "rate": 6, "tuning": 2431, "trials": 12,
                "why": "KorQuAD-sized: agent-korquad-heuristic.json 4 complete iterations in 1,562 s (9.2/h, 48 "
                       "trials, 12 a study), agent-korquad-llm.json 3 in 1,709 s (6.3/h), study-korquad.json 72 s "
                       "a trial warm (4.2/h at 12 trials): 6 an hour; its 2,431 tuning queries"},
}
NOISE_MODELS = {"close": 0.0, "mixed": 0.25}  # share of a study's noise trials that are "far" configs
LONG_SEED = 31_000


def log_spending_norm(terms: int = 1_000_000) -> float:
    """An upper bound on sum_k 1 / (k log(k+1)^2): the partial sum to ``terms`` plus 1 / log(terms), which bounds
    the tail (1/(k log(k+1)^2) <= 1/(k log(k)^2) <= the integral of 1/(x log(x)^2) from k-1 to k). Dividing by it
    keeps the sequence's sum <= 1, so the family-wise bound holds exactly."""
    k = np.arange(1, terms + 1, dtype=np.float64)
    return float(np.sum(1.0 / (k * np.log(k + 1) ** 2)) + 1.0 / math.log(terms))


SPENDINGS = {
    "6/(pi^2 k^2)": lambda k: 6.0 / (math.pi ** 2 * k ** 2),  # the policy's alpha_spending
    "1/(k log^2(k+1))": None,  # filled in by long_alphas (needs the normaliser)
    "p<0.05 every look": lambda k: np.ones_like(k),  # per_look: no family-wise bound
}


def long_alphas(spending: str, looks: int) -> np.ndarray:
    k = np.arange(1, looks + 1, dtype=np.float64)
    if spending == "1/(k log^2(k+1))":
        return ALPHA / (k * np.log(k + 1) ** 2) / log_spending_norm()
    return ALPHA * SPENDINGS[spending](k)


def critical_z(alphas: np.ndarray) -> np.ndarray:
    """z a look must beat at each alpha_k; inf where alpha_k <= 1 / (resamples + 1), the smallest p-value the guard's
    permutation test can report with the resamples check_candidate gives it (resamples_for, at most 1e6)."""
    crit = thresholds(alphas)
    floor = np.array([1.0 / (resamples_for(a, 10_000) + 1) for a in alphas])
    crit[alphas <= floor] = np.inf
    return crit


def sum_survival(magnitudes: np.ndarray, size: int = 8192) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact distribution of sum_i s_i a_i over independent random signs s_i (the sign-flip model of a fresh
    candidate on a fixed query set), on a grid of ``size`` points: magnitudes are rounded to the grid step
    (2 sum|a| / size, a relative change in variance below 1e-3), the characteristic function prod cos(w a_i) is
    inverted by FFT. Returns the grid, G[j] = P(sum >= grid[j]) and sum a_i^2 on the grid. Exact tails matter:
    a record over thousands of iterations sits at the 1e-5..1e-7 quantile, where the sum of a few dozen
    non-zero differences is bounded (sum |a_i|) and lighter-tailed than a normal."""
    mags = np.abs(np.asarray(magnitudes, dtype=np.float64))
    step = 2 * mags.sum() / (size - 2)
    ks = np.rint(mags / step).astype(np.int64)
    values, counts = np.unique(ks[ks > 0], return_counts=True)
    cosine = np.cos(2 * np.pi * np.arange(size) / size)
    table = cosine[(np.arange(size // 2 + 1)[None, :] * values[:, None]) % size]
    log_abs = (counts[:, None] * np.log(np.abs(table) + 1e-300)).sum(axis=0)
    negative = (counts[:, None] * (table < 0)).sum(axis=0) % 2 == 1
    pmf = np.clip(np.fft.irfft(np.exp(log_abs) * np.where(negative, -1.0, 1.0), n=size), 0, None)
    reach = int((values * counts).sum())
    pmf = np.roll(pmf, reach)[:2 * reach + 1]
    pmf /= pmf.sum()
    return (np.arange(2 * reach + 1) - reach) * step, np.cumsum(pmf[::-1])[::-1], float(
        step * step * (counts * values * values).sum())


def draw_sum(dist: tuple[np.ndarray, np.ndarray, float], v: np.ndarray) -> np.ndarray:
    """Inverse of G: the grid value x_j with j = max{j: G[j] >= v}, so P(result >= x_j) = G[j] for v uniform."""
    grid, survival, _ = dist
    return grid[np.clip(np.searchsorted(-survival, -v, side="right") - 1, 0, len(grid) - 1)]


def draw_max(dist: tuple, m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The largest of m independent draws (m per entry; -inf where m is 0): v = 1 - W^(1/m) inverts
    P(max >= x) = 1 - (1 - G(x))^m."""
    with np.errstate(divide="ignore"):
        v = -np.expm1(np.log(rng.random(len(m))) / np.maximum(m, 1))
    return np.where(m > 0, draw_sum(dist, v), -np.inf)


def standard_errors(total: np.ndarray, energy: np.ndarray, count: int) -> np.ndarray:
    """The tuning gain in standard errors, as guardrails.gate.TuningEvidence scores it: mean / (sd / sqrt(n)) with
    the centred sd, from the sum and the sum of squares of the n per-query differences (0 when nothing differs)."""
    mean = total / count
    var = np.maximum(energy - total * mean, 0.0) / (count - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, mean / np.sqrt(var / count), 0.0)


def long_tables(noise: dict[str, np.ndarray], scenario: dict, p_far: float, loops: int, seed: int) -> dict:
    """Per loop (one deployment between two human decisions) and iteration: the tuning and held-back statistics
    of the study's best noise candidate and of the config with the true gain, arrays (iterations, loops).

    Assumptions (also in the results file):
    - Each loop fixes its held-back queries (300) and its tuning queries, disjoint from them: drawn without
      replacement from the rest of the pool where it is large enough (KorQuAD, 3,473 queries); SciFact's pool
      has 300 queries, all held back, so its tuning queries are drawn with replacement from the same pool
      (independent queries from the same distribution; every candidate's tuning and held-back signs are
      independent, as on disjoint queries).
    - A study is trial 0, the champion (gain 0 on the same tuning queries: issue 31 point 3), and trials - 1
      noise configs with true gain 0, each a fresh sign pattern of real per-query differences on the loop's
      queries (independent across trials: real sibling configs are correlated, which makes noise records climb
      more slowly than here). A share p_far of them are "far" configs, whose differences are SciFact's tokenizer
      pair (sd 0.166; on KorQuAD resampled from that pool) instead of the set's close pair (sd 0.064).
    - The study's candidate is its best trial on the tuning mean (the winner's curse).
    - From the arrival iteration on, every study also holds one new config with the true gain (close noise +
      GAIN on every query, tuning and held-back); it is the candidate when it beats the study's best noise trial
      on the tuning mean. Every candidate is a config not looked at before (issue 31 point 2), so gate rule (i)
      never binds here.
    - The study's best noise trial is drawn as the largest of m draws from the exact distribution of the sum
      (sum_survival, draw_max); the held-back sum of the candidate is a fresh draw."""
    close, far = noise[scenario["pool"]], noise[FAR]
    tuning, n, trials, iters = scenario["tuning"], HELD_BACK, scenario["trials"], scenario["rate"] * HOURS
    rng = np.random.default_rng(seed)
    keys = ("nt_mean", "nt_z", "nh_mean", "nh_z", "gt_mean", "gt_z", "gh_mean", "gh_z")
    out = {key: np.empty((iters, loops), dtype=np.float32) for key in keys}
    for loop in range(loops):
        if len(close) >= n + tuning:
            order = rng.permutation(len(close))
            held, tune = order[:n], order[n:n + tuning]
        else:
            held, tune = rng.permutation(len(close))[:n], rng.integers(0, len(close), tuning)
        if scenario["pool"] == PAIRS[FAR][0]:  # SciFact: both pairs were scored on the same queries
            far_held, far_tune = held, tune
        else:
            far_held, far_tune = rng.integers(0, len(far), n), rng.integers(0, len(far), tuning)
        ct, ch = sum_survival(close[tune]), sum_survival(close[held])
        ft, fh = (sum_survival(far[far_tune]), sum_survival(far[far_held])) if p_far > 0 else (ct, ch)
        n_far = rng.binomial(trials - 1, p_far, iters)
        best_close, best_far = draw_max(ct, trials - 1 - n_far, rng), draw_max(ft, n_far, rng)
        is_far = best_far > best_close
        total = np.maximum(np.maximum(best_close, best_far), 0.0)  # trial 0, the champion, is 0
        champion = total <= 0  # the study's best is the champion itself: no gain anywhere
        out["nt_mean"][:, loop] = total / tuning
        out["nt_z"][:, loop] = np.where(champion, 0.0, standard_errors(total, np.where(is_far, ft[2], ct[2]), tuning))
        held_far, held_close = draw_sum(fh, rng.random(iters)), draw_sum(ch, rng.random(iters))
        held_sum = np.where(is_far, held_far, held_close)  # fresh signs: independent of the tuning draw
        out["nh_mean"][:, loop] = np.where(champion, 0.0, held_sum / n)
        out["nh_z"][:, loop] = np.where(champion, 0.0, held_sum / np.sqrt(np.where(is_far, fh[2], ch[2])))
        for side, dist, count in (("t", ct, tuning), ("h", ch, n)):
            x = draw_sum(dist, rng.random(iters))
            total, energy = x + count * GAIN, dist[2] + 2 * GAIN * x + count * GAIN ** 2
            out[f"g{side}_mean"][:, loop] = total / count
            out[f"g{side}_z"][:, loop] = standard_errors(total, energy, count) if side == "t" else \
                total / np.sqrt(energy)  # tuning: the gate's score; held-back: the test's z
    return out


# A design: (schedule, record unit, margin, spending). schedule "every": every iteration is a look (today);
# "hourly": one look an hour at the hour's best candidate on tuning queries if its tuning gain >= min_gain;
# "schedule": the first candidate after `margin` minutes without a look is looked at, whatever its scores (the
# gate's rule for cross-fitted decisions, guardrails.gate, where tuning evidence may not choose looks);
# "gate": a look only for a new config whose tuning gain over the champion is >= min_gain and beats the
# record (the largest tuning gain, or gain in standard errors, of the earlier looks) by the margin; None: no record.
LONG_DESIGNS = {
    "old: every iteration, p<0.05": ("every", None, 0.0, "p<0.05 every look"),
    "old: every iteration, 6/(pi^2 k^2)": ("every", None, 0.0, "6/(pi^2 k^2)"),
    "old: every iteration, 1/(k log^2(k+1))": ("every", None, 0.0, "1/(k log^2(k+1))"),
    "hourly: best of the hour, 6/(pi^2 k^2)": ("hourly", None, 0.0, "6/(pi^2 k^2)"),
    "schedule 60 min, no score, 6/(pi^2 k^2)": ("schedule", None, 60.0, "6/(pi^2 k^2)"),
    "schedule 60 min, no score, 1/(k log^2(k+1))": ("schedule", None, 60.0, "1/(k log^2(k+1))"),
    "schedule 30 min, no score, 1/(k log^2(k+1))": ("schedule", None, 30.0, "1/(k log^2(k+1))"),
    "gate, no record": ("gate", None, 0.0, "6/(pi^2 k^2)"),
    "gate, absolute record, m 0": ("gate", "abs", 0.0, "6/(pi^2 k^2)"),
    "gate, absolute record, m 0.002": ("gate", "abs", 0.002, "6/(pi^2 k^2)"),
    "gate, absolute record, m 0.005": ("gate", "abs", 0.005, "6/(pi^2 k^2)"),
    "gate, absolute record, m 0.01": ("gate", "abs", 0.01, "6/(pi^2 k^2)"),
    "gate, standardized record, m 0": ("gate", "z", 0.0, "6/(pi^2 k^2)"),
    "gate, standardized record, m 0.25": ("gate", "z", 0.25, "6/(pi^2 k^2)"),
    "gate, standardized record, m 0.5": ("gate", "z", 0.5, "6/(pi^2 k^2)"),
    "gate, standardized record, m 1": ("gate", "z", 1.0, "6/(pi^2 k^2)"),
    "gate, standardized record, m 2": ("gate", "z", 2.0, "6/(pi^2 k^2)"),
    "gate, standardized record, m 0.5, 1/(k log^2(k+1))": ("gate", "z", 0.5, "1/(k log^2(k+1))"),
    "gate, standardized record, m 1, 1/(k log^2(k+1))": ("gate", "z", 1.0, "1/(k log^2(k+1))"),
}


def run_design(tab: dict, design: tuple, starts: np.ndarray, rate: int) -> dict:
    """First promoting iteration of a noise candidate and of a gain candidate (-1: none), arrays (arrivals, loops),
    and the looks spent by each stretch's end. starts[a]: first iteration with the gain reachable (iters: never)."""
    schedule, record, margin, spending = design
    iters, loops = tab["nt_mean"].shape
    crit = critical_z(long_alphas(spending, iters))
    first_noise = np.full((len(starts), loops), -1)
    first_good = np.full((len(starts), loops), -1)
    looks_by = {}

    def candidate(start):  # each iteration's candidate: the gain config where reachable and best on tuning
        good = (np.arange(iters) >= start)[:, None] & (tab["gt_mean"] > tab["nt_mean"])
        return good, {k: np.where(good, tab[f"g{k}"], tab[f"n{k}"]) for k in ("t_mean", "t_z", "h_mean", "h_z")}

    def mark(a, passed, good, index):  # passed, good: (events, loops); index: iteration of each event row
        for target, kind in ((first_noise, ~good), (first_good, good)):
            hit = passed & kind
            any_hit = hit.any(axis=0)
            target[a] = np.where(any_hit, index[np.argmax(hit, axis=0)], -1)

    if schedule in ("every", "hourly", "schedule"):
        for a, start in enumerate(starts):
            good, c = candidate(start)
            index = np.arange(iters)
            if schedule in ("every", "schedule"):
                every = 1 if schedule == "every" else math.ceil(margin / 60 * rate)  # iterations between looks
                looked = np.broadcast_to((index % every == 0)[:, None], good.shape)
                look_no = np.broadcast_to(np.cumsum(index % every == 0)[:, None], good.shape)
            else:  # the hour's best candidate on tuning queries, looked at the end of the hour
                hours = iters // rate
                pick = np.argmax(c["t_mean"].reshape(hours, rate, loops), axis=1)
                def take(x: np.ndarray) -> np.ndarray:
                    return np.take_along_axis(x.reshape(hours, rate, loops), pick[:, None, :], axis=1)[:, 0]

                good, c = take(good), {k: take(v) for k, v in c.items()}
                looked = c["t_mean"] >= MIN_GAIN
                look_no = np.cumsum(looked, axis=0)
                index = np.arange(hours) * rate + rate - 1
            passed = looked & (c["h_mean"] >= MIN_GAIN) & (c["h_z"] > crit[np.maximum(look_no, 1) - 1])
            mark(a, passed, good, index)
            if a == 0:  # looks spent by each stretch's end in noise-only loops
                looks_by = {name: float(np.mean(look_no[np.searchsorted(index, hours * rate - 1)]))
                            for name, hours in STRETCHES.items()}
        return {"first_noise": first_noise, "first_good": first_good, "looks": looks_by}

    stat_key = {"abs": "t_mean", "z": "t_z", None: None}[record]
    shape = (len(starts), loops)
    best = np.full(shape, -np.inf)
    looks = np.zeros(shape, dtype=np.int64)
    ends = {hours * rate - 1: name for name, hours in STRETCHES.items()}
    for i in range(iters):
        good = (starts[:, None] <= i) & (tab["gt_mean"][i] > tab["nt_mean"][i])
        t_mean = np.where(good, tab["gt_mean"][i], tab["nt_mean"][i])
        look = t_mean >= MIN_GAIN
        if stat_key is not None:
            stat = np.where(good, tab[f"g{stat_key}"][i], tab[f"n{stat_key}"][i])
            look &= stat > best + margin
        if look.any():
            looks += look
            if stat_key is not None:
                best = np.where(look, stat, best)
            h_mean = np.where(good, tab["gh_mean"][i], tab["nh_mean"][i])
            h_z = np.where(good, tab["gh_z"][i], tab["nh_z"][i])
            passed = look & (h_mean >= MIN_GAIN) & (h_z > crit[np.maximum(looks, 1) - 1])
            first_noise[(first_noise < 0) & passed & ~good] = i
            first_good[(first_good < 0) & passed & good] = i
        if i in ends:
            looks_by[ends[i]] = float(looks[0].mean())
    return {"first_noise": first_noise, "first_good": first_good, "looks": looks_by}


def long_runs(noise: dict[str, np.ndarray], loops: int, block: int = 500) -> dict:
    """(a) share of noise-only loops promoting anything by the end of each stretch, (b) share of loops promoting
    the gain, per arrival hour, per design, scenario and noise model; looks spent in noise-only loops."""
    out: dict = {}
    for si, (name, scenario) in enumerate(SCENARIOS.items()):
        rate = scenario["rate"]
        starts = np.array([rate * HOURS] + [rate * h for h in ARRIVALS])
        for mi, (model, p_far) in enumerate(NOISE_MODELS.items()):
            started = time.perf_counter()
            parts: dict = {d: [] for d in LONG_DESIGNS}
            for b0 in range(0, loops, block):
                tab = long_tables(noise, scenario, p_far, min(block, loops - b0), LONG_SEED + 100 * si + 10 * mi + b0)
                for d, design in LONG_DESIGNS.items():
                    parts[d].append(run_design(tab, design, starts, rate))
            entry: dict = {}
            for d, runs in parts.items():
                fn = np.concatenate([r["first_noise"] for r in runs], axis=1)
                fg = np.concatenate([r["first_good"] for r in runs], axis=1)
                row = {"looks_noise_only": {s: round(float(np.mean([r["looks"][s] for r in runs])), 1)
                                            for s in STRETCHES}}
                for stretch, hours in STRETCHES.items():
                    end = hours * rate
                    row[stretch] = {
                        "noise_promoting": round(float(np.mean((fn[0] >= 0) & (fn[0] < end))), 4),
                        "gain_promoted": {str(h): round(float(np.mean((fg[a + 1] >= 0) & (fg[a + 1] < end))), 4)
                                          for a, h in enumerate(ARRIVALS) if h < hours}}
                entry[d] = row
            out[f"{name} / {model}"] = {"scenario": name, "noise_model": model, "p_far": p_far,
                                         "seconds": round(time.perf_counter() - started, 1), "designs": entry}
            print(f"long runs {name} / {model}: {time.perf_counter() - started:.0f} s", flush=True)
    return out


RECOMMENDED = "gate, standardized record, m 0.5"


def long_run_report(noise: dict[str, np.ndarray], loops: int) -> dict:
    started = time.perf_counter()
    results = long_runs(noise, loops)
    summary = {}
    for design in LONG_DESIGNS:
        rows = [e["designs"][design] for e in results.values()]
        worst_a = max(r[s]["noise_promoting"] for r in rows for s in STRETCHES)
        worst_b = min(v for r in rows for s in STRETCHES for v in r[s]["gain_promoted"].values())
        summary[design] = {"worst_noise_promoting": worst_a, "worst_gain_promoted": worst_b,
                           "meets_both": worst_a <= ALPHA and worst_b >= 0.8}
    return {"loops": loops, "held_back": HELD_BACK, "hours": HOURS, "stretches": STRETCHES, "arrivals": ARRIVALS,
            "min_gain": MIN_GAIN, "gain": GAIN, "far_pair": FAR,
            "scenarios": {k: {**v, "iterations_48h": v["rate"] * 48, "iterations_7d": v["rate"] * HOURS}
                          for k, v in SCENARIOS.items()},
            "noise_models": NOISE_MODELS,
            "designs": {k: dict(zip(("schedule", "record", "margin", "spending"), v)) for k, v in LONG_DESIGNS.items()},
            "log_spending_normaliser": round(log_spending_norm(), 6), "results": results, "summary": summary,
            "recommended": RECOMMENDED, "seconds": round(time.perf_counter() - started, 1)}

# --- the report -------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict:
    rules = ["per_look", "alpha_spending", "p-series 1.5", "p-series 1.1"]
    result: dict = {"alpha": ALPHA, "min_gain": MIN_GAIN, "power": POWER, "gain": GAIN, "loops": args.loops,
                    "decisions": args.decisions, "test": "normal approximation of the sign-flip permutation test",
                    "spending": {r: [float(f"{a:.4g}") for a in spending_alphas(r, 50)[[0, 1, 9, 49]]] for r in rules},
                    "sets": {}}
    for si, key in enumerate(PAIRS):
        scores = per_query_scores(key, args.data, args.rescore)
        diff = differences(scores)
        noise = diff - diff.mean()
        entry: dict = {"set": scores["set"], "configs": [c["name"] for c in scores["configs"]],
                       "means": scores["means"], "pool_queries": len(noise),
                       "mean_difference_removed": round(float(diff.mean()), 4),
                       "sd_of_differences": round(float(noise.std(ddof=1)), 4),
                       "share_of_queries_unchanged": round(float(np.mean(diff == 0)), 3)}
        seed = 1000 * si
        entry["aa_loops_promoting"], entry["aa_by_look"] = {}, {}
        entry["power"] = {}
        for rule in rules:
            alphas = spending_alphas(rule, max(args.decisions, 50))
            aa = {}
            for n in (300, 100, 34):
                if n > len(noise):
                    continue
                first = simulate(noise, n, args.loops, np.zeros(args.decisions), alphas, seed + n)
                aa[str(n)] = round(float(np.mean(first > 0)), 4)
                if n == 300:
                    entry["aa_by_look"][rule] = {str(k): round(float(np.mean((first > 0) & (first <= k))), 4)
                                                 for k in (1, 10, 50, args.decisions)}
            entry["aa_loops_promoting"][rule] = aa
            gain_first = np.zeros(args.decisions)
            gain_first[0] = GAIN
            first = simulate(noise, 300, args.loops, gain_first, alphas, seed + 1)
            every = simulate(noise, 300, args.loops, np.full(args.decisions, GAIN), alphas, seed + 2)
            entry["power"][rule] = {
                "gain_at_look_1_promoted_at_look_1": round(float(np.mean(first == 1)), 4),
                "gain_at_look_1_loops_promoting": round(float(np.mean(first > 0)), 4),
                "gain_at_every_look_loops_promoting": round(float(np.mean(every > 0)), 4),
                "single_decision": {str(k): round(decision_power(noise, 300, 4 * args.loops, k, alphas,
                                                                 seed + 3 + k), 4)
                                    for k in (1, 10, 50)}}
        entry["mde"] = {str(n): {rule: {str(k): round(mde(noise, n, spending_alphas(rule, k)[-1]), 4)
                                        for k in (1, 10, 50)} for rule in rules} for n in (300, 100, 34)}
        entry["validation"] = [validate(noise, n, args.validate_cases, 10_000, seed + 7) for n in (300, 100, 34)]
        entry["guard_tests_aa"] = [aa_with_guard_tests(noise, n, args.guard_loops, 10, seed + 11)
                                   for n in (300, 100, 34)]
        entry["guard_tests_power"] = [power_with_guard_tests(noise, 300, args.guard_loops // 2, look, seed + 13 + look)
                                      for look in (1, 10)]
        result["sets"][key] = entry
        print(json.dumps({key: {k: entry[k] for k in ("sd_of_differences", "aa_loops_promoting")}}), flush=True)
    result["long_runs"] = long_run_report(centred_noise(args), args.long_loops)
    return result


def centred_noise(args: argparse.Namespace) -> dict[str, np.ndarray]:
    noise = {}
    for key in PAIRS:
        diff = differences(per_query_scores(key, args.data, False))
        noise[key] = diff - diff.mean()
    return noise


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def pct(value: float) -> str:
    return f"{value:.1%}"


def markdown(result: dict) -> str:
    sets, loops, decisions = result["sets"], result["loops"], result["decisions"]
    lines = ["# Promotion simulation: how often a loop promotes noise, and a real gain", "",
             "Written by `bench/guardrails/promotion_sim.py` (method in its docstring). Family alpha "
             f"{result['alpha']}; a decision promotes when the mean gain >= {result['min_gain']} and the one-sided "
             f"test passes at the look's alpha. Sections (a), (b) and the MDE use the {result['test']}; section (c) "
             "runs the guard's own tests. `alpha_spending` is the policy's rule (gamma_k = 6/(pi^2 k^2)), `per_look` "
             "the old one (p < 0.05 at every look); the p-series rows (gamma_k = k^-s / zeta(s)) are flatter "
             "sequences, for the choice of gamma.", ""]
    lines += table(["rule", "alpha at looks 1, 2, 10, 50"],
                   [[rule, ", ".join(f"{a:.3g}" for a in alphas)] for rule, alphas in result["spending"].items()])
    lines += ["## Null noise: two equivalent configs, real per-query differences", ""]
    lines += table(["set", "configs (first -> second)", "means", "queries", "mean diff removed", "sd of differences",
                    "queries unchanged"],
                   [[key, " -> ".join(e["configs"]), " / ".join(str(m) for m in e["means"].values()), e["pool_queries"],
                     e["mean_difference_removed"], e["sd_of_differences"], pct(e["share_of_queries_unchanged"])]
                    for key, e in sets.items()])
    lines += [f"## (a) A/A: {loops} loops of {decisions} decisions, share of loops promoting at least once", ""]
    lines += table(["set", "rule", "n=300", "n=100", "n=34", "n=300 by look 1 / 10 / 50"],
                   [[key, rule, *(pct(aa[n]) for n in ("300", "100", "34")),
                     " / ".join(pct(e["aa_by_look"][rule][k]) for k in ("1", "10", "50"))]
                    for key, e in sets.items() for rule, aa in e["aa_loops_promoting"].items()])
    lines += [f"## (b) Power: a true gain of {result['gain']} on 300 held-back queries", ""]
    lines += table(["set", "rule", "gain at look 1: promoted at look 1", "gain at look 1, 199 null looks after: loops "
                    "promoting", f"gain at all {decisions} looks: loops promoting", "one decision at look 1 / 10 / 50"],
                   [[key, rule, pct(pw["gain_at_look_1_promoted_at_look_1"]), pct(pw["gain_at_look_1_loops_promoting"]),
                     pct(pw["gain_at_every_look_loops_promoting"]),
                     " / ".join(pct(pw["single_decision"][k]) for k in ("1", "10", "50"))]
                    for key, e in sets.items() for rule, pw in e["power"].items()])
    lines += [f"## Minimum detectable effect (power {result['power']}, the set's sd of differences), "
              "looks 1 / 10 / 50", ""]
    lines += table(["set", "rule", "n=300", "n=100", "n=34"],
                   [[key, rule, *(" / ".join(f"{e['mde'][n][rule][k]:.4f}" for k in ("1", "10", "50"))
                                  for n in ("300", "100", "34"))]
                    for key, e in sets.items() for rule in e["mde"]["300"]])
    first = next(iter(sets.values()))
    lines += ["## (c) The guard's own tests: A/A loops through look 10, and single-decision power", "",
              f"Looks 1-10 spend 94% of alpha under alpha_spending. Permutation = guardrails.stats.permutation_p "
              "(sign flips), bootstrap = paired_bootstrap_p, both with the resamples check_candidate uses at each "
              "look; approximation = the one in (a) and (b), on the same decisions. "
              f"{first['guard_tests_aa'][0]['loops']} "
              "loops a row: one standard error is about 1.1 points at 5%.", ""]
    lines += table(["set", "n", "rule", "permutation", "paired bootstrap", "approximation"],
                   [[key, v["n"], rule,
                     *(pct(v[f"{rule} {test}"]) for test in ("permutation", "paired_bootstrap", "normal"))]
                    for key, e in sets.items() for v in e["guard_tests_aa"] for rule in ("per_look", "alpha_spending")])
    lines += [f"Power for a true gain of {result['gain']}, n=300, alpha_spending, one decision:", ""]
    lines += table(["set", "look", "cases", "permutation", "paired bootstrap", "approximation"],
                   [[key, v["look"], v["cases"], pct(v["permutation"]), pct(v["paired_bootstrap"]), pct(v["normal"])]
                    for key, e in sets.items() for v in e["guard_tests_power"]])
    lines += ["## Validation of the approximation on single decisions", "",
              "Null candidates, then half as many with gains 0.01 / 0.02; 10,000 resamples. Per alpha: share of "
              "decisions (min_gain included) where the approximation agrees with the permutation test; null pass "
              "rate with the permutation test / the bootstrap / the approximation.", ""]
    alphas = list(first["validation"][0]["alphas"])
    lines += table(["set", "n", "null + gain cases", "mean abs p difference", *(f"alpha {a}" for a in alphas)],
                   [[key, v["n"], f"{v['null_cases']} + {v['gain_cases']}", v["mean_abs_p_difference_vs_permutation"],
                     *(f"agree {pct(d['agree_with_permutation'])}; null {pct(d['null_pass_permutation'])} / "
                       f"{pct(d['null_pass_paired_bootstrap'])} / {pct(d['null_pass_normal'])}"
                       for d in v["alphas"].values())]
                    for key, e in sets.items() for v in e["validation"]])
    if "long_runs" in result:
        lines += long_markdown(result["long_runs"])
    lines += [f"Whole script: {result.get('wall_seconds', '?')} s on this machine (2 shared cores), "
              f"{result['long_runs']['seconds']} s of it the long runs." if "long_runs" in result else ""]
    return "\n".join(lines)


def long_markdown(long: dict) -> list[str]:
    stretches, arrivals, loops = long["stretches"], long["arrivals"], long["loops"]
    hours_48 = [h for h in arrivals if h < stretches["48 h"]]
    lines = ["## Long runs: a loop that looks at the rate it really looks (issue 31, point 5)", "",
             f"{loops} loops per scenario and noise model; a loop is one stretch between two human decisions, "
             f"{long['hours']} hours of back-to-back runs (looks, records and looked-at configs carry over), read at "
             "48 hours and at 7 days. Every iteration's study is the champion (trial 0, gain 0 on the same tuning "
             "queries) and trials - 1 noise configs (true gain 0, a fresh sign pattern of real per-query differences "
             "each); its candidate is the trial best on the tuning mean (winner's curse). From the arrival hour on, "
             "every study also has one new config with a true gain of "
             f"{long['gain']} (close noise + {long['gain']} on every query), the candidate when it is best on "
             f"tuning. Held-back: {long['held_back']} queries fixed per loop, disjoint from the tuning queries "
             "(SciFact's pool has 300 queries: all held back, tuning queries resampled from it). A look promotes when "
             f"the held-back mean gain >= {long['min_gain']} and z = sum(d) / sqrt(sum(d^2)) beats z(1 - alpha_k), "
             "with alpha_k at most what the guard's permutation test can show (alpha_k > 1 / (resamples + 1), "
             "resamples_for: 1e6 at most). Noise models: close = every noise trial is the set's own BM25 pair "
             f"(sd 0.064); mixed = a quarter of them are far configs (SciFact's tokenizer pair, sd 0.166, true gain "
             "0: a stress, real far configs are mostly worse than the champion). Method and assumptions: the "
             "docstring of `long_tables`.", ""]
    lines += table(["scenario", "iterations an hour", "iterations in 48 h / 7 d", "tuning queries", "trials a study",
                    "close noise", "derived from"],
                   [[k, v["rate"], f"{v['iterations_48h']} / {v['iterations_7d']}", v["tuning"], v["trials"], v["pool"],
                     v["why"]] for k, v in long["scenarios"].items()])
    lines += ["Designs: `every` = today's rule (every iteration with a complete trial is a look); `hourly` = one look "
              "an hour at the hour's best candidate on tuning queries when its tuning gain >= min_gain; `schedule` = "
              "the first candidate after 60 (30) minutes without a look, whatever its scores (the rule "
              "guardrails.gate applies to cross-fitted decisions, where tuning evidence may not choose looks); "
              "`gate` = a look only for a config not looked at since the last human decision (every simulated "
              "candidate is new) whose tuning gain over the champion is >= min_gain and, with a record, beats the "
              "record of the earlier looks (largest tuning gain, or largest tuning gain in standard errors, "
              "mean(d) / (sd(d) / sqrt(n)) on the tuning queries, as guardrails.gate scores it) by the margin m. "
              "Spending: 6/(pi^2 k^2) (the policy's), 1/(k log^2(k+1)) normalised by "
              f"{long['log_spending_normaliser']} (an upper bound of its sum), p<0.05 every look (no family bound). "
              "Both tables: (a) = noise-only loops promoting anything by the stretch's end; (b) = loops promoting "
              "the gain by the stretch's end when it becomes reachable at hour h; looks = mean looks spent by "
              f"noise-only loops. One standard error: about {math.sqrt(0.05 * 0.95 / loops):.1%} at 5%, "
              f"{math.sqrt(0.8 * 0.2 / loops):.1%} at 80%.", ""]
    for key, entry in long["results"].items():
        lines += [f"### {key} ({entry['seconds']} s)", ""]
        header = ["design", "looks 48 h / 7 d", "(a) 48 h", "(b) 48 h, h = " + " / ".join(map(str, hours_48)),
                  "(a) 7 d", "(b) 7 d, h = " + " / ".join(map(str, arrivals))]
        lines += table(header, [[d, " / ".join(f"{r['looks_noise_only'][s]:g}" for s in stretches),
                                 pct(r["48 h"]["noise_promoting"]),
                                 " / ".join(pct(v) for v in r["48 h"]["gain_promoted"].values()),
                                 pct(r["7 d"]["noise_promoting"]),
                                 " / ".join(pct(v) for v in r["7 d"]["gain_promoted"].values())]
                                for d, r in entry["designs"].items()])
    lines += ["### Which design meets both targets everywhere", "",
              "Worst (a) and worst (b) over every scenario, noise model, stretch and arrival hour above; targets "
              "(a) <= 5%, (b) >= 80%.", ""]
    lines += table(["design", "worst (a)", "worst (b)", "meets both"],
                   [[d, pct(v["worst_noise_promoting"]), pct(v["worst_gain_promoted"]),
                     "yes" if v["meets_both"] else "no"] for d, v in long["summary"].items()])
    best = long["recommended"]
    lines += [f"### Recommended: {best}", ""]
    lines += table(["scenario / noise", "looks 48 h / 7 d", "(a) 48 h",
                    "(b) 48 h, h = " + " / ".join(map(str, hours_48)), "(a) 7 d",
                    "(b) 7 d, h = " + " / ".join(map(str, arrivals))],
                   [[key, " / ".join(f"{e['designs'][best]['looks_noise_only'][s]:g}" for s in stretches),
                     pct(e["designs"][best]["48 h"]["noise_promoting"]),
                     " / ".join(pct(v) for v in e["designs"][best]["48 h"]["gain_promoted"].values()),
                     pct(e["designs"][best]["7 d"]["noise_promoting"]),
                     " / ".join(pct(v) for v in e["designs"][best]["7 d"]["gain_promoted"].values())]
                    for key, e in long["results"].items()])
    summary = long["summary"]

    def worst(design: str) -> str:
        return pct(summary[design]["worst_gain_promoted"])

    lines += [
        f"The gate's rule: a candidate spends a look only if (i) its config (behaviour hash) was not looked at since "
        f"the last human decision, (ii) its mean gain over the champion on the same tuning queries (the champion is "
        f"trial 0) is >= min_gain ({long['min_gain']}), and (iii) its tuning gain in standard errors, mean(d) / "
        "(sd(d) / sqrt(n)) over the "
        "per-query tuning differences d beats the largest such score of every earlier look since the last human "
        "decision by 0.5 (the first look needs (i) and (ii) only). Look k (looks, not iterations) is tested at "
        "0.05 * 6 / (pi^2 k^2) as now; whether to look depends on tuning scores and past outcomes only, never "
        "on held-back scores, so the union bound keeps P(any noise promotion between two human decisions) <= "
        "0.05.", "",
        "Why this one: every iteration a look cannot promote anything once looks pass ~175 (alpha_k below what "
        "1e6 resamples can show: the demo's rate gets there in 2.5 hours, KorQuAD's in 29; worst (b) "
        f"{worst('old: every iteration, 6/(pi^2 k^2)')}). One look an hour, or a schedule that reads no score, "
        "still spends a look an hour and runs out of alpha by the end of a week (worst (b) "
        f"{worst('hourly: best of the hour, 6/(pi^2 k^2)')} hourly, "
        f"{worst('schedule 60 min, no score, 1/(k log^2(k+1))')} and "
        f"{worst('schedule 30 min, no score, 1/(k log^2(k+1))')} for the 60 and 30 minute schedules with the "
        "flatter spending); without a record the gate looks at most iterations at the demo's rate "
        f"({worst('gate, no record')}). An absolute record (tuning gain) holds when every noise config is a close "
        "one, but far configs' noise (sd 2.6x) sets records that a +0.02 close config cannot beat (worst (b) "
        + ", ".join(worst(f"gate, absolute record, m {m}") for m in ("0", "0.002", "0.005", "0.01"))
        + " for m 0 / 0.002 / 0.005 / 0.01). The record in standard errors puts every config's noise on one "
        "scale; worst (b) for m 0 / 0.25 / 0.5 / 1 / 2: "
        + ", ".join(worst(f"gate, standardized record, m {m}") for m in ("0", "0.25", "0.5", "1", "2"))
        + ", always in the hardest case (100 tuning queries, far configs, the gain reachable late). A margin "
        "caps the looks that a proposer creeping up its own tuning record can spend (each look raises the record "
        "by at least m standard errors), which this model, with independent noise configs, cannot show; 0.5 "
        "keeps the hardest case above 90%. The flatter 1/(k log^2(k+1)) changes nothing measurable with under 10 "
        "looks a week (the same rows within a standard error), so the policy's 6/(pi^2 k^2) stays. (a) is at "
        "most 5% for every design but p<0.05 by the union bound; a reading above "
        "5% is sampling error or the normal approximation.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EVOLVE_SHARED_DATA",
                                                                          ROOT.parent / "shared" / "data")))
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--validate-cases", type=int, default=400, help="null decisions per set and n")
    parser.add_argument("--guard-loops", type=int, default=400, help="A/A loops run with the guard's own tests")
    parser.add_argument("--rescore", action="store_true", help="score the configs again instead of reusing the files")
    parser.add_argument("--out", type=Path, default=RESULTS / "promotion_sim")
    parser.add_argument("--long-loops", type=int, default=2000, help="loops per scenario in the long-run section")
    parser.add_argument("--long-only", action="store_true",
                        help="recompute only the long-run section, keeping the others from the existing --out json")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.long_only:
        result = json.loads(args.out.with_suffix(".json").read_text("utf-8"))
        result["long_runs"] = long_run_report(centred_noise(args), args.long_loops)
        before = result.get("wall_seconds_before_long_runs", result["wall_seconds"])
    else:
        result = run(args)
        before = time.perf_counter() - started - result["long_runs"]["seconds"]
    result["wall_seconds_before_long_runs"] = round(before, 1)
    result["wall_seconds"] = round(before + result["long_runs"]["seconds"], 1)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), "utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
