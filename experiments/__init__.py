"""Experiments: metrics, evaluation of a pipeline on an evaluation set, Optuna studies over a search space.

Public API::

    from experiments import evaluate, load_space, StudySpec, StudyRunner, decision_split, finished_trials

Modules are private: other packages import from here.

The study names (Optuna, SQLAlchemy) load on first use, so ``from experiments import evaluate`` stays light.
"""

from importlib import import_module
from typing import Any

from experiments.answer_cost import AnswerCost, measure_answer_cost
from experiments.answers import ANSWER_METRICS, AnswerJudging, AnswerSpend, answer_queries
from experiments.calibration import (Agreement, Calibration, CalibrationReport, CalibrationStore, CalibrationStoreBusy,
                                     JudgedItem, LabelledItem, agreement, calibrate, judge_items, read_labels)
from experiments.costs import EmbeddingCost, cost_table, embedding_cost
from experiments.durations import parse_duration
from experiments.evaluate import EvalResult, evaluate
from experiments.interleaving import CANDIDATE, CHAMPION, Pick, SignTest, credit, preference, sign_test, team_draft
from experiments.runs import Run, retrieve, score, search_run
from experiments.judge import Judge, mean_score
from experiments.metrics import (DEFAULT_METRICS, mean_scores, mrr_at_k, ndcg_at_k, parse_metric, recall_at_k,
                                 score_query)
from experiments.online import (InterleaveSummary, Rating, ShadowSummary, TrafficRecord, interleave_summary,
                                shadow_summary)
from experiments.serving_cost import latency_ms, p95
from experiments.short_answers import (CONTAINMENT, DECIDER, SHORT_ANSWER_METRICS, is_short_reference,
                                       score_short_answer)
from experiments.space import SearchSpace, SpaceError, describe_space, load_space, space_from_dict, space_json_schema
from experiments.splits import DecisionSplit, decision_folds, decision_split, tune_and_heldout
from experiments.tracking import StudyTracker, artifact_location, flatten, metric_key, sqlite_tracking_uri

_STUDY_NAMES = {
    "experiments.study": ("StudyPlaces", "StudyRunner", "StudySpec"),
    "experiments.storage": ("CLOSED_ATTR", "FINISHED", "SPEC_ATTR", "HeartbeatStorage", "sqlite_storage",
                            "finished_trials", "open_storage", "open_studies", "stored_spec"),
}
_LAZY = {name: module for module, names in _STUDY_NAMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")


__all__ = ["CANDIDATE", "CHAMPION", "InterleaveSummary", "Pick", "Rating", "ShadowSummary", "SignTest", "TrafficRecord",
           "credit", "interleave_summary", "preference", "shadow_summary", "sign_test", "team_draft",
           "AnswerCost", "measure_answer_cost", "CONTAINMENT", "DECIDER", "SHORT_ANSWER_METRICS", "is_short_reference", "score_short_answer",
           "ANSWER_METRICS", "Agreement", "AnswerJudging", "AnswerSpend", "CLOSED_ATTR", "Calibration",
           "CalibrationReport", "CalibrationStore", "CalibrationStoreBusy", "JudgedItem", "LabelledItem", "agreement",
           "calibrate", "judge_items", "read_labels", "DEFAULT_METRICS", "DecisionSplit",
           "EmbeddingCost", "cost_table", "embedding_cost",
           "EvalResult", "FINISHED", "HeartbeatStorage", "Judge", "SPEC_ATTR", "SearchSpace", "SpaceError", "StudyPlaces",
           "StudyRunner", "StudySpec", "StudyTracker", "answer_queries", "artifact_location", "decision_folds",
           "decision_split", "describe_space", "space_json_schema", "evaluate", "finished_trials", "flatten", "latency_ms", "load_space",
           "mean_score", "mean_scores", "metric_key", "mrr_at_k", "ndcg_at_k", "open_storage", "open_studies", "p95",
           "parse_duration", "parse_metric", "recall_at_k", "Run", "retrieve", "score", "search_run", "score_query", "space_from_dict",
           "sqlite_storage", "sqlite_tracking_uri", "stored_spec", "tune_and_heldout"]
