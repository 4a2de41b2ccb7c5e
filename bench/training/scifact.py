"""Issue-18 benchmark: evolve's own models, trained on SciFact's train split, scored on its 300 test queries.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.training.scifact [--kinds adapter embedder reranker]
                                                        [--embedder-epochs 1] [--reranker-steps 200]

Each model is trained by the real command (`evolve train` in a subprocess, so its peak memory is its own) with the
best fixed config (MiniLM + BM25, weighted 0.5: test nDCG@10 0.728) mining the hard negatives; the test queries
are guarded (never trained on, by id and by text). Then every config is scored on the test split, overall and on
the unseen-positive subset (test queries none of whose relevant documents is relevant to any train query: a model
can gain on the others by learning which documents get cited), with the guard's one-sided paired permutation test
against the best fixed config. Embeddings go to a persistent cache (--cache), so a rerun pays only for what changed.
Writes bench/results/training.json and training.md after every config.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import RESULTS, ROOT
from evalsets import load_evalset
from experiments import score as score_run
from experiments import search_run
from guardrails import permutation_p
from pipelines import Components, PipelineConfig, Retriever, TrainedModelStore
from pipelines.trained import ID_PATTERN

SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
FIXED = ROOT / "bench" / "configs" / "scifact" / "hybrid-weighted.yaml"
MINILM = "all-MiniLM-L6-v2"


def uncited(qrels: dict[str, dict[str, int]], cited: set[str]) -> set[str]:
    """Queries of ``qrels`` none of whose positives is in ``cited``."""
    return {q for q, rels in qrels.items() if not {d for d, g in rels.items() if g > 0} & cited}


def unseen_subset(folder: Path) -> set[str]:
    """Test queries none of whose positives is a positive of any train query."""
    train, test = load_evalset(folder, "train"), load_evalset(folder, "default")
    return uncited(test.qrels, {d for rels in train.qrels.values() for d, g in rels.items() if g > 0})


def train(kind: str, base: str, project: Path, env: dict[str, str], *extra: str) -> dict:
    """`evolve train` as a user runs it; returns the stored model's manifest."""
    store = TrainedModelStore(project / ".evolve" / "models")
    command = [sys.executable, "-m", "agent.cli", "train", "--kind", kind, "--base", base, "--train-split",
               str(SCIFACT), "--negatives-from", str(FIXED), "--project-dir", str(project), *extra]
    print("$", " ".join(command[2:]), flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=ROOT, text=True, capture_output=True)
    print(result.stdout[-3000:], result.stderr[-2000:], flush=True)
    if result.returncode != 0:
        raise SystemExit(f"evolve train --kind {kind} failed ({result.returncode})")
    named = [m.group(0) for m in ID_PATTERN.finditer(result.stdout)]  # the id the command says to use
    if not named:
        raise SystemExit(f"evolve train --kind {kind} named no model")
    manifest = store.get(named[-1]).manifest  # (a rerun with the same inputs names the stored model again)
    manifest["command_seconds"] = round(time.perf_counter() - started, 1)
    return manifest


def config(name: str, dense: str | None, fusion_weight: float | None = 0.5, reranker: dict | None = None
           ) -> PipelineConfig:
    data = {"name": name, "fusion": {"kind": "none"}}
    if dense:
        data["dense"] = {"model": dense}
    if fusion_weight is not None:
        data.update(lexical={"tokenizer": "english"}, fusion={"kind": "weighted", "dense_weight": fusion_weight})
    if reranker:
        data["reranker"] = reranker
    return PipelineConfig.model_validate(data)


def score(cfg: PipelineConfig, components: Components, test, unseen: set[str]) -> dict:
    started = time.perf_counter()
    retriever = Retriever(cfg, components).build(test.corpus)
    built = time.perf_counter() - started
    rows = score_run(search_run(retriever, test.queries), test.qrels, ("ndcg@10",))
    per_query = {r["query_id"]: r["ndcg@10"] for r in rows}
    return {"config": cfg.name, "yaml": cfg.to_yaml(), "ndcg@10": float(np.mean(list(per_query.values()))),
            "unseen_ndcg@10": float(np.mean([v for q, v in per_query.items() if q in unseen])),
            "build_seconds": round(built, 1), "seconds": round(time.perf_counter() - started, 1),
            "per_query": per_query}


