"""Issue-36 measurement: deterministic correctness and the judge's, side by side, on KorQuAD answers a model wrote.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python -m bench.llm.answer_agreement --model smollm2-135m
    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python -m bench.llm.answer_agreement --model qwen2.5-coder-1.5b

On the first ``--n`` (50) held-back KorQuAD queries (``experiments.answer_queries`` on the fixed split of
``experiments.tune_and_heldout``), two configs whose first stage differs answer every query from their top
``--contexts`` chunk(s) (default 1: with five passages both configs nearly always hand the generator the answer;
with one, a weaker first stage hands it the wrong passage): BM25 over kiwi morphemes against BM25 over a regex
tokenizer (``bench/configs/korquad/bm25-{kiwi,regex}.yaml``, generation part set here, not in the files). Per
query and config the model answers once (``pipelines.Generator``), and its answer is scored twice:

- deterministically, as evolve scores short references (``experiments.short_answers``): containment (what
  ``answer_correctness`` holds), exact match, character F1 (KorQuAD's), morpheme-token F1;
- by the same model as judge of correctness against the reference (``experiments.Judge.correctness``, the
  English rubric evolve uses; the loop does not call it for short references, the bench does to compare).

Reported per config: the means, the share of queries whose top chunk is the relevant passage; between configs the
guard's paired test (the policy's ``significance.test``: a one-sided sign-flip permutation test,
``guardrails.stats.permutation_p``, its resamples and seed) in both directions on every metric; the agreement of
containment and the judge (Cohen's kappa, 95% bootstrap interval); the answer stage's judged queries per second
(an answer and a verdict, timed on calls that reached the server). Every LLM call is kept in a cache file under
``.evolve/bench/`` (a killed run resumes; its timings then count only the calls it made). The result for each model
is merged into ``bench/results/answer_agreement.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import RESULTS, ROOT
from bench.llm.args import add_llm_arguments, bench_client
from bench.llm.judge_labels import shared_data
from bench.llm.kappa import kappa_interval
from evalsets import Query
from experiments import Judge, agreement, answer_queries, tune_and_heldout
from experiments.short_answers import score_short_answer, short_references
from guardrails import Policy, load_policy
from guardrails.stats import TESTS
from pipelines import Components, GenerationConfig, Generator, PipelineConfig, Retriever, load_config
from pipelines.llm import LLMClient

CONFIGS = [ROOT / "bench" / "configs" / "korquad" / name for name in ("bm25-kiwi.yaml", "bm25-regex.yaml")]
OUT = RESULTS / "answer_agreement"
DETERMINISTIC = ("answer_correctness", "answer_exact_match", "answer_f1", "answer_token_f1")
METRICS = (*DETERMINISTIC, "judge_correctness")
TEXTS = ("answer", "reference", "judge_reason", "top_chunk")
LABELS = {"answer_correctness": "containment", "answer_exact_match": "exact match", "answer_f1": "char F1",
          "answer_token_f1": "token F1", "judge_correctness": "judge"}


def answer_and_judge(client: LLMClient, generator: Generator, judge: Judge, query: Query, chunks: list[dict]
                     ) -> dict:
    """One query: the answer, its deterministic scores, the judge's verdict, and what each call cost."""
    calls, started = client.calls, time.perf_counter()
    answer = generator.answer(query.text, chunks)
    answered, fresh_answer = time.perf_counter(), client.calls > calls
    verdict = judge.correctness(query.text, answer.text, query.answers[0])
    row: dict = {"answer": answer.text, "reference": query.answers[0], "judge_reason": verdict.reason[:300],
                 "answer_seconds": round(answered - started, 2), "fresh_answer": fresh_answer,
                 "verdict_seconds": round(time.perf_counter() - answered, 2),
                 "fresh_verdict": client.calls > calls + fresh_answer,
                 "top_chunk_relevant": None}
    if short := short_references(query.answers):
        row.update(score_short_answer(answer.text, short))
    if verdict.value is not None:
        row["judge_correctness"] = verdict.value
    return row


