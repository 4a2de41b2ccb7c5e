"""How many live queries does interleaving need, against an A/B split, to find the better of two configs?

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.serving.interleaving [--data ../shared/data] [--experiments 1000] [--rerank]

Replayed traffic: the queries of SciFact (test, 300) and KorQuAD (korquad-v1-dev, 3,473) are the logged queries;
each config's top 10 for every query is computed once (pipelines.Retriever, BM25 only: seconds) and replayed. A
user is a cascade click model (Craswell et al. 2008) over the list shown, with the qrels as the truth: the user
reads from the top, clicks a relevant document with probability 0.9 and a non-relevant one with 0.1, and stops
after a click with probability 0.7 (relevant) or 0.2 (non-relevant), else reads on (so lower relevant documents
are clicked less, and a list's top matters most).

- Interleaving: each query is shown a team-draft interleaving of the two top 10s (``experiments.interleaving``;
  each query's 32 possible coin sequences are enumerated once and one is drawn per replay), the clicks credit the
  side that contributed the clicked document, and the experiment's verdict is the two-sided sign test of wins
  against losses (``experiments.interleaving.sign_test``) at 0.05, in the direction of the better config.
- A/B: the same number of queries split in half, each half shown one config's top 10; the verdict is a two-sided
  Welch z-test of clicks per query at 0.05 in the right direction.

For each size n, ``--experiments`` replays draw n queries (with replacement) and count how often the better config
is found; the report gives the smallest n found at least 80% of the time. The false-preference rate is measured
on two equivalent configs: the better config against itself (an A/A test: identical lists, so only the coin and
the clicks vary), where any significant verdict is false; the near-equal pair (BM25 k1 1.2 vs 1.5, promotion_sim's
null pair) is reported beside it as the rate at which a small real difference is called.

Writes bench/results/online_interleaving.json and online_interleaving.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from bench import RESULTS, ROOT
from experiments.interleaving import CANDIDATE, team_draft

K = 10
P_CLICK = {True: 0.9, False: 0.1}
P_STOP = {True: 0.7, False: 0.2}
ALPHA = 0.05
POWER = 0.8
SIZES = [10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000]


def bm25(name: str, **lexical: object) -> dict:
    return {"name": name, "lexical": lexical, "fusion": {"kind": "none"}}


SETS = {
    "scifact": {"folder": "scifact", "better": bm25("bm25-english", tokenizer="english"),
                "worse": bm25("bm25-regex-k0.3-b0.1", tokenizer="regex", k1=0.3, b=0.1),
                "near": bm25("bm25-english-k1.2", tokenizer="english", k1=1.2)},
    "korquad": {"folder": "korquad-v1-dev", "better": bm25("bm25-kiwi", tokenizer="kiwi"),
                "worse": bm25("bm25-regex", tokenizer="regex"),
                "near": bm25("bm25-kiwi-k0.9-b0.4", tokenizer="kiwi", k1=0.9, b=0.4)},
}


def rankings(data_dir: Path, key: str, rerank: bool) -> dict:
    """Each config's top 10 per query and its nDCG@10 (cached in bench/results/.online_rankings_<set>.json)."""
    cache = RESULTS / f".online_rankings_{key}.json"
    if cache.exists() and not rerank:
        return json.loads(cache.read_text("utf-8"))
    from evalsets import load_evalset
    from experiments import ndcg_at_k
    from pipelines import Components, PipelineConfig, Retriever

    spec = SETS[key]
    data = load_evalset(data_dir / spec["folder"])
    texts = [q.text for q in data.queries]
    out = {"set": spec["folder"], "query_ids": [q.query_id for q in data.queries],
           "relevant": {q.query_id: sorted(d for d, r in data.qrels[q.query_id].items() if r > 0)
                        for q in data.queries}, "configs": {}}
    for role in ("better", "worse", "near"):
        raw = spec[role]
        started = time.perf_counter()
        retriever = Retriever(PipelineConfig.model_validate(raw), Components(ROOT / ".evolve" / "cache" / "emb.sqlite"))
        retriever.build(data.corpus)
        ranked = [[doc for doc, _ in row[:K]] for row in retriever.search(texts)]
        ndcg = float(np.mean([ndcg_at_k(ranking, data.qrels[q.query_id], K)
                              for ranking, q in zip(ranked, data.queries)]))
        out["configs"][role] = {"config": raw, "top10": ranked, "ndcg@10": round(ndcg, 4)}
        print(f"{key}: {raw['name']} nDCG@10 {ndcg:.4f} ({time.perf_counter() - started:.1f} s)", flush=True)
    cache.write_text(json.dumps(out, ensure_ascii=False), "utf-8")
    return out