def compare(result: dict, fixed: dict, unseen: set[str]) -> dict:
    out = {}
    for label, keep in (("overall", lambda q: True), ("unseen", lambda q: q in unseen)):
        ids = [q for q in fixed["per_query"] if keep(q)]
        mine = np.array([result["per_query"][q] for q in ids])
        theirs = np.array([fixed["per_query"][q] for q in ids])
        out[label] = {"n": len(ids), "difference": round(float(mine.mean() - theirs.mean()), 4),
                      "p_better_than_fixed": round(permutation_p(mine, theirs), 4)}
    return out


def markdown(out: dict) -> str:
    lines = ["# Model evolution on SciFact: trained on the train split, scored on the 300 test queries", "",
             f"Unseen-positive subset: {out['unseen_queries']} test queries. Test: one-sided paired sign-flip "
             f"permutation test against the best fixed config ({out['fixed']}).", "",
             "| config | nDCG@10 | unseen nDCG@10 | vs fixed (overall) | p | vs fixed (unseen) | p |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in out["configs"]:
        c = r.get("vs_fixed") or {}
        o, u = c.get("overall", {}), c.get("unseen", {})
        lines.append(f"| {r['config']} | {r['ndcg@10']:.3f} | {r['unseen_ndcg@10']:.3f} | "
                     f"{o.get('difference', 0):+.3f} | {o.get('p_better_than_fixed', '-')} | "
                     f"{u.get('difference', 0):+.3f} | {u.get('p_better_than_fixed', '-')} |")
    reranked = [r for r in out["configs"] if r.get("vs_without_reranker")]
    if reranked:
        lines += ["", "| reranked config | vs the same without the reranker | overall | p | unseen | p |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in reranked:
            w = r["vs_without_reranker"]
            lines.append(f"| {r['config']} | {w['config']} | {w['overall']['difference']:+.3f} | "
                         f"{w['overall']['p_better_than_fixed']} | {w['unseen']['difference']:+.3f} | "
                         f"{w['unseen']['p_better_than_fixed']} |")
    lines += ["", "| trained model | base | examples | steps | training s | command s | peak MB | device |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kind, m in out["trained"].items():
        t = m.get("training", {})
        lines.append(f"| {m['id']} ({kind}) | {m['base_model']} | {m['data']['examples']} "
                     f"({m['data']['negatives']} hard negatives) | {t.get('steps')} | {t.get('seconds')} | "
                     f"{m.get('command_seconds')} | {t.get('peak_memory_mb')} | {t.get('device')} |")
    for kind, m in out["trained"].items():
        v = m.get("training", {}).get("validation")
        if v and "curve" in v:
            lines.append(f"\n{m['id']} ({kind}): {v['epochs']:g} epochs chosen on {v['examples']} held-out train "
                         f"queries whose positives no other train query has (dense nDCG@10 {v['before']:.3f} before "
                         f"training, {v['best']:.3f} at best; curve "
                         f"{', '.join(f'{e:g}: {x:.3f}' for e, x in v['curve'])}).")
    return "\n".join(lines) + "\n"


def save(out: dict, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    slim = {**out, "configs": [{k: v for k, v in r.items() if k != "per_query"} for r in out["configs"]]}
    (RESULTS / f"{stem}.json").write_text(json.dumps(slim, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=["adapter", "embedder", "reranker"])
    parser.add_argument("--project", type=Path, default=Path.home() / ".cache" / "evolve" / "bench-training")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "evolve" / "bench-embeddings.sqlite")
    parser.add_argument("--embedder-epochs", type=float, default=1.0)
    parser.add_argument("--embedder-batch", type=int, default=32)
    parser.add_argument("--reranker-steps", type=int, default=200)
    parser.add_argument("--reranker-base", help="model the cross-encoder starts from (default: the embedder trained "
                                                "in this run, else MiniLM), e.g. a trained:embedder-... id")
    parser.add_argument("--first-stages", nargs="+", default=["dense", "fine-tuned"],
                        choices=["dense", "fixed", "fine-tuned"],
                        help="first stages the reranker re-scores (top 50, blend 0.5): MiniLM dense, the fixed "
                             "config, the fine-tuned embedder + BM25")
    parser.add_argument("--out", default="training")
    args = parser.parse_args()
    args.project.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "EVOLVE_EMBEDDING_CACHE": str(args.cache),
           "EVOLVE_TRAINED_MODELS": str(args.project / ".evolve" / "models"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    os.environ.update(env)
    test, unseen = load_evalset(SCIFACT, "default"), unseen_subset(SCIFACT)
    components = Components(args.cache)
    out = {"fixed": "MiniLM + BM25 english, weighted 0.5", "unseen_queries": len(unseen), "configs": [],
           "trained": {}}

    def scored(cfg: PipelineConfig, without: str | None = None) -> dict:
        """Score ``cfg``; against the fixed config, and against ``without`` (the same config without its reranker)."""
        print(f"scoring {cfg.name} ...", flush=True)
        result = score(cfg, components, test, unseen)
        if out["configs"]:
            result["vs_fixed"] = compare(result, out["configs"][0], unseen)
        if without is not None:
            first = next(r for r in out["configs"] if r["config"] == without)
            result["vs_without_reranker"] = {"config": without, **compare(result, first, unseen)}
        out["configs"].append(result)
        print(json.dumps({k: v for k, v in result.items() if k not in ("per_query", "yaml")}), flush=True)
        save(out, args.out)
        return result

    scored(config("fixed: MiniLM + BM25 weighted", MINILM))
    scored(config("MiniLM dense", MINILM, None))
    if "adapter" in args.kinds:
        adapter = train("adapter", MINILM, args.project, env, "--validation-share", "0")
        out["trained"]["adapter"] = adapter
        scored(config("adapter dense", adapter["id"], None))
        scored(config("adapter + BM25 weighted", adapter["id"]))
        chosen = train("adapter", MINILM, args.project, env)  # epochs chosen on held-out documents (the default)
        out["trained"]["adapter, epochs chosen"] = chosen
        epochs = chosen["settings"]["epochs"]
        scored(config(f"adapter, {epochs:g} epochs chosen, dense", chosen["id"], None))
        scored(config(f"adapter, {epochs:g} epochs chosen, + BM25 weighted", chosen["id"]))
    embedder = None
    if "embedder" in args.kinds:
        embedder = train("embedder", MINILM, args.project, env, "--epochs", str(args.embedder_epochs),
                         "--batch-size", str(args.embedder_batch), "--max-seq-length", "256")
        out["trained"]["embedder"] = embedder
        scored(config("fine-tuned dense", embedder["id"], None))
        scored(config("fine-tuned + BM25 weighted", embedder["id"]))
    if "reranker" in args.kinds:
        base = args.reranker_base or (embedder["id"] if embedder else MINILM)
        reranker = train("reranker", base, args.project, env, "--max-steps", str(args.reranker_steps),
                         "--max-seq-length", "256")
        out["trained"]["reranker"] = reranker
        rerank = {"kind": "cross-encoder", "model": reranker["id"], "top_n": 50, "blend": 0.5}
        tuned = embedder["id"] if embedder else (base if base.startswith("trained:embedder-") else None)
        if "dense" in args.first_stages:
            scored(config("MiniLM dense + reranker (top 50, blend 0.5)", MINILM, None, rerank), "MiniLM dense")
        if "fixed" in args.first_stages:
            scored(config("fixed + reranker (top 50, blend 0.5)", MINILM, 0.5, rerank),
                   "fixed: MiniLM + BM25 weighted")
        if "fine-tuned" in args.first_stages and tuned:
            if not any(r["config"] == "fine-tuned + BM25 weighted" for r in out["configs"]):
                scored(config("fine-tuned + BM25 weighted", tuned))
            scored(config("fine-tuned + BM25 weighted + reranker", tuned, 0.5, rerank), "fine-tuned + BM25 weighted")
    print(markdown(out))


if __name__ == "__main__":
    main()
