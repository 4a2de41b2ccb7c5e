"""Issue-18 benchmark, SciFact: what a query adapter gains on cited documents it costs on new ones.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.training.tradeoff [--splits 3] [--seeds 5] [--ranks 0 8]

SciFact's test queries often cite a document some train query cites (196 of 300). An adapter trained longer
learns which documents get cited: that lifts the whole test split and does nothing for queries about documents
no train query cites (the unseen-positive subset, 104 queries). This script measures that trade-off in two parts.

1. **Validation only (no test query).** The train split is cut at random into 80% that trains and 20% that
   scores, `--splits` times. On each cut a full-rank adapter on MiniLM (hard negatives mined by the fixed
   config) trains for each of `--epochs` and is scored with BM25 (weighted 0.5, the fixed config's fusion) on the
   20% overall and on those of its queries whose positives no training query has. Plot: both against epochs.
2. **Test.** The adapter as `evolve train` makes it by default (epochs chosen on held-out documents), at each rank
   of `--ranks` (0: full) and seeds 0..`--seeds`-1, plus the 20-epoch adapter, each + BM25 weighted 0.5, scored
   on the 300 test queries against the fixed config (MiniLM + BM25 weighted 0.5): one-sided paired permutation
   p per row, and Holm's step-down over the rows of each subset (the family-wise error over this table).

Writes bench/results/training-tradeoff.{json,md,png} and logs them to MLflow (experiment evolve-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import replace
from pathlib import Path

from bench import ROOT
from bench.training.scifact import (
    FIXED,
    MINILM,
    RESULTS,
    SCIFACT,
    compare,
    config,
    score,
    train,
    uncited,
    unseen_subset,
)
from evalsets import EvalSet, load_evalset
from experiments.training import LeakGuard, TrainSettings, assemble, from_split, mine_negatives, train_model
from pipelines import Components, Retriever, TrainedModelStore, load_config

STEM = "training-tradeoff"


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at any level, no independence assumed)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def validation_cut(train_set: EvalSet, seed: int) -> tuple[set[str], EvalSet]:
    """(query ids that train, the held-out 20% as an evaluation set): a random cut of the train split."""
    ids = sorted(q.query_id for q in train_set.queries)
    random.Random(seed).shuffle(ids)
    held = set(ids[:len(ids) // 5])
    return set(ids) - held, replace(train_set, queries=[q for q in train_set.queries if q.query_id in held],
                                    qrels={q: r for q, r in train_set.qrels.items() if q in held})


def epoch_curves(args: argparse.Namespace, components: Components, store: TrainedModelStore) -> list[dict]:
    """Part 1: per cut, the fixed config and the adapter after each epoch count, on the held-out 20%."""
    train_set = load_evalset(SCIFACT, "train")
    examples, corpus = from_split(SCIFACT)
    miner = Retriever(load_config(FIXED), components).build(corpus)
    cuts = []
    for cut in range(args.splits):
        fit_ids, held = validation_cut(train_set, cut)
        fit = [e for e in examples if e.query_id.split(":", 1)[1] in fit_ids]
        data = assemble([(fit, corpus)], LeakGuard.for_evalsets([SCIFACT]))
        data.examples = mine_negatives(data.examples, miner, per_query=7)
        cited = {d for e in fit for d in e.positives}
        new = uncited(held.qrels, cited)
        fixed = score(config("fixed", MINILM), components, held, new)
        points = [{"epochs": 0, "ndcg@10": fixed["ndcg@10"], "unseen_ndcg@10": fixed["unseen_ndcg@10"]}]
        for epochs in args.epochs:
            model = train_model("adapter", MINILM, data, TrainSettings(epochs=epochs, validation_share=0, seed=cut),
                                components, store).model.model_id
            result = score(config(f"adapter {epochs:g} epochs + BM25", model), components, held, new)
            points.append({"epochs": epochs, "ndcg@10": result["ndcg@10"],
                           "unseen_ndcg@10": result["unseen_ndcg@10"],
                           "vs_fixed": compare(result, fixed, new)})
            print(f"cut {cut}, {epochs:g} epochs: {result['ndcg@10']:.4f} / unseen {result['unseen_ndcg@10']:.4f}",
                  flush=True)
        cuts.append({"cut": cut, "train_queries": len(fit), "held_out": len(held.queries), "unseen": len(new),
                     "points": points})
    return cuts


def test_rows(args: argparse.Namespace, components: Components, env: dict[str, str]) -> list[dict]:
    """Part 2: adapters as `evolve train` makes them, + BM25, on the test split against the fixed config."""
    test, unseen = load_evalset(SCIFACT, "default"), unseen_subset(SCIFACT)
    fixed = score(config("fixed: MiniLM + BM25 weighted", MINILM), components, test, unseen)
    rows = [fixed]
    runs = [(rank, seed, ()) for rank in args.ranks for seed in range(args.seeds)]
    runs.append((0, 0, ("--epochs", "20", "--validation-share", "0")))
    for rank, seed, extra in runs:
        flags = ("--seed", str(seed), *(("--rank", str(rank)) if rank else ()), *extra)
        manifest = train("adapter", MINILM, args.project, env, *flags)
        epochs = manifest["settings"]["epochs"]
        how = "20 epochs" if extra else f"{epochs:g} epochs chosen"
        name = f"adapter {'rank ' + str(rank) if rank else 'full'}, seed {seed}, {how} + BM25"
        result = score(config(name, manifest["id"]), components, test, unseen)
        result.update(model=manifest["id"], rank=rank or None, seed=seed, epochs=epochs,
                      vs_fixed=compare(result, fixed, unseen))
        rows.append(result)
        print(json.dumps({k: result[k] for k in ("config", "ndcg@10", "unseen_ndcg@10", "vs_fixed")}), flush=True)
    return with_holm(rows)


def with_holm(rows: list[dict]) -> list[dict]:
    """``rows`` (the fixed config first) with Holm-adjusted p-values over the others, per subset."""
    for subset in ("overall", "unseen"):
        adjusted = holm([r["vs_fixed"][subset]["p_better_than_fixed"] for r in rows[1:]])
        for row, p in zip(rows[1:], adjusted):
            row["vs_fixed"][subset]["p_holm"] = round(p, 4)
    return rows


def test_table(rows: list[dict]) -> list[str]:
    """The markdown table of test rows against the first (the fixed config): p and Holm-adjusted p per subset."""
    lines = ["| config | nDCG@10 | p | p (Holm) | unseen nDCG@10 | p | p (Holm) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    fixed = rows[0]
    lines.append(f"| {fixed['config']} | {fixed['ndcg@10']:.3f} | - | - | {fixed['unseen_ndcg@10']:.3f} | - | - |")
    for r in rows[1:]:
        o, u = r["vs_fixed"]["overall"], r["vs_fixed"]["unseen"]
        lines.append(f"| {r['config']} | {r['ndcg@10']:.3f} | {o['p_better_than_fixed']} | {o['p_holm']} | "
                     f"{r['unseen_ndcg@10']:.3f} | {u['p_better_than_fixed']} | {u['p_holm']} |")
    return lines


def plot(cuts: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, key, title in ((axes[0], "ndcg@10", "all held-out train queries"),
                             (axes[1], "unseen_ndcg@10", "those whose positives no training query cites")):
        for cut in cuts:
            xs = [p["epochs"] for p in cut["points"][1:]]
            axis.plot(xs, [p[key] for p in cut["points"][1:]], marker="o", label=f"cut {cut['cut']}: adapter + BM25")
            axis.axhline(cut["points"][0][key], linestyle="--", linewidth=0.8, color=axis.lines[-1].get_color())
        axis.set_xscale("log")
        axis.set_xlabel("epochs (log)")
        axis.set_title(title, fontsize=10)
    axes[0].set_ylabel("nDCG@10 on the held-out 20% (dashed: fixed config)")
    axes[0].legend(fontsize=8)
    figure.suptitle("SciFact train split, 3 random 80/20 cuts: longer training lifts cited documents, not new ones")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown(out: dict) -> str:
    lines = ["# SciFact: what a query adapter gains on cited documents it costs on new ones", "",
             "## Validation (random 80/20 cuts of the train split; no test query)", "",
             "nDCG@10 of the adapter + BM25 (weighted 0.5) on the held-out 20%: all / queries whose positives no "
             "training query cites. Epoch 0 is the fixed config.", "",
             "| epochs | " + " | ".join(f"cut {c['cut']} ({c['held_out']} / {c['unseen']} queries)"
                                        for c in out["cuts"]) + " |",
             "| --- |" + " --- |" * len(out["cuts"])]
    for i, point in enumerate(out["cuts"][0]["points"]):
        cells = [f"{c['points'][i]['ndcg@10']:.3f} / {c['points'][i]['unseen_ndcg@10']:.3f}" for c in out["cuts"]]
        lines.append(f"| {point['epochs']:g} | " + " | ".join(cells) + " |")
    lines += ["", f"## Test (300 queries; unseen-positive subset {out['unseen_queries']})", "",
              "Against the fixed config (MiniLM + BM25 english, weighted 0.5): one-sided paired permutation p, and "
              "Holm-adjusted over the rows below for each subset.", "", *test_table(out["test"])]
    return "\n".join(lines) + "\n"


def bench_setup(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, dict[str, str], Components,
                                                          TrainedModelStore]:
    """The training benches' shared options (project, embedding cache, MLflow) parsed, and this process and the
    `evolve train` it starts pointed at them: (args, the children's environment, components, model store)."""
    parser.add_argument("--project", type=Path, default=Path.home() / ".cache" / "evolve" / "bench-training")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "evolve" / "bench-embeddings.sqlite")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}")
    args = parser.parse_args()
    args.project.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "EVOLVE_EMBEDDING_CACHE": str(args.cache),
           "EVOLVE_TRAINED_MODELS": str(args.project / ".evolve" / "models"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    os.environ.update(env)
    return args, env, Components(args.cache), TrainedModelStore(args.project / ".evolve" / "models")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=3, help="random 80/20 cuts of the train split")
    parser.add_argument("--epochs", type=float, nargs="+", default=[1, 2, 3, 5, 10, 20])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per rank in the test part")
    parser.add_argument("--ranks", type=int, nargs="+", default=[0, 8], help="adapter ranks (0: full matrix)")
    args, env, components, store = bench_setup(parser)
    out: dict = {"fixed": "MiniLM + BM25 english, weighted 0.5", "unseen_queries": len(unseen_subset(SCIFACT)),
                 "cuts": epoch_curves(args, components, store)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(out["cuts"], RESULTS / f"{STEM}.png")
    out["test"] = test_rows(args, components, env)
    metrics = {}
    for r in out["test"][1:]:
        key = f"{'rank' + str(r['rank']) if r['rank'] else 'full'}.seed{r['seed']}.e{r['epochs']:g}"
        metrics.update({f"{key}.ndcg10": r["ndcg@10"], f"{key}.unseen_ndcg10": r["unseen_ndcg@10"]})
    publish(out, STEM, markdown(out), args.tracking_uri, metrics)


def publish(out: dict, stem: str, text: str, tracking_uri: str, metrics: dict[str, float],
            params: dict | None = None) -> None:
    """Writes ``bench/results/<stem>.{json,md}`` (per-query scores left out) and logs them, the metrics, the params
    and a ``<stem>.png`` when there is one to MLflow (experiment evolve-bench)."""
    slim = {**out, "test": [{k: v for k, v in r.items() if k != "per_query"} for r in out["test"]]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(slim, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("evolve-bench")
    with mlflow.start_run(run_name=stem):
        mlflow.log_params(params or {})
        mlflow.log_metrics(metrics)
        for path in (RESULTS / f"{stem}.{suffix}" for suffix in ("png", "md", "json")):
            if path.is_file():
                mlflow.log_artifact(str(path))


if __name__ == "__main__":
    main()
