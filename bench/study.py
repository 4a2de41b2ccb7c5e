"""Issue-5 acceptance: a 40-trial study per set, best config on held-back queries vs the best fixed config.

    .venv/bin/python bench/study.py [--only scifact korquad] [--trials 40] [--data ../shared/data]

SciFact tunes on its train split and reports on test; KorQuAD tunes on a seeded 70% of its queries
and reports on the other 30%. The embedding cache is the project's, so embeddings from earlier
runs (bench/foundation.py) count as reused; the summary says how many were computed here.
Writes bench/results/study-<set>.json and appends the comparison to bench/results/study.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agent.progress import stage_lines  # noqa: E402
from experiments.evaluate import evaluate  # noqa: E402
from experiments.space import load_space  # noqa: E402
from experiments.study import StudyRunner, StudySpec, default_storage  # noqa: E402
from pipelines import load_config  # noqa: E402

SETS = {"scifact": ("scifact", "bench/configs/scifact/hybrid-weighted.yaml"),
        "korquad": ("korquad-v1-dev", "bench/configs/korquad/hybrid-weighted.yaml")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", nargs="*", default=list(SETS))
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    args = parser.parse_args()

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for key in args.only:
        folder, fixed_config = SETS[key]
        space = load_space(ROOT / "bench" / "spaces" / f"{key}.yaml")
        spec = StudySpec(study_name=f"bench-{key}-{args.trials}", evalset=str((args.data / folder).resolve()),
                         space=space.model_dump(mode="json"), metric=space.metric, n_trials=args.trials)
        runner = StudyRunner(spec, default_storage(args.project_dir), args.project_dir)
        runner.stage_progress = stage_lines(lambda line: print(line, flush=True), f"{key} ")
        started = time.perf_counter()
        runner.run(callbacks=[lambda study, trial: print(
            f"{key} trial {trial.number} {trial.state.name} {trial.values} "
            f"{trial.user_attrs.get('counts', {})}", flush=True)])
        study_seconds = time.perf_counter() - started
        summary = runner.finish()
        fixed = evaluate(runner.heldout, load_config(ROOT / fixed_config), runner.components)
        result = {**summary, "study_wall_seconds_this_run": study_seconds,
                  "fixed_config": fixed_config, "fixed_heldout": fixed.means}
        (out / f"study-{key}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        line = (f"| {key} | {summary['trials_finished']} ({summary['trials_pruned']} pruned) | "
                f"{summary['heldout_split']} ({summary['heldout_queries']} q) | {summary['heldout']['ndcg@10']:.4f} | "
                f"{fixed.means['ndcg@10']:.4f} ({Path(fixed_config).stem}) | {study_seconds:.0f} | "
                f"{summary['embedding_cache_fraction']:.3f} ({summary['embeddings_computed']} computed) |")
        table = out / "study.md"
        if not table.exists():
            table.write_text("| set | trials | report on | best config nDCG@10 | best fixed config nDCG@10 | "
                             "study wall s | embeddings from cache |\n| --- | --- | --- | --- | --- | --- | --- |\n")
        with table.open("a") as handle:
            handle.write(line + "\n")
        print(line, flush=True)


if __name__ == "__main__":
    main()
