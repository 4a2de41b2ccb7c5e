"""Issue-21 benchmark, part 2: search methods at equal compute against the exhaustive grid (bench/search/grid.py).

    .venv/bin/python -m bench.search.efficiency [--sets korquad scifact] [--seeds 10]

Each method is replayed against the grid's table (bench/search/methods.py): a cold cache at the start, each resource
(chunking, embedding the corpus with a model, a BM25 index) paid the first time, every new config's scoring paid,
selection on the tuning queries only, the selected config's held-back score reported. Methods: random search,
Optuna TPE over the five factors, greedy stage-by-stage search (AutoRAG's order: chunker, then retriever, fusion,
reranker), the cost-aware rule (cheap configs first, a cold embedding only when it fits the budget and its
estimate is promising) and evolve's loop with its heuristic proposer (bench/loop/replay.py). Writes
bench/results/search-efficiency.json and .md, a plot per set (search-efficiency-<set>.png), and logs them to
MLflow (experiment `evolve-bench`, mlruns/ of this checkout).
"""

from __future__ import annotations

import json

from bench import RESULTS, ROOT
from bench.loop.replay import evolve_loop
from bench.search.methods import METHODS, held_range, plot, replay_arguments, summarize

BUDGETS = (0.02, 0.05, 0.1, 0.2, 0.4, 1.0)


def honest_text(honest: dict | None) -> str:
    """The tune-honest floor in words (bench/search_methods.honest_floor)."""
    if not honest:
        return ""
    if honest["fraction"] is None:
        return "Selecting on tuning queries over whole groups, only the whole grid gets within 1%."
    return (f"Selecting on tuning queries over whole groups (every config a set of corpus embeddings allows), "
            f"nothing cheaper than {honest['fraction']:.3f} of the grid's compute ({', '.join(honest['embeddings'])}) "
            f"gets within 1% (target {honest['target']:.4f}; the cheaper sets' best-tune picks reach at most "
            f"{honest['best_cheaper_heldout']:.4f})")


def table_lines(summary: dict) -> list[str]:
    grid = summary["grid"]
    lines = [f"### {summary['set']}: {grid['configs']} configs, {grid['compute_s']:.0f} s of compute for the whole grid "
             f"(cold); the grid selects {json.dumps(grid['selected_factors'])}: tune {grid['selected_tune']:.4f}, "
             f"held-back {grid['selected_heldout']:.4f} (best held-back in the grid {grid['oracle_heldout']:.4f}). "
             f"Floor: no method can come within 1% of that held-back for less than "
             f"{summary['floor']['fraction']:.3f} of the grid's compute (the cheapest such config cold, "
             f"{json.dumps(summary['floor']['factors'])}). {honest_text(summary.get('honest_floor'))}", "",
             "| method | budget (share of the grid's compute) | held-back reached: mean [min, max] over seeds | "
             "configs scored | compute to stay within 1% of the grid's pick: median [min, max] (seeds) |",
             "| --- | --- | --- | --- | --- |"]
    for name, data in summary["methods"].items():
        for row in data["budgets"]:
            held = held_range(row) or "-"
            if row["with_selection"] < len(summary["seeds"]):
                held += f" ({row['with_selection']} of {len(summary['seeds'])} seeds fit anything)"
            within = row["to_within"]
            reach = ("-" if within["median"] is None else
                     f"{within['median']:.3f} [{within['min']:.3f}, {within['max']:.3f}]")
            lines.append(f"| {name} | {row['fraction']:g} | {held} | {row['evaluated_mean']:.1f} | {reach} "
                         f"({within['reached']}/{within['of']}) |")
    return lines


def main() -> None:
    parser = replay_arguments(__doc__, seeds=10)
    parser.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}")
    args = parser.parse_args()
    out: dict = {}
    lines = ["# Search efficiency: methods at equal compute against the exhaustive grid", "",
             "Replayed against each grid's table (bench/search/grid.py, bench/search/methods.py); compute is "
             "trial-seconds on a cold cache, as a share of what scoring the whole grid cost. Selection on tuning "
             "queries only; held-back scores reported.", ""]
    for name in args.sets:
        path = RESULTS / f"search-grid-{name}.json"
        if not path.is_file():
            print(f"{path} missing: run bench/search/grid.py --set {name} first")
            continue
        table = json.loads(path.read_text())
        summary = summarize(table, {**METHODS, "evolve_heuristic": evolve_loop}, BUDGETS, range(args.seeds))
        out[name] = summary
        picture = RESULTS / f"search-efficiency-{name}.png"
        plot(summary, str(picture), title=f"{name}: best held-back {table['metric']} vs compute")
        lines += table_lines(summary) + ["", f"![{name}](search-efficiency-{name}.png)", ""]
    (RESULTS / "search-efficiency.json").write_text(json.dumps(out, indent=1))
    (RESULTS / "search-efficiency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    import mlflow

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("evolve-bench")
    with mlflow.start_run(run_name="search-efficiency"):
        for name, summary in out.items():
            for method, data in summary["methods"].items():
                for row in data["budgets"]:
                    if row["heldout_mean"] is not None:
                        mlflow.log_metric(f"{name}.{method}.heldout_at_{row['fraction']:g}", row["heldout_mean"])
            mlflow.log_artifact(str(RESULTS / f"search-efficiency-{name}.png"))
        mlflow.log_artifact(str(RESULTS / "search-efficiency.md"))
        mlflow.log_artifact(str(RESULTS / "search-efficiency.json"))


if __name__ == "__main__":
    main()