def run_config(client: LLMClient, config: PipelineConfig, heldout, queries: list[Query], components: Components
               ) -> dict:
    retriever = Retriever(config, components).build(heldout.corpus)
    rankings = retriever.search_chunks([q.text for q in queries])
    generator, judge = Generator(client, config.generation), Judge(client)
    rows, started = {}, time.perf_counter()
    for done, (query, ranking) in enumerate(zip(queries, rankings), start=1):
        chunks = [{"chunk_id": c.chunk_id, "doc_id": c.doc_id, "text": c.text} for c in ranking]
        row = answer_and_judge(client, generator, judge, query, chunks)
        relevant = {d for d, r in heldout.qrels.get(query.query_id, {}).items() if r > 0}
        row["top_chunk_relevant"] = bool(ranking) and ranking[0].doc_id in relevant
        row["top_chunk"] = ranking[0].chunk_id if ranking else None
        rows[query.query_id] = row
        print(f"  {config.name}: {done}/{len(queries)} ({time.perf_counter() - started:.0f} s) "
              f"containment={row.get('answer_correctness')} judge={row.get('judge_correctness')}", flush=True)
    fresh = [r for r in rows.values() if r["fresh_answer"] and r["fresh_verdict"]]
    seconds = sum(r["answer_seconds"] + r["verdict_seconds"] for r in fresh)
    return {"config": config.name, "generation": config.generation.model_dump(),
            "means": {m: float(np.mean(v)) for m in METRICS if (v := [r[m] for r in rows.values() if m in r])},
            "scored": {m: sum(m in r for r in rows.values()) for m in METRICS},
            "top_chunk_relevant": float(np.mean([r["top_chunk_relevant"] for r in rows.values()])),
            "fresh_queries": len(fresh), "fresh_seconds": round(seconds, 1),
            "seconds_per_answer": round(float(np.mean([r["answer_seconds"] for r in fresh])), 2) if fresh else None,
            "seconds_per_verdict": round(float(np.mean([r["verdict_seconds"] for r in fresh])), 2) if fresh else None,
            "judged_queries_per_second": round(len(fresh) / seconds, 4) if seconds else None,
            "wall_seconds": round(time.perf_counter() - started, 1), "per_query": rows}


def compare(first: dict, second: dict, policy: Policy) -> dict:
    """The guard's paired test, one-sided each way, on the queries both configs have each metric for."""
    test, sig = TESTS[policy.significance.test], policy.significance
    out = {}
    for metric in METRICS:
        pairs = [(a[metric], second["per_query"][q][metric]) for q, a in first["per_query"].items()
                 if metric in a and metric in second["per_query"].get(q, {})]
        if len(pairs) >= 2:
            mine, theirs = np.array(pairs, dtype=float).T
            out[metric] = {"n": len(pairs), "difference": round(float(mine.mean() - theirs.mean()), 4),
                           "p_first_better": round(test(mine, theirs, sig.resamples, sig.seed), 4),
                           "p_second_better": round(test(theirs, mine, sig.resamples, sig.seed), 4)}
    return out


def judge_agreement(configs: list[dict]) -> dict:
    """Containment against the judge's verdict over every (config, query) with both (a query both configs answered
    alike counts twice: the same answer scored under each config)."""
    rows = [r for c in configs for r in c["per_query"].values() if "judge_correctness" in r
            and "answer_correctness" in r]
    labels = [int(r["answer_correctness"]) for r in rows]
    verdicts = [int(r["judge_correctness"]) for r in rows]
    found = agreement(labels, verdicts)
    low, high = kappa_interval(labels, verdicts, random.Random(0)) if found.kappa is not None else (None, None)
    return {"n": found.n, "accuracy": found.accuracy, "kappa": found.kappa, "kappa_95": [low, high],
            "both_right": found.tp, "judge_only": found.fp, "containment_only": found.fn, "both_wrong": found.tn}


def measure(client: LLMClient, evalset: Path, n: int, contexts: int, max_answer_tokens: int) -> dict:
    heldout = tune_and_heldout(evalset)[1]
    queries = answer_queries(heldout.queries, n)
    components = Components(Path(tempfile.mkdtemp()) / "embeddings.sqlite")
    configs = []
    for path in CONFIGS:
        config = load_config(path)
        generation = GenerationConfig(contexts=contexts, max_answer_tokens=max_answer_tokens)
        config = config.model_copy(update={"generation": generation})
        configs.append(run_config(client, config, heldout, queries, components))
    differ = sum(configs[0]["per_query"][q]["top_chunk"] != configs[1]["per_query"][q]["top_chunk"]
                 for q in configs[0]["per_query"])
    return {"model": client.model, "evalset": heldout.name, "queries": len(queries), "contexts": contexts,
            "max_answer_tokens": max_answer_tokens,
            "top_chunk_differs": differ, "configs": configs,
            "comparison": compare(*configs, load_policy()), "agreement": judge_agreement(configs)}


