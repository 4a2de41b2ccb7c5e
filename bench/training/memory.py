"""Issue-18 benchmark, SciFact: a memory of the train split's questions on top of the fixed config and adapters.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.training.memory [--splits 3] [--seeds 5] [--no-korquad]

A trained model of kind ``memory`` keeps each training question's vector (MiniLM) with the documents that answer
it; as a reranker it lifts the documents of remembered questions close to the query (pipelines/rerankers/_memory.py).
It gains where a test query asks about a document some train query cites (196 of 300) and, by construction, moves
nothing else. The adapters' gain on documents no train query cites (bench/training/tradeoff.py) is the other half.

1. **Validation only (no test query).** The train split is cut at random into 80% that is remembered and 20%
   that scores, `--splits` times (the cuts of training_tradeoff.py). For each threshold and blend the fixed config
   + memory is scored on the 20% overall and on those of its queries whose positives no remembered query has.
   Chosen: the highest mean overall nDCG@10 whose uncited mean is not below the fixed config's by more than 0.002.
2. **Test.** A memory of the whole train split (`evolve train --kind memory`), at the chosen setting, on the fixed
   config and on the adapters `evolve train` makes (full and rank 8, epochs chosen, seeds 0..`--seeds`-1) + BM25,
   against the fixed config on the 300 test queries: one-sided paired permutation p per row, Holm over the rows.

3. **KorQuAD, past questions** (`--korquad`, not the issue's synthesized-only target): a memory of the 2,431
   labelled tuning questions under e5-small on the champion (e5 + kiwi BM25), scored on the 1,042 held-back
   questions, with the calibrated threshold and with MiniLM's 0.8: why the threshold is calibrated per embedder.

Writes bench/results/training-memory.{json,md} and logs them to MLflow (experiment evolve-bench).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.training.scifact import MINILM, SCIFACT, compare, config, score, train, uncited, unseen_subset
from bench.training.tradeoff import bench_setup, publish, test_table, validation_cut, with_holm
from evalsets import load_evalset
from experiments.training import LeakGuard, TrainSettings, assemble, from_split, train_model
from pipelines import Components, TrainedModelStore
from pipelines.rerankers import memory_calibration

STEM = "training-memory"
THRESHOLDS = (None, 0.5, 0.6, 0.7, 0.8)
"""None: the memory's own threshold, calibrated on held-out training questions when it was trained."""
BLENDS = (0.3, 0.5, 0.7)
UNCITED_TOLERANCE = 0.002


def memory(model: str, threshold: float | None, blend: float) -> dict:
    return {"kind": "memory", "model": model, "threshold": threshold, "blend": blend, "top_n": 100}


def label(threshold: float | None, blend: float) -> str:
    return f"{'calibrated' if threshold is None else threshold}/{blend}"


def validation(args: argparse.Namespace, components: Components, store: TrainedModelStore) -> dict:
    """Part 1: thresholds x blends on random cuts of the train split; the choice and every cell."""
    train_set = load_evalset(SCIFACT, "train")
    examples, corpus = from_split(SCIFACT)
    guard = LeakGuard.for_evalsets([SCIFACT])
    cuts = []
    for cut in range(args.splits):
        fit_ids, held = validation_cut(train_set, cut)
        fit = [e for e in examples if e.query_id.split(":", 1)[1] in fit_ids]
        model = train_model("memory", MINILM, assemble([(fit, corpus)], guard), TrainSettings(), components,
                            store).model.model_id
        cited = {d for e in fit for d in e.positives}
        subset = uncited(held.qrels, cited)
        cells = {"fixed": score(config("fixed", MINILM), components, held, subset)}
        for threshold in THRESHOLDS:
            for blend in BLENDS:
                cells[label(threshold, blend)] = score(config("memory", MINILM, 0.5, memory(model, threshold, blend)),
                                                      components, held, subset)
        cuts.append({"cut": cut, "held_out": len(held.queries), "uncited": len(subset), "memory": model,
                     "calibration": memory_calibration(model),
                     "cells": {k: {"ndcg@10": round(v["ndcg@10"], 4), "unseen_ndcg@10": round(v["unseen_ndcg@10"], 4)}
                               for k, v in cells.items()}})
        print(json.dumps(cuts[-1]["cells"]), flush=True)
    mean = {key: {m: float(np.mean([c["cells"][key][m] for c in cuts])) for m in ("ndcg@10", "unseen_ndcg@10")}
            for key in cuts[0]["cells"]}
    floor = mean["fixed"]["unseen_ndcg@10"] - UNCITED_TOLERANCE
    chosen = max((k for k in mean if k != "fixed" and mean[k]["unseen_ndcg@10"] >= floor),
                 key=lambda k: mean[k]["ndcg@10"])
    threshold, blend = chosen.split("/")
    return {"cuts": cuts, "mean": mean,
            "chosen": {"threshold": None if threshold == "calibrated" else float(threshold), "blend": float(blend)}}


