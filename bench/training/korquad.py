"""Issue-18 benchmark, KorQuAD: a query adapter trained on questions the local LLM wrote for the corpus alone.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.training.korquad [--questions 400] [--model qwen2.5-coder-1.5b]
                                                                [--base-url URL --served-model NAME]

No labelled query trains: every KorQuAD query is guarded (by id and by text), and training uses only questions the
LLM synthesized for sampled passages of the corpus and its judge found answerable (`evolve evalset synthesize`),
with hard negatives mined by the champion (e5-small + kiwi BM25, weighted 0.5; 0.957 on the shared half). The
adapter sits on e5-small's query side, so the corpus is not embedded again. Scored on the held-back 30% of the
queries (the split the loop's guard uses): the champion with and without the adapter, and e5 alone with and
without it, with the guard's one-sided paired permutation test. Reports synthesized pairs, LLM time, training time.
Writes bench/results/training-korquad.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench import RESULTS, ROOT
from bench.llm.args import add_llm_arguments, bench_client
from evalsets import synthesize
from experiments import score, search_run, tune_and_heldout
from experiments.training import LeakGuard, TrainSettings, assemble, from_synthesized, mine_negatives, train_model
from guardrails import permutation_p
from pipelines import Components, ModelCatalog, PipelineConfig, Retriever, load_config

KORQUAD = ROOT.parent / "shared" / "data" / "korquad-v1-dev"
CHAMPION = ROOT / "bench" / "configs" / "korquad" / "hybrid-weighted.yaml"
E5 = "multilingual-e5-small"


def with_dense(config: PipelineConfig, model: str, name: str) -> PipelineConfig:
    return config.model_copy(update={"name": name, "dense": config.dense.model_copy(update={"model": model})})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--questions", type=int, default=400, help="passages sampled (one question each)")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "evolve" / "bench-training-korquad")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "evolve" / "bench-embeddings.sqlite")
    parser.add_argument("--out", default="training-korquad")
    args = parser.parse_args()
    catalog = ModelCatalog(args.work / "models")  # the adapter is trained into, and resolved from, the work folder
    synthesized = args.work / f"synthesized-{args.questions}"
    out: dict = {"questions_sampled": args.questions}
    if not (synthesized / "queries.jsonl").is_file():
        started = time.perf_counter()
        args.work.mkdir(parents=True, exist_ok=True)
        with bench_client(args, args.work / f"llm-cache-{args.questions}.duckdb") as client:
            report = synthesize(KORQUAD / "corpus.jsonl", synthesized, client, args.questions, seed=0)
        out["llm_seconds"] = round(time.perf_counter() - started, 1)
        out["synthesis"] = {"model": report.model, "kept": report.kept, "invalid": report.invalid,
                            "unanswerable": report.unanswerable, "duplicates": report.duplicates}
        (args.work / f"synthesis-{args.questions}.json").write_text(json.dumps(out, indent=2))
    else:
        out.update(json.loads((args.work / f"synthesis-{args.questions}.json").read_text()))
    print(json.dumps(out), flush=True)

    components = Components(args.cache, catalog)
    champion = load_config(CHAMPION)
    data = assemble([from_synthesized(synthesized)], LeakGuard.for_evalsets([KORQUAD]))
    out["pairs"], out["dropped_as_evaluation_queries"] = len(data.examples), data.dropped_leaks
    miner = Retriever(champion, components).build(list(data.documents.values()))
    data.examples = mine_negatives(data.examples, miner, per_query=7)
    started = time.perf_counter()
    outcome = train_model("adapter", E5, data, TrainSettings(), components, catalog.trained())
    out["training_seconds"] = round(time.perf_counter() - started, 1)
    out["adapter"] = outcome.model.model_id
    out["training"] = outcome.report

    heldout = tune_and_heldout(KORQUAD)[1]
    configs = [champion, with_dense(champion, out["adapter"], "champion + adapter"),
               load_config(ROOT / "bench" / "configs" / "korquad" / "dense-e5.yaml")]
    configs.append(with_dense(configs[2], out["adapter"], "e5 + adapter"))
    scores = {}
    for config in configs:
        retriever = Retriever(config, components).build(heldout.corpus)
        rows = score(search_run(retriever, heldout.queries), heldout.qrels, ("ndcg@10",))
        scores[config.name] = {r["query_id"]: r["ndcg@10"] for r in rows}
        print(config.name, np.mean(list(scores[config.name].values())), flush=True)
    out["heldout_queries"] = len(heldout.queries)
    out["results"] = []
    for mine, theirs in ((configs[1].name, configs[0].name), (configs[3].name, configs[2].name)):
        ids = list(scores[theirs])
        a, b = np.array([scores[mine][q] for q in ids]), np.array([scores[theirs][q] for q in ids])
        out["results"].append({"config": mine, "baseline": theirs, "ndcg@10": round(float(a.mean()), 4),
                               "baseline_ndcg@10": round(float(b.mean()), 4),
                               "difference": round(float(a.mean() - b.mean()), 4),
                               "p_better": round(permutation_p(a, b), 4)})
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    lines = [f"# KorQuAD: an adapter on e5-small trained on {out['pairs']} synthesized questions (no labelled query)",
             "", f"LLM {out.get('synthesis', {}).get('model', '?')}: {out.get('llm_seconds', '?')} s for "
                 f"{args.questions} sampled passages; training {out['training_seconds']} s; "
                 f"{out['heldout_queries']} held-back queries.", "",
             "| config | nDCG@10 | baseline | baseline nDCG@10 | difference | p (one-sided) |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['config']} | {r['ndcg@10']:.4f} | {r['baseline']} | {r['baseline_ndcg@10']:.4f} | "
              f"{r['difference']:+.4f} | {r['p_better']} |" for r in out["results"]]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