def without_texts(result: dict) -> dict:
    """The result without the answers, references and reasons (KorQuAD is CC BY-ND: its text stays under .evolve/,
    next to the LLM cache, as ``<cache>.rows.json``); the per-query scores and timings stay."""
    configs = [{**c, "per_query": {q: {k: v for k, v in row.items() if k not in TEXTS}
                                   for q, row in c["per_query"].items()}} for c in result["configs"]]
    return {**result, "configs": configs}


def markdown(results: dict) -> str:
    lines = ["# Deterministic correctness and the judge's, side by side (KorQuAD held-back queries)", "",
             ("`python -m bench.llm.answer_agreement --model MODEL` (module docstring: what is measured). Per model, "
             "the same model answers and judges; containment is what evolve's `answer_correctness` holds for "
             "short references."), ""]
    for model, r in results.items():
        first, second = (c["config"] for c in r["configs"])
        lines += [f"## {model}", "",
                  (f"{r['queries']} {r['evalset']} held-back queries, top {r['contexts']} chunk(s) given to the "
                  f"generator, answers cut at {r['max_answer_tokens']} tokens; the two configs' top chunk differs on {r['top_chunk_differs']} queries."), "",
                  "| config | top chunk relevant | " + " | ".join(LABELS[m] for m in METRICS)
                  + " | judged | s / answer | s / verdict | judged queries / s (fresh) |",
                  "| --- | ---: | " + " | ".join("---:" for _ in METRICS) + " | ---: | ---: | ---: | ---: |"]
        for c in r["configs"]:
            lines.append(f"| {c['config']} | {c['top_chunk_relevant']:.2f} | "
                         + " | ".join(f"{c['means'][m]:.3f}" if m in c["means"] else "-" for m in METRICS)
                         + f" | {c['scored']['judge_correctness']} | {c['seconds_per_answer']} | "
                           f"{c['seconds_per_verdict']} | {c['judged_queries_per_second']} "
                           f"({c['fresh_queries']} queries) |")
        lines += ["", (f"Paired test (the guard's: one-sided sign-flip permutation, `guardrails.stats.permutation_p`), "
                      f"{first} against {second}:"), "",
                  "| metric | n | difference | p first better | p second better |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {LABELS[m]} | {v['n']} | {v['difference']:+.3f} | {v['p_first_better']} | "
                  f"{v['p_second_better']} |" for m, v in r["comparison"].items()]
        a = r["agreement"]
        kappa = "n/a" if a["kappa"] is None else f"{a['kappa']:.3f} [{a['kappa_95'][0]:.3f}, {a['kappa_95'][1]:.3f}]"
        lines += ["", (f"Containment against the judge on {a['n']} scored answers (both configs): accuracy "
                      f"{a['accuracy']:.3f}, kappa {kappa}; both right {a['both_right']}, judge only "
                      f"{a['judge_only']}, containment only {a['containment_only']}, both wrong {a['both_wrong']}."), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--contexts", type=int, default=1, help="top chunks given to the generator")
    parser.add_argument("--max-answer-tokens", type=int, default=96,
                        help="the generator's cap (evolve's default is 256; 96 holds one or two Korean sentences "
                             "of the 1.5B and stops SmolLM2's repetitions sooner: CPU time)")
    parser.add_argument("--evalset", type=Path, default=shared_data() / "korquad-v1-dev")
    args = parser.parse_args()
    cache = ROOT / ".evolve" / "bench" / f"answer_agreement-{args.model if not args.base_url else 'endpoint'}.duckdb"
    with bench_client(args, cache) as client:
        result = measure(client, args.evalset, args.n, args.contexts, args.max_answer_tokens)
    (cache.parent / f"{cache.stem}.rows.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), "utf-8")
    path = OUT.with_suffix(".json")
    results = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    results[result["model"]] = without_texts(result)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    OUT.with_suffix(".md").write_text(markdown(results), "utf-8")
    print(markdown({result["model"]: result}))


if __name__ == "__main__":
    main()
