"""Experiments: metrics, evaluation of a pipeline on an evaluation set, Optuna studies over a search space.

Public API::

    from experiments import evaluate, StudySpec, StudyRunner, decision_split, finished_trials

The study names (Optuna, SQLAlchemy) load on first use, so ``from experiments import evaluate`` stays light.
"""

from importlib import import_module
from typing import Any

from experiments.evaluate import EvalResult, evaluate
from experiments.metrics import DEFAULT_METRICS, mean_scores, mrr_at_k, ndcg_at_k, recall_at_k, score_query
from experiments.splits import DecisionSplit, decision_folds, decision_split, tune_and_heldout

_STUDY_NAMES = {
    "experiments.study": ("StudyPlaces", "StudyRunner", "StudySpec"),
    "experiments.storage": ("CLOSED_ATTR", "FINISHED", "SPEC_ATTR", "HeartbeatStorage", "sqlite_storage",
                            "finished_trials", "open_storage", "open_studies"),
}
_LAZY = {name: module for module, names in _STUDY_NAMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")


__all__ = ["CLOSED_ATTR", "DEFAULT_METRICS", "DecisionSplit", "EvalResult", "FINISHED", "HeartbeatStorage",
           "SPEC_ATTR", "StudyPlaces", "StudyRunner", "StudySpec", "decision_folds", "decision_split", "sqlite_storage",
           "evaluate", "finished_trials", "mean_scores", "mrr_at_k", "ndcg_at_k", "open_storage", "open_studies",
           "recall_at_k", "score_query", "tune_and_heldout"]
