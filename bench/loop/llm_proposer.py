"""Issue-21 benchmark: does the LLM proposer earn its place? evolve's loop replayed on the search grids with the
heuristic proposer and with the LLM proposer, at the same budgets and seeds (bench/loop/replay.py).

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m bench.loop.llm_proposer [--sets korquad scifact] [--seeds 3]
        [--budgets 0.4] [--proposers heuristic llm auto] [--out loop-llm]
        [--model qwen2.5-coder-1.5b | --base-url URL]

``auto`` is `evolve start --proposer auto` (agent.loop.proposer_choice): the two take turns, then the one whose
iterations raised the best tuning score faster per compute second proposes, the other getting a look every few
iterations.

The LLM sees what the replayed loop knows (the best config's tuning score, the cost table, the budget left, the
spaces tried with their outcome), is asked with the whole search-space JSON schema as its response format (a
llama.cpp or vLLM server decodes by it) and is shown a schema error once; when it gives nothing usable the
heuristic proposes (as in the loop). The LLM's calls are cached in ~/.cache/evolve/bench-loop-llm.duckdb, so a
killed run resumes. Writes bench/results/loop-llm.json and .md: held-back reached per budget (mean and range over
seeds) for each proposer, the compute to come within 1% of the grid's pick, and how many LLM replies were valid.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench import RESULTS
from bench.llm.args import add_llm_arguments, bench_client
from bench.loop.replay import AutoProposer, LLMProposer, evolve_loop
from bench.search.methods import Grid, held_range, replay_arguments, summarize

CACHE = Path.home() / ".cache" / "evolve" / "bench-loop-llm.duckdb"


def report(out: dict, seeds: int) -> list[str]:
    lines = ["# The LLM proposer against the heuristic one, in evolve's loop replayed on the search grids", "",
             f"LLM: {out['model']}; {seeds} seeds; budgets as shares of each grid's compute. Selection on tuning "
             "queries only; held-back scores reported (bench/loop/llm_proposer.py). The LLM's own seconds are not charged "
             "to the budget (on the cluster a proposal from vLLM takes seconds; here, the last column).", "",
             "| set | budget | proposer | held-back reached: mean [min, max] | configs scored | compute to within 1% "
             "of the grid's pick: median (seeds) | LLM replies valid at once / after one retry / asked | LLM s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, data in out["sets"].items():
        for method, by_method in data["summary"]["methods"].items():
            counts = data["llm"].get(method.removeprefix("evolve_"), data["llm"])
            for row in by_method["budgets"]:
                held = held_range(row) or "-"
                within = row["to_within"]
                reach = "-" if within["median"] is None else f"{within['median']:.3f}"
                llm = (f"{counts['valid_first']} / {counts['valid']} / {counts['asked']}"
                       if method != "evolve_heuristic" else "")
                seconds = f"{counts['seconds']:.0f}" if method != "evolve_heuristic" else ""
                lines.append(f"| {name} | {row['fraction']:g} | {method.removeprefix('evolve_')} | {held} | "
                             f"{row['evaluated_mean']:.1f} | {reach} ({within['reached']}/{within['of']}) | "
                             f"{llm} | {seconds} |")
    return lines


def main() -> None:
    parser = replay_arguments(__doc__, seeds=3)
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.4])
    parser.add_argument("--proposers", nargs="+", default=["heuristic", "llm"], choices=["heuristic", "llm", "auto"])
    parser.add_argument("--out", default="loop-llm", help="results file stem in bench/results")
    add_llm_arguments(parser)
    args = parser.parse_args()
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    model = args.base_url or args.model
    path = RESULTS / f"{args.out}.json"
    out: dict = json.loads(path.read_text()) if path.is_file() else {}
    if out.get("model") != model:
        out = {"model": model, "sets": {}}  # another LLM's results are not mixed in
    with bench_client(args, CACHE) as client:
        for name in args.sets:
            grid = Grid(json.loads((RESULTS / f"search-grid-{name}.json").read_text()))
            total = grid.compute_s()
            runs: dict = {f"evolve_{who}": {} for who in args.proposers}
            counts = {who: {"asked": 0, "valid_first": 0, "valid": 0, "seconds": 0.0} for who in ("llm", "auto")}
            asked: list[list[str]] = []
            for budget in args.budgets:
                if "heuristic" in args.proposers:
                    runs["evolve_heuristic"][budget] = [evolve_loop(grid, budget * total, seed)
                                                        for seed in range(args.seeds)]
                for who in ("llm", "auto"):
                    if who not in args.proposers:
                        continue
                    runs[f"evolve_{who}"][budget] = []
                    for seed in range(args.seeds):
                        llm = LLMProposer(client)
                        proposer = AutoProposer(llm) if who == "auto" else llm
                        started = time.perf_counter()
                        runs[f"evolve_{who}"][budget].append(evolve_loop(grid, budget * total, seed,
                                                                         proposer=proposer, method=f"evolve_{who}"))
                        counts[who]["seconds"] += time.perf_counter() - started
                        for key in ("asked", "valid_first", "valid"):
                            counts[who][key] += getattr(llm, key)
                        if who == "auto":
                            asked.append(proposer.asked)
                        print(f"{name} budget {budget} seed {seed} ({who}): LLM {llm.valid_first}/{llm.valid}/"
                              f"{llm.asked} valid; " + (f"asked in turn: {proposer.asked}; " if who == "auto" else "")
                              + f"notes: {llm.notes[:3]}", flush=True)
            summary = summarize(grid, list(runs), args.budgets, range(args.seeds), runs=runs)
            out["sets"][name] = {"summary": summary, "llm": counts, "auto_asked": asked}
            path.write_text(json.dumps(out, indent=1))
            lines = report(out, args.seeds)
            (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(report(out, args.seeds)))


if __name__ == "__main__":
    main()
