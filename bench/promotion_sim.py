"""How often does a loop promote noise, and how often a real gain? Old rule (p < 0.05 at every look) vs alpha spending.

    .venv/bin/python bench/promotion_sim.py [--data ../shared/data] [--loops 1000] [--decisions 200] [--rescore]

Null noise comes from real per-query scores: two lexical configs with near-equal means are scored on a
shared set (pipelines + experiments.evaluate, as bench/foundation.py does) and their per-query nDCG@10
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
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from guardrails import alpha_for_look, minimum_detectable_effect, paired_bootstrap_p, permutation_p, resamples_for

RESULTS = ROOT / "bench" / "results"
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
    return result


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def pct(value: float) -> str:
    return f"{value:.1%}"


def markdown(result: dict) -> str:
    sets, loops, decisions = result["sets"], result["loops"], result["decisions"]
    lines = ["# Promotion simulation: how often a loop promotes noise, and a real gain", "",
             "Written by `bench/promotion_sim.py` (method in its docstring). Family alpha "
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
    return "\n".join(lines)


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
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), "utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
