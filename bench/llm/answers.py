"""Issue-17 benchmark: the answer stage with a real local LLM as generator and judge, on KorQuAD held-back queries.

    .venv/bin/python -m bench.llm.answers [--model qwen2.5-coder-1.5b] [--n 50] [--threads 2]
                                      [--base-url URL --served-model NAME] [--configs A.yaml B.yaml]

For each config: build it on the KorQuAD corpus, answer the first n held-back queries (those the guard step
would judge, experiments.answer_queries) from its top chunks with its generation settings, and judge each answer
(correctness against the reference span, faithfulness, context relevance). Reports per-query seconds, LLM calls,
the answer means, nDCG@10 on the same queries, and the guard's paired test between the two configs on each
metric. The LLM cache starts cold (a temporary file), so the first config pays for every call; the second pays
only for prompts that differ. Writes bench/results/answers.json and answers.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import RESULTS, ROOT
from bench.llm.args import add_llm_arguments, bench_client
from experiments import ANSWER_METRICS, AnswerJudging, answer_queries, score, search_run, tune_and_heldout
from guardrails import permutation_p
from pipelines import Components, Retriever, load_config
from pipelines.llm import LLMClient

SHARED = ROOT.parent / "shared" / "data"
CONFIGS = [ROOT / "bench" / "configs" / "korquad" / name for name in ("bm25-kiwi.yaml", "bm25-regex.yaml")]


def run(client: LLMClient, evalset_path: Path, configs: list[Path], n: int, components: Components,
        stem: str = "answers") -> dict:
    heldout = tune_and_heldout(evalset_path)[1]
    queries = answer_queries(heldout.queries, n)
    out = {"judge_model": client.model, "evalset": heldout.name, "queries": len(queries), "configs": []}
    for path in configs:
        config = load_config(path)
        retriever = Retriever(config, components).build(heldout.corpus)
        ndcg = {r["query_id"]: r["ndcg@10"] for r in score(search_run(retriever, queries), heldout.qrels,
                                                                   ("ndcg@10",))}
        judging = AnswerJudging(client)
        started = time.perf_counter()

        def progress(done: int, total: int, name: str = config.name) -> None:
            print(f"  {name}: {done}/{total} answered and judged ({time.perf_counter() - started:.0f} s)",
                  flush=True)

        rows = judging.score(retriever, queries, config.generation, n, progress)
        seconds = time.perf_counter() - started
        means = {m: float(np.mean([r[m] for r in rows.values() if m in r])) for m in ANSWER_METRICS
                 if any(m in r for r in rows.values())}
        out["configs"].append({
            "config": config.name, "generation": config.generation.model_dump(), "ndcg@10": float(np.mean(
                list(ndcg.values()))), "answers": means,
            "judged": {m: sum(m in r for r in rows.values()) for m in ANSWER_METRICS},
            "seconds": round(seconds, 1), "seconds_per_query": round(seconds / max(1, len(queries)), 1),
            "llm_calls": judging.spend.calls, "cached_calls": judging.spend.cached, "failed": judging.spend.failed,
            "per_query": {q: {**rows.get(q, {}), "ndcg@10": ndcg[q]} for q in ndcg}})
        print(json.dumps({k: v for k, v in out["configs"][-1].items() if k != "per_query"}, ensure_ascii=False),
              flush=True)
        if len(out["configs"]) == 2:
            out["comparison"] = compare(*out["configs"])
        save(out, stem)  # after each config: a run stopped later still leaves what it measured
    return out


def save(result: dict, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))


def compare(first: dict, second: dict) -> dict:
    """The guard's one-sided permutation test of first > second on the queries both have each metric for."""
    result = {}
    for metric in ("ndcg@10", *ANSWER_METRICS):
        pairs = [(a[metric], second["per_query"][q][metric]) for q, a in first["per_query"].items()
                 if metric in a and metric in second["per_query"].get(q, {})]
        if len(pairs) >= 2:
            mine, theirs = np.array(pairs).T
            result[metric] = {"n": len(pairs), "difference": round(float(mine.mean() - theirs.mean()), 4),
                              "p_first_better": round(permutation_p(mine, theirs), 4)}
    return result


def markdown(result: dict) -> str:
    lines = [f"# Answers in the loop: {result['judge_model']} as generator and judge, {result['queries']} "
             f"{result['evalset']} held-back queries", "",
             "| config | nDCG@10 | correctness | faithfulness | context relevance | judged (c/f/r) | s per query | "
             "LLM calls (cached) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in result["configs"]:
        a, j = c["answers"], c["judged"]
        lines.append(f"| {c['config']} | {c['ndcg@10']:.3f} | "
                     + " | ".join(f"{a[m]:.2f}" if m in a else "-" for m in ANSWER_METRICS)
                     + f" | {j['answer_correctness']}/{j['faithfulness']}/{j['context_relevance']} | "
                       f"{c['seconds_per_query']} | {c['llm_calls']} ({c['cached_calls']}) |")
    if result.get("comparison"):
        first, second = result["configs"][0]["config"], result["configs"][1]["config"]
        lines += ["", f"Paired one-sided permutation test, {first} better than {second} (the guard's test):", "",
                  "| metric | n | difference | p |", "| --- | --- | --- | --- |"]
        lines += [f"| {m} | {v['n']} | {v['difference']:+.3f} | {v['p_first_better']} |"
                  for m, v in result["comparison"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--evalset", type=Path, default=SHARED / "korquad-v1-dev")
    parser.add_argument("--configs", type=Path, nargs="+", default=CONFIGS)
    parser.add_argument("--out", default="answers", help="result file stem under bench/results")
    args = parser.parse_args()
    components = Components(Path(tempfile.mkdtemp()) / "embeddings.sqlite")
    with bench_client(args) as client:  # a cold cache: the first config pays for every call
        result = run(client, args.evalset, args.configs, args.n, components, args.out)
    print(markdown(result))


if __name__ == "__main__":
    main()
