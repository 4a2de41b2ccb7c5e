"""Foundation benchmark: BM25, dense, hybrid and hybrid + reranker on SciFact (test) and KorQuAD (shared half).

    .venv/bin/python -m bench.retrieval.foundation [--data ../shared/data] [--only korquad] [--limit N]

Runs every config under bench/configs/<set>/ with one shared Components (so embeddings and
indexes are reused across configs) and the project's embedding cache, then writes
bench/results/foundation.json and a markdown table bench/results/foundation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench import RESULTS, ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from evalsets import load_evalset
from experiments import evaluate
from pipelines import Components, load_config

SETS = {"scifact": ("scifact", "default"), "korquad": ("korquad-v1-dev", "default")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", nargs="*", default=list(SETS))
    parser.add_argument("--limit", type=int, default=None, help="seeded sample of queries per set")
    parser.add_argument("--cache", type=Path, default=ROOT / ".evolve" / "cache" / "embeddings.sqlite")
    parser.add_argument("--out", type=Path, default=RESULTS / "foundation")
    args = parser.parse_args()

    components = Components(args.cache)
    rows = []
    for key in args.only:
        folder, split = SETS[key]
        data = load_evalset(args.data / folder, split)
        if args.limit:
            data = data.sample(args.limit, seed=0)
        for config_path in sorted((ROOT / "bench" / "configs" / key).glob("*.yaml")):
            config = load_config(config_path)
            started = time.perf_counter()
            result = evaluate(data, config, components)
            row = {**result.summary(), "config_file": str(config_path.relative_to(ROOT)),
                   "wall_seconds": round(time.perf_counter() - started, 2)}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("evalset", "config", "ndcg@10", "mrr@10", "recall@100",
                                                    "wall_seconds")}), flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    lines = ["| set | config | queries | nDCG@10 | MRR@10 | Recall@10 | Recall@100 | search ms/query | wall s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['evalset']} | {r['config']} | {r['queries']} | {r['ndcg@10']:.4f} | {r['mrr@10']:.4f} | "
                     f"{r['recall@10']:.4f} | {r['recall@100']:.4f} | {r['search_ms_per_query']} | {r['wall_seconds']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