def test_rows(args: argparse.Namespace, components: Components, env: dict[str, str], chosen: dict) -> list[dict]:
    """Part 2: the whole train split remembered, on the fixed config and on adapters + BM25, on the test split."""
    test, unseen = load_evalset(SCIFACT, "default"), unseen_subset(SCIFACT)
    fixed = score(config("fixed: MiniLM + BM25 weighted", MINILM), components, test, unseen)
    mem = train("memory", MINILM, args.project, env)["id"]
    rerank = memory(mem, chosen["threshold"], chosen["blend"])
    rows = [fixed]

    def add(name: str, dense: str, **extra) -> None:
        result = score(config(name, dense, 0.5, rerank), components, test, unseen)
        result.update(memory=mem, vs_fixed=compare(result, fixed, unseen), **extra)
        rows.append(result)
        print(json.dumps({k: result[k] for k in ("config", "ndcg@10", "unseen_ndcg@10", "vs_fixed")}), flush=True)

    add("fixed + memory", MINILM)
    for rank in (0, 8):
        for seed in range(args.seeds):
            manifest = train("adapter", MINILM, args.project, env, "--seed", str(seed),
                             *(("--rank", str(rank)) if rank else ()))
            epochs = manifest["settings"]["epochs"]
            add(f"adapter {'rank ' + str(rank) if rank else 'full'}, seed {seed}, {epochs:g} epochs chosen + BM25 "
                f"+ memory", manifest["id"], model=manifest["id"], rank=rank or None, seed=seed, epochs=epochs)
    return with_holm(rows)


def korquad_rows(components: Components, store: TrainedModelStore) -> dict:
    """Part 3: the tuning half's labelled questions remembered, the champion re-scored on the held-back half."""
    from bench.training.korquad import CHAMPION, E5, KORQUAD
    from experiments import tune_and_heldout
    from experiments.training import TrainingData, TrainingExample
    from pipelines import PipelineConfig, load_config

    tune, held = tune_and_heldout(KORQUAD)
    examples = [TrainingExample(f"korquad-tune:{q.query_id}", q.text,
                                tuple(d for d, g in tune.qrels.get(q.query_id, {}).items() if g > 0), source="tune")
                for q in tune.queries]
    data = TrainingData([e for e in examples if e.positives], {d.doc_id: d for d in tune.corpus})
    model = train_model("memory", E5, data, TrainSettings(), components, store).model
    champion = load_config(CHAMPION)
    every = set(held.qrels)
    base = score(champion, components, held, every)
    rows = [{"config": f"champion ({champion.name})", "ndcg@10": base["ndcg@10"]}]
    for threshold in (None, 0.8):
        cfg = PipelineConfig.model_validate({**champion.model_dump(mode="json"), "name": "champion + memory",
                                             "reranker": {"kind": "memory", "model": model.model_id,
                                                          "threshold": threshold, "blend": 0.3}})
        result = score(cfg, components, held, every)
        rows.append({"config": f"champion + memory, threshold {threshold or 'calibrated'}",
                     "ndcg@10": result["ndcg@10"], **compare(result, base, every)["overall"]})
        print(json.dumps(rows[-1]), flush=True)
    return {"memory": model.model_id, "remembered": len(data.examples), "held_out": len(held.queries),
            "calibration": memory_calibration(model.model_id), "rows": rows}


