"""Issue-21 benchmark, part 1: a fixed, finite grid of pipelines scored exhaustively once, with what each costs cold.

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m bench.search.grid --set korquad|scifact [--queries 600]

The grid crosses chunking, dense model, BM25 settings, fusion and a reranker (KorQuAD 224 configs, SciFact 204).
Every config is scored on the tuning queries (what a search method may look at: KorQuAD's 70% tune part of the
loop's split, SciFact's train split) and on the held-back ones (KorQuAD's 30%, SciFact's test split; reported only).
Costs are measured on a cold embedding cache of this benchmark's own (`--work`): a *resource* (chunking a corpus,
embedding it with a model, the tuning queries' embeddings, a BM25 index) is paid by the first config that needs it
and is free afterwards, as in evolve's caches; `evaluate_s` is scoring the tuning queries with the built pipeline.
bench/search/methods.py then replays search methods against this table at equal compute.
Writes bench/results/search-grid-<set>.json (resumable: configs already scored are kept).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

from bench import RESULTS, ROOT
from evalsets import load_evalset
from experiments import score, search_run, tune_and_heldout
from pipelines import Components, PipelineConfig, Retriever, StageLog

DATA = ROOT.parent / "shared" / "data"
METRIC = "ndcg@10"
FUSIONS = {"rrf": {"kind": "rrf", "rrf_k": 60}, "w0.3": {"kind": "weighted", "dense_weight": 0.3},
           "w0.5": {"kind": "weighted", "dense_weight": 0.5}, "w0.7": {"kind": "weighted", "dense_weight": 0.7}}


def embedding_reranker(model: str) -> dict[str, Any]:
    return {"kind": "embedding", "model": model, "top_n": 20, "blend": 0.5}


def bm25_levels(tokenizers: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, Any] | None]:
    levels: dict[str, dict[str, Any] | None] = {"none": None}
    for tokenizer, settings in tokenizers.items():
        for k1, b in settings:
            levels[f"{tokenizer}-k{k1}-b{b}"] = {"tokenizer": tokenizer, "k1": k1, "b": b}
    return levels


SETS = {
    "korquad": {
        "chunker": {"whole": {"kind": "whole"}, "sentence-400": {"kind": "sentence", "size": 400, "overlap": 1}},
        "dense": {"none": None, "e5": "multilingual-e5-small", "use": "use-multilingual-v3"},
        "lexical": bm25_levels({"kiwi": [(0.9, 0.5), (0.9, 0.8), (1.5, 0.5), (1.5, 0.8)],
                                "regex": [(0.9, 0.5), (1.2, 0.75)]}),
        "reranker": {"none": None, "e5-top20": "e5"},
    },
    "scifact": {
        "chunker": {"whole": {"kind": "whole"}, "paragraph-1200": {"kind": "paragraph", "size": 1200}},
        # one dense model: e5-small and USE embed SciFact's 7.3M characters in hours on this CPU (MiniLM stops at 256
        # tokens a text); the models vary on KorQuAD
        "dense": {"none": None, "minilm": "all-MiniLM-L6-v2"},
        "lexical": bm25_levels({"english": [(k1, b) for k1 in (0.9, 1.2, 1.5) for b in (0.5, 0.75, 0.9)],
                                "regex": [(1.2, 0.75)]}),
        "reranker": {"none": None, "minilm-top20": "minilm"},
    },
}


def grid(levels: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Every valid combination: at least one retriever; fusion only (and always) with both; any reranker."""
    out = []
    for chunker, dense, lexical, reranker in itertools.product(levels["chunker"], levels["dense"], levels["lexical"],
                                                               levels["reranker"]):
        if dense == "none" and lexical == "none":
            continue
        for fusion in (FUSIONS if dense != "none" and lexical != "none" else ["none"]):
            out.append({"chunker": chunker, "dense": dense, "lexical": lexical, "fusion": fusion,
                        "reranker": reranker})
    return out


def config_of(factors: dict[str, str], levels: dict[str, dict[str, Any]]) -> PipelineConfig:
    body: dict[str, Any] = {"name": "grid-" + "-".join(factors.values()), "chunking": levels["chunker"][factors["chunker"]],
                            "candidates": 100, "k": 10}
    if factors["dense"] != "none":
        body["dense"] = {"model": levels["dense"][factors["dense"]]}
    if factors["lexical"] != "none":
        body["lexical"] = levels["lexical"][factors["lexical"]]
    body["fusion"] = FUSIONS[factors["fusion"]] if factors["fusion"] != "none" else {"kind": "none"}
    rerank_model = levels["reranker"][factors["reranker"]]
    if rerank_model:
        body["reranker"] = embedding_reranker(levels["dense"][rerank_model])
    return PipelineConfig.model_validate(body)


