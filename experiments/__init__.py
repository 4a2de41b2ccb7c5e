"""Experiments: metrics, evaluation of a pipeline on an evaluation set (Optuna studies land here next)."""

from experiments.evaluate import EvalResult, evaluate
from experiments.metrics import DEFAULT_METRICS, mean_scores, mrr_at_k, ndcg_at_k, recall_at_k, score_query

__all__ = ["DEFAULT_METRICS", "EvalResult", "evaluate", "mean_scores", "mrr_at_k", "ndcg_at_k", "recall_at_k",
           "score_query"]