def markdown(out: dict) -> str:
    v = out["validation"]
    lines = ["# SciFact: a memory of the train split's questions (trained model kind `memory`)", "",
             "## Validation (random 80/20 cuts of the train split; no test query)", "",
             "Fixed config + memory of the 80%, scored on the 20%: nDCG@10 all / on queries whose positives no "
             "remembered query cites, per cut and the mean. Chosen: the best mean overall whose uncited mean is within "
             f"{UNCITED_TOLERANCE} of the fixed config's. Calibrated thresholds (each cut's memory, on its own "
             "held-out questions): " + ", ".join(f"cut {c['cut']} {c['calibration']['threshold']}" for c in v["cuts"])
             + ".", "",
             "| threshold / blend | " + " | ".join(f"cut {c['cut']} ({c['held_out']} / {c['uncited']})"
                                                    for c in v["cuts"]) + " | mean |",
             "| --- |" + " --- |" * (len(v["cuts"]) + 1)]
    for key, m in v["mean"].items():
        cells = [f"{c['cells'][key]['ndcg@10']:.3f} / {c['cells'][key]['unseen_ndcg@10']:.3f}" for c in v["cuts"]]
        mark = " **chosen**" if key == label(v["chosen"]["threshold"], v["chosen"]["blend"]) else ""
        lines.append(f"| {key}{mark} | " + " | ".join(cells) + f" | {m['ndcg@10']:.3f} / {m['unseen_ndcg@10']:.3f} |")
    lines += ["", f"## Test (300 queries; unseen-positive subset {out['unseen_queries']})", "",
              f"Memory of the whole train split ({out['test'][1]['memory']}), threshold "
              f"{v['chosen']['threshold'] or 'calibrated (' + str(out['calibration']['threshold']) + ')'}, "
              f"blend {v['chosen']['blend']}, top 100. Against the fixed config (MiniLM + BM25 english, weighted 0.5): "
              "one-sided paired permutation p, and Holm-adjusted over the rows below for each subset.", "",
              *test_table(out["test"])]
    if out.get("korquad"):
        k = out["korquad"]
        lines += ["", "## KorQuAD: past questions (not synthesized-only)", "",
                  f"A memory of the {k['remembered']} labelled tuning questions under e5-small ({k['memory']}; "
                  f"calibrated threshold {k['calibration']['threshold']}), blend 0.3, on the champion, scored on "
                  f"the {k['held_out']} held-back questions; one-sided paired permutation p against the champion.",
                  "", "| config | nDCG@10 | difference | p |", "| --- | --- | --- | --- |"]
        for r in k["rows"]:
            lines.append(f"| {r['config']} | {r['ndcg@10']:.4f} | {r.get('difference', '-')} | "
                         f"{r.get('p_better_than_fixed', '-')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=3, help="random 80/20 cuts of the train split")
    parser.add_argument("--seeds", type=int, default=5, help="adapter seeds per rank in the test part")
    parser.add_argument("--korquad", action=argparse.BooleanOptionalAction, default=True,
                        help="also part 3, KorQuAD's tuning questions remembered under e5-small")
    args, env, components, store = bench_setup(parser)
    out: dict = {"fixed": "MiniLM + BM25 english, weighted 0.5", "unseen_queries": len(unseen_subset(SCIFACT)),
                 "validation": validation(args, components, store)}
    out["test"] = test_rows(args, components, env, out["validation"]["chosen"])
    out["calibration"] = memory_calibration(out["test"][1]["memory"])
    if args.korquad:
        out["korquad"] = korquad_rows(components, store)
    metrics = {f"row{i}.{key}": r[metric] for i, r in enumerate(out["test"])
               for key, metric in (("ndcg10", "ndcg@10"), ("unseen_ndcg10", "unseen_ndcg@10"))}
    publish(out, STEM, markdown(out), args.tracking_uri, metrics,
            {k: v if v is not None else "calibrated" for k, v in out["validation"]["chosen"].items()})

if __name__ == "__main__":
    main()