def needs_of(factors: dict[str, str], levels: dict[str, dict[str, Any]]) -> list[str]:
    chunker = factors["chunker"]
    needs = [f"chunk|{chunker}"]
    models = [factors["dense"]] if factors["dense"] != "none" else []
    if levels["reranker"][factors["reranker"]]:
        models.append(levels["reranker"][factors["reranker"]])
    for model in dict.fromkeys(models):
        needs += [f"embed|{model}|{chunker}", f"queries|{model}"]
    if factors["lexical"] != "none":
        tokenizer = factors["lexical"].split("-")[0]
        needs += [f"tokens|{tokenizer}|{chunker}", f"bm25|{chunker}|{factors['lexical']}"]
    return needs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), required=True)
    parser.add_argument("--queries", type=int, default=600, help="tuning and held-back queries each (seeded sample)")
    parser.add_argument("--limit", type=int, default=None, help="score only this many configs (a smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/search-grid-<set>.json")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "evolve" / "bench-search-grid")
    args = parser.parse_args()
    levels = SETS[args.set]
    if args.set == "scifact":
        tune, heldout = load_evalset(DATA / "scifact", "train"), load_evalset(DATA / "scifact")
    else:
        tune, heldout = tune_and_heldout(DATA / "korquad-v1-dev")
    tune, heldout = tune.sample(args.queries, seed=0), heldout.sample(args.queries, seed=0)
    out = args.out or RESULTS / f"search-grid-{args.set}.json"
    table: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    table.update({"set": args.set, "metric": METRIC, "tune_queries": len(tune.queries),
                  "heldout_queries": len(heldout.queries), "documents": len(tune.corpus),
                  "factors": {"chunker": list(levels["chunker"]), "dense": list(levels["dense"]),
                              "lexical": list(levels["lexical"]), "fusion": ["none", *FUSIONS],
                              "reranker": list(levels["reranker"])}})
    resources: dict[str, float] = table.setdefault("resources", {})
    done = {json.dumps(c["factors"], sort_keys=True): c for c in table.get("configs", [])}
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / f"{args.set}-embeddings.sqlite"
    if not done:
        cache.unlink(missing_ok=True)  # costs are measured cold
    components = Components(cache)
    configs = grid(levels)[:args.limit]
    # resources first, in a fixed order, each timed on its own (cold): chunking, tokens + BM25, embeddings
    for factors in configs:
        key = json.dumps(factors, sort_keys=True)
        if key in done:
            continue
        config = config_of(factors, levels)
        retriever = Retriever(config, components)
        retriever.build(tune.corpus)
        log = retriever.build_log
        paid = {f"chunk|{factors['chunker']}": log.seconds.get("chunk")}
        if factors["dense"] != "none":
            paid[f"embed|{factors['dense']}|{factors['chunker']}"] = log.seconds.get("embed_chunks", 0.0) \
                if log.counts.get("chunk_embeddings_computed") else None
        if factors["lexical"] != "none":
            tokenizer = factors["lexical"].split("-")[0]
            paid[f"tokens|{tokenizer}|{factors['chunker']}"] = log.seconds.get("tokenize_chunks")
            paid[f"bm25|{factors['chunker']}|{factors['lexical']}"] = log.seconds.get("index_bm25")
        for name, seconds in paid.items():
            if seconds is not None and name not in resources:
                resources[name] = round(seconds, 3)
        queries_log = StageLog()
        started = time.perf_counter()
        rerank_model = levels["reranker"][factors["reranker"]]
        if rerank_model:  # the reranker's passages: its model over the whole chunking (what a cold cache pays)
            resource = f"embed|{rerank_model}|{factors['chunker']}"
            if resource not in resources:
                embed_started = time.perf_counter()
                components.embedder(levels["dense"][rerank_model]).embed([c.text for c in retriever.chunks], "passage")
                resources[resource] = round(time.perf_counter() - embed_started, 3)
        for model in dict.fromkeys(([factors["dense"]] if factors["dense"] != "none" else [])
                                   + ([rerank_model] if rerank_model else [])):
            if f"queries|{model}" not in resources:
                embed_started = time.perf_counter()
                components.embedder(levels["dense"][model]).embed([q.text for q in tune.queries], "query")
                resources[f"queries|{model}"] = round(time.perf_counter() - embed_started, 3)
        started = time.perf_counter()
        rows = score(search_run(retriever, tune.queries, queries_log), tune.qrels, (METRIC,))
        evaluate_s = time.perf_counter() - started
        held = score(search_run(retriever, heldout.queries), heldout.qrels, (METRIC,))
        entry = {"id": len(done), "factors": factors, "needs": needs_of(factors, levels), "evaluate_s": round(evaluate_s, 3),
                 "tune": round(sum(r[METRIC] for r in rows) / len(rows), 5),
                 "heldout": round(sum(r[METRIC] for r in held) / len(held), 5)}
        done[key] = entry
        table["configs"] = list(done.values())
        out.write_text(json.dumps(table, indent=1))
        print(f"{len(done)}/{len(configs)} {config.name}: tune {entry['tune']:.4f} heldout {entry['heldout']:.4f} "
              f"evaluate {evaluate_s:.1f} s", flush=True)
    missing = {n for c in done.values() for n in c["needs"]} - set(resources)
    print(f"grid of {len(done)} configs; resources {len(resources)} (missing costs: {sorted(missing) or 'none'}); "
          f"total cold compute {sum(resources.values()) + sum(c['evaluate_s'] for c in done.values()):.0f} s")


if __name__ == "__main__":
    main()