class Coins:
    """A ``random.Random`` stand-in that plays a fixed coin sequence (to enumerate every team draft of a query)."""

    def __init__(self, bits: int):
        self.bits = bits

    def random(self) -> float:
        bit, self.bits = self.bits & 1, self.bits >> 1
        return 0.25 if bit else 0.75  # < 0.5: the candidate picks first


def interleavings(champion: list[str], candidate: list[str], relevant: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """All 32 team drafts of one query: (relevance [32, K] bool, candidate side [32, K] bool); padded lists are
    non-relevant champion slots nobody clicks (they never occur for full top 10s)."""
    rel, side = np.zeros((32, K), bool), np.zeros((32, K), bool)
    for bits in range(32):
        for i, pick in enumerate(team_draft(champion, candidate, K, Coins(bits))):  # type: ignore[arg-type]
            rel[bits, i] = pick.doc_id in relevant
            side[bits, i] = pick.side == CANDIDATE
    return rel, side


def cascade_clicks(rel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clicks [..., K] of cascade users on lists of relevance ``rel`` [..., K]."""
    p_click = np.where(rel, P_CLICK[True], P_CLICK[False])
    p_stop = np.where(rel, P_STOP[True], P_STOP[False])
    clicks = np.zeros(rel.shape, bool)
    reading = np.ones(rel.shape[:-1], bool)
    for position in range(rel.shape[-1]):
        click = reading & (rng.random(rel.shape[:-1]) < p_click[..., position])
        clicks[..., position] = click
        reading &= ~(click & (rng.random(rel.shape[:-1]) < p_stop[..., position]))
    return clicks


def sign_p(wins: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Two-sided exact sign-test p-values, vectorised (the same test as experiments.interleaving.sign_test)."""
    from scipy.stats import binom

    n = wins + losses
    low = np.minimum(wins, losses)
    return np.where(n > 0, np.minimum(1.0, 2 * binom.cdf(low, np.maximum(n, 1), 0.5)), 1.0)


BATCH = 100
"""Replays simulated at once (memory: BATCH x n x K)."""


def batches(experiments: int, n: int = 2000) -> list[int]:
    size = max(1, min(BATCH, 200_000 // max(n, 1)))
    return [min(size, experiments - start) for start in range(0, experiments, size)]


def interleaving_found(rel: np.ndarray, side: np.ndarray, n: int, experiments: int, rng: np.random.Generator,
                       candidate_better: bool) -> float:
    """Share of experiments of ``n`` queries whose sign test calls the candidate better (or worse, when it is)."""
    if len(batches(experiments, n)) > 1:
        return float(np.average([interleaving_found(rel, side, n, size, rng, candidate_better)
                                 for size in batches(experiments, n)], weights=batches(experiments, n)))
    queries = rng.integers(0, rel.shape[0], (experiments, n))
    draws = rng.integers(0, 32, (experiments, n))
    shown_rel, shown_side = rel[queries, draws], side[queries, draws]
    clicks = cascade_clicks(shown_rel, rng)
    for_candidate = (clicks & shown_side).sum(-1)
    for_champion = (clicks & ~shown_side).sum(-1)
    wins = (for_candidate > for_champion).sum(-1)
    losses = (for_candidate < for_champion).sum(-1)
    right_way = wins > losses if candidate_better else losses > wins
    return float(np.mean((sign_p(wins, losses) < ALPHA) & right_way))


def ab_found(rel_a: np.ndarray, rel_b: np.ndarray, n: int, experiments: int, rng: np.random.Generator,
             b_better: bool) -> float:
    """Share of A/B experiments (n queries, half per arm) whose Welch z-test of clicks per query finds B better (or
    worse, when it is)."""
    if len(batches(experiments, n)) > 1:
        return float(np.average([ab_found(rel_a, rel_b, n, size, rng, b_better) for size in batches(experiments, n)],
                                weights=batches(experiments, n)))
    half = max(1, n // 2)
    arms = []
    for rel in (rel_a, rel_b):
        shown = rel[rng.integers(0, rel.shape[0], (experiments, half))]
        arms.append(cascade_clicks(shown, rng).sum(-1).astype(float))
    a, b = arms
    se = np.sqrt(a.var(-1, ddof=1) / half + b.var(-1, ddof=1) / half) if half > 1 else np.full(experiments, np.inf)
    z = np.where(se > 0, (b.mean(-1) - a.mean(-1)) / np.where(se > 0, se, 1), 0.0)
    p = np.array([math.erfc(abs(v) / math.sqrt(2)) for v in z])
    right_way = z > 0 if b_better else z < 0
    return float(np.mean((p < ALPHA) & right_way))


def ab_needed_normal(rel_a: np.ndarray, rel_b: np.ndarray, rng: np.random.Generator, draws: int = 200) -> int:
    """Queries (both arms together) the A/B z-test needs for 80% power at 0.05, from the normal approximation:
    2 (z_0.975 + z_0.8)^2 (var_a + var_b) / (mean_b - mean_a)^2, with the mean and variance of clicks per query
    over replayed queries and users (``draws`` users per query)."""
    from statistics import NormalDist

    clicks = [cascade_clicks(np.repeat(rel[None], draws, 0), rng).sum(-1).astype(float) for rel in (rel_a, rel_b)]
    means, variances = [c.mean() for c in clicks], [c.var() for c in clicks]
    z = NormalDist().inv_cdf(1 - ALPHA / 2) + NormalDist().inv_cdf(POWER)
    return math.ceil(2 * z * z * (variances[0] + variances[1]) / (means[1] - means[0]) ** 2)


def queries_needed(found_at: dict[int, float]) -> int | None:
    return next((n for n in SIZES if found_at.get(n, 0) >= POWER), None)


def run_set(key: str, ranked: dict, experiments: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    ids = ranked["query_ids"]
    relevant = [set(ranked["relevant"][q]) for q in ids]
    tops = {role: ranked["configs"][role]["top10"] for role in ("better", "worse", "near")}

    def pair(champion: str, candidate: str) -> tuple[np.ndarray, np.ndarray]:
        built = [interleavings(c, d, r) for c, d, r in zip(tops[champion], tops[candidate], relevant)]
        return np.stack([b[0] for b in built]), np.stack([b[1] for b in built])

    def relevance(role: str) -> np.ndarray:
        return np.array([[doc in r for doc in (top + [""] * K)[:K]] for top, r in zip(tops[role], relevant)])

    # the candidate is the better config, the champion the worse (what a reviewer hopes to see)
    rel, side = pair("worse", "better")
    detect = {"interleaving": {}, "ab": {}}
    for n in SIZES:
        if not detect["interleaving"] or max(detect["interleaving"].values()) < 0.999:
            detect["interleaving"][n] = interleaving_found(rel, side, n, experiments, rng, True)
        if not detect["ab"] or max(detect["ab"].values()) < 0.999:
            detect["ab"][n] = ab_found(relevance("worse"), relevance("better"), n, experiments, rng, True)
    ab_normal = ab_needed_normal(relevance("worse"), relevance("better"), rng)
    ab_check = ab_found(relevance("worse"), relevance("better"), ab_normal, 200, rng, True)
    same_rel, same_side = pair("better", "better")
    near_rel, near_side = pair("better", "near")
    false_pref, near_called = {}, {}
    for n in (50, 200, 1000):  # four times the replays: a rate near 5% needs them to be told from 6%
        false_pref[n] = (interleaving_found(same_rel, same_side, n, 4 * experiments, rng, True)
                         + interleaving_found(same_rel, same_side, n, 4 * experiments, rng, False))
        near_called[n] = (interleaving_found(near_rel, near_side, n, experiments, rng, True)
                          + interleaving_found(near_rel, near_side, n, experiments, rng, False))
    ab_false = {n: ab_found(relevance("better"), relevance("better"), n, 4 * experiments, rng, True)
                + ab_found(relevance("better"), relevance("better"), n, 4 * experiments, rng, False)
                for n in (50, 200, 1000)}
    needed = {method: queries_needed(found) for method, found in detect.items()}
    needed["ab_normal_approximation"] = ab_normal
    return {"set": ranked["set"], "queries": len(ids),
            "ndcg@10": {role: ranked["configs"][role]["ndcg@10"] for role in ("better", "worse", "near")},
            "configs": {role: ranked["configs"][role]["config"]["name"] for role in ("better", "worse", "near")},
            "found": detect, "queries_needed_80pct": needed,
            "ratio_ab_to_interleaving": (round((needed["ab"] or ab_normal) / needed["interleaving"], 1)
                                         if needed["interleaving"] else None),
            "ab_found_at_normal_approximation": ab_check,
            "false_preference_interleaving_aa": false_pref, "false_preference_ab_aa": ab_false,
            "near_pair_called_interleaving": near_called}


def markdown(results: dict, meta: dict) -> str:
    lines = ["# Online comparison on replayed traffic: interleaving vs A/B split", "",
             (f"`python -m bench.serving.interleaving --experiments {meta['experiments']}` ({meta['seconds']:.0f} s on "
             f"{meta['machine']}). Cascade users over the qrels: click relevant {P_CLICK[True]}, non-relevant "
             f"{P_CLICK[False]}; stop after a click {P_STOP[True]} / {P_STOP[False]}. Verdict: two-sided test at "
             f"{ALPHA} in the right direction; 'needed' is the smallest n (of {SIZES[0]}..{SIZES[-1]}) found in "
             f">= {POWER:.0%} of {meta['experiments']} replays."), "",
             ("A/B beyond the simulated sizes: the normal approximation of its z-test from the click mean and variance "
             "per query, checked by simulating 200 A/B replays of that size (the share found is in the last column)."),
             "", ("| set | better (nDCG@10) | worse (nDCG@10) | interleaving: queries needed | A/B: queries needed | "
             "A/B / interleaving | A/B found at its n |"), "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results.values():
        need = r["queries_needed_80pct"]
        ab = need["ab"] or f"{need['ab_normal_approximation']} (normal approx.)"
        lines.append(f"| {r['set']} | {r['configs']['better']} ({r['ndcg@10']['better']}) | {r['configs']['worse']} "
                     f"({r['ndcg@10']['worse']}) | {need['interleaving']} | {ab} | {r['ratio_ab_to_interleaving']} | "
                     f"{r['ab_found_at_normal_approximation']:.0%} |")
    lines += ["", (f"False preference (equivalent configs: the better config against itself, either direction "
              f"called significant; {4 * meta['experiments']} replays each):"), "",
              "| set | interleaving n=50 | n=200 | n=1000 | A/B n=50 | n=200 | n=1000 |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results.values():
        fi, fa = r["false_preference_interleaving_aa"], r["false_preference_ab_aa"]
        lines.append(f"| {r['set']} | " + " | ".join(f"{fi[n]:.1%}" for n in (50, 200, 1000)) + " | "
                     + " | ".join(f"{fa[n]:.1%}" for n in (50, 200, 1000)) + " |")
    lines += ["", ("Near-equal pair (a small real difference, not a null): how often interleaving calls either "
              "direction:"), "", "| set | pair (nDCG@10) | n=50 | n=200 | n=1000 |", "| --- | --- | --- | --- | --- |"]
    for r in results.values():
        near = r["near_pair_called_interleaving"]
        lines.append(f"| {r['set']} | {r['configs']['better']} ({r['ndcg@10']['better']}) vs {r['configs']['near']} "
                     f"({r['ndcg@10']['near']}) | " + " | ".join(f"{near[n]:.1%}" for n in (50, 200, 1000)) + " |")
    lines += ["", "Detection rate by number of queries:", ""]
    for r in results.values():
        for method in ("interleaving", "ab"):
            found = ", ".join(f"{n}: {v:.0%}" for n, v in r["found"][method].items())
            lines.append(f"- {r['set']}, {method}: {found}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rerank", action="store_true", help="recompute the rankings")
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    for offset, key in enumerate(args.sets):
        results[key] = run_set(key, rankings(args.data, key, args.rerank), args.experiments, args.seed + offset)
        print(json.dumps({k: results[key][k] for k in ("set", "ndcg@10", "queries_needed_80pct",
                                                       "false_preference_interleaving_aa")}), flush=True)
    import os
    import platform

    meta = {"experiments": args.experiments, "seconds": time.perf_counter() - started,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)"}
    out = RESULTS
    (out / "online_interleaving.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    (out / "online_interleaving.md").write_text(markdown(results, meta))
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
