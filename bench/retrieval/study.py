"""Issue-5 acceptance: a 40-trial study per set, best config on held-back queries vs the best fixed config.

    .venv/bin/python -m bench.retrieval.study [--only scifact korquad] [--trials 40] [--data ../shared/data]

SciFact tunes on its train split and reports on test; KorQuAD tunes on a seeded 70% of its queries
and reports on the other 30%. The embedding cache is the project's, so embeddings from earlier
runs (bench/retrieval/foundation.py) count as reused; the summary says how many were computed here.
Writes bench/results/study-<set>.json and rewrites bench/results/study.md from them. Re-running a finished
study only re-scores its best config (and keeps the recorded study wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench import RESULTS, ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from agent.paths import ProjectPaths
from agent.progress import stage_lines
from experiments import StudyRunner, StudySpec, evaluate, load_space
from guardrails import paired_bootstrap_p
from pipelines import PipelineConfig, load_config

SETS = {"scifact": ("scifact", "bench/configs/scifact/hybrid-weighted.yaml"),
        "korquad": ("korquad-v1-dev", "bench/configs/korquad/hybrid-weighted.yaml")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", nargs="*", default=list(SETS))
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    args = parser.parse_args()

    out = RESULTS
    out.mkdir(parents=True, exist_ok=True)
    for key in args.only:
        folder, fixed_config = SETS[key]
        space = load_space(ROOT / "bench" / "spaces" / f"{key}.yaml")
        spec = StudySpec(study_name=f"bench-{key}-{args.trials}", evalset=str((args.data / folder).resolve()),
                         space=space.model_dump(mode="json"), metric=space.metric, n_trials=args.trials)
        paths = ProjectPaths.of(args.project_dir)  # the repo's own project: its cache and Optuna storage
        runner = StudyRunner(spec, paths.optuna_url(), paths.study_places())
        runner.stage_progress = stage_lines(lambda line: print(line, flush=True), f"{key} ")
        finished_before = runner.finished_count()
        started = time.perf_counter()
        runner.run(callbacks=[lambda study, trial: print(
            f"{key} trial {trial.number} {trial.state.name} {trial.values} "
            f"{trial.user_attrs.get('counts', {})}", flush=True)])
        study_seconds = time.perf_counter() - started
        summary = runner.finish()
        path = out / f"study-{key}.json"
        if finished_before >= args.trials and path.exists():  # a re-run of a finished study: keep its wall time
            previous = json.loads(path.read_text())
            study_seconds = previous.get("study_wall_seconds", previous.get("study_wall_seconds_this_run"))
        result = {**summary, "study_wall_seconds": study_seconds, "fixed_config": fixed_config,
                  **compare(runner, load_config(ROOT / fixed_config), spec.metric)}
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(row(key, result), flush=True)
    write_table(out)


def compare(runner: StudyRunner, fixed: PipelineConfig, metric: str) -> dict:
    """Best config vs the fixed one on the same queries, held-back and tuning, with a paired bootstrap p.

    The fixed config was picked by bench/retrieval/foundation.py on the held-back (test) queries, so on those
    it has a selection advantage the study does not; the tuning queries show what the study optimised.
    """
    best = runner.best_config()
    facts: dict = {}
    for split, evalset in (("heldout", runner.heldout), ("tune", runner.tune)):
        scores = {}
        for name, config in (("best", best), ("fixed", fixed)):
            result = evaluate(evalset, config, runner.components)
            facts[f"{name}_{split}"] = result.means
            scores[name] = np.array([r[metric] for r in sorted(result.per_query, key=lambda r: r["query_id"])])
        facts[f"{split}_difference"] = float(scores["best"].mean() - scores["fixed"].mean())
        facts[f"{split}_p_best_better"] = paired_bootstrap_p(scores["best"], scores["fixed"])
    return facts


def row(key: str, r: dict) -> str:
    def difference(split: str) -> str:  # results recorded before these comparisons existed lack them
        if f"{split}_difference" not in r:
            return "not measured"
        return f"{r[f'{split}_difference']:+.4f} (p={r[f'{split}_p_best_better']:.3f})"

    wall = r.get("study_wall_seconds", r.get("study_wall_seconds_this_run"))
    return (f"| {key} | {r['trials_finished']} ({r['trials_pruned']} pruned) | {r['tune_split']} "
            f"({r['tune_queries']} q) | {r['heldout_split']} ({r['heldout_queries']} q) | "
            f"{r['heldout']['ndcg@10']:.4f} | {r['fixed_heldout']['ndcg@10']:.4f} ({Path(r['fixed_config']).stem}) | "
            f"{difference('heldout')} | {difference('tune')} | {wall:.0f} | "
            f"{r['embedding_cache_fraction']:.3f} ({r['embeddings_computed']} computed) |")


def write_table(out: Path) -> None:
    """study.md from every study-<set>.json, so re-runs replace their row instead of adding one."""
    lines = ["| set | trials | tuned on | reported on | best config nDCG@10 | best fixed config nDCG@10 | "
             "best - fixed, held-back (paired bootstrap p) | best - fixed, tuning queries | study wall s | "
             "embeddings from cache |", "| --- " * 10 + "|"]
    for path in sorted(out.glob("study-*.json")):
        lines.append(row(path.stem.removeprefix("study-"), json.loads(path.read_text())))
    (out / "study.md").write_text("\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
