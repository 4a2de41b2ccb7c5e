"""The end of a study: its summary (best config on the held-back queries, trial and cache counts), the
files in the study's folder (best config, summary, held-back per-query results, plots) and the copy of
them that goes to the study's MLflow run."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from evalsets import EvalSet
from experiments.evaluate import EvalResult
from experiments.study_spec import StudySpec
from pipelines import PipelineConfig

UPLOADED = ("best_config.yaml", "summary.json", "heldout_per_query.jsonl")


def study_summary(study: optuna.Study, spec: StudySpec, tune: EvalSet, tune_queries: int, best: PipelineConfig,
                  heldout: EvalResult, heldout_set: EvalSet) -> dict[str, Any]:
    """Facts of a study with a complete trial: counts, the best tuning value, the best config's held-back scores."""
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    counts = [t.user_attrs.get("counts", {}) for t in finished]
    cached = sum(c.get("embeddings_cached", 0) for c in counts)
    computed = sum(c.get("embeddings_computed", 0) for c in counts)
    return {
        "study": spec.study_name, "evalset": spec.evalset, "metric": spec.metric,
        "trials_finished": len(finished), "trials_pruned": sum(t.state.name == "PRUNED" for t in trials),
        "trials_failed": sum(t.state.name == "FAIL" for t in trials), "failures": failure_reasons(trials),
        "tune_queries": tune_queries, "tune_split": tune.split,
        "best_tune_value": max(t.values[0] for t in trials if t.state.name == "COMPLETE"),
        "heldout_split": heldout_set.split, "heldout_queries": len(heldout_set.queries),
        "heldout": heldout.means, "heldout_search_ms_per_query": heldout.search_ms_per_query,
        "embedding_cache_fraction": cached / (cached + computed) if cached + computed else 1.0,
        "embeddings_cached": cached, "embeddings_computed": computed,
        "trial_seconds_total": sum((t.datetime_complete - t.datetime_start).total_seconds() for t in finished),
        "best_config": json.loads(best.model_dump_json()),
    }


def failure_reasons(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    """Why trials failed (the objective keeps each one's exception), most frequent first."""
    reasons = Counter(str(t.user_attrs.get("fail_reason", "unknown")).splitlines()[-1][:300]
                      for t in trials if t.state.name == "FAIL")
    return dict(reasons.most_common())


def write_report(folder: Path, study: optuna.Study, summary: dict[str, Any], best: PipelineConfig,
                 heldout: EvalResult, multi_objective: bool) -> Path:
    """Best config, summary, held-back per-query results and plots into ``folder``; returns the folder to upload."""
    (folder / "best_config.yaml").write_text(best.to_yaml(), encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    heldout.write_per_query(folder / "heldout_per_query.jsonl")
    plot_study(study, folder / "plots", summary["metric"], multi_objective)
    return upload_folder(folder)


def upload_folder(folder: Path) -> Path:
    """The study's files and plots, flat, in one folder for its MLflow run."""
    upload = folder / "upload"
    upload.mkdir(exist_ok=True)
    for name in UPLOADED:
        if (folder / name).exists():
            (upload / name).write_bytes((folder / name).read_bytes())
    for png in (folder / "plots").glob("*.png"):
        (upload / png.name).write_bytes(png.read_bytes())
    return upload


def plot_study(study: optuna.Study, plots: Path, metric: str, multi_objective: bool) -> None:
    """Optuna's plots as PNGs; a plot the study cannot have yet leaves a ``NAME.skipped.txt`` saying why."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    plots.mkdir(exist_ok=True)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    makers: dict[str, Callable[[], Any]] = {}
    if multi_objective:
        makers["pareto_front"] = lambda: ovm.plot_pareto_front(study, target_names=[metric, "search ms/query"])
    else:
        makers["optimization_history"] = lambda: ovm.plot_optimization_history(study)
        makers["param_importances"] = lambda: ovm.plot_param_importances(study)
        makers["intermediate_values"] = lambda: ovm.plot_intermediate_values(study)
    for name, make in makers.items():
        try:
            axes = make()
        except (ValueError, RuntimeError) as err:  # e.g. importances need 2+ complete trials
            (plots / f"{name}.skipped.txt").write_text(str(err))
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(9, 5)
        figure.tight_layout()
        figure.savefig(plots / f"{name}.png", dpi=100)
        plt.close(figure)
