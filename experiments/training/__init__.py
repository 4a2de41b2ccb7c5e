"""Training evolve's own models: query adapters, fine-tuned embedders and cross-encoder rerankers.

Public API::

    from experiments.training import (LeakGuard, TrainingData, TrainSettings, assemble, from_split,
                                      from_synthesized, from_feedback, mine_negatives, train_model,
                                      validation_split)

A trainable kind is one private module here (``_adapter``, ``_embedder``, ``_reranker``) registering a
:class:`Trainer` in :data:`TRAINERS`; the models it writes are named and loaded through ``pipelines.trained``.
"""

from pipelines import import_kinds

from experiments.training.base import TRAINERS, Trainer, TrainSettings, batches, run_steps
from experiments.training.data import (SOURCES, LeakError, LeakGuard, TrainingData, TrainingExample, assemble,
                                       from_feedback, from_split, from_synthesized, mine_negatives, passage_text,
                                       validation_split)
from experiments.training.run import (TRAINING_EXPERIMENT, TrainingError, TrainingOutcome, fetch_trained_models,
                                      log_trained_model, peak_memory_mb, run_key, train_model, trained_ids)

import_kinds(__name__, __path__)

__all__ = ["SOURCES", "TRAINERS", "TRAINING_EXPERIMENT", "fetch_trained_models", "trained_ids", "LeakError", "LeakGuard", "TrainSettings", "Trainer", "TrainingData",
           "TrainingError", "TrainingExample", "TrainingOutcome", "assemble", "batches", "from_feedback",
           "from_split", "from_synthesized", "log_trained_model", "mine_negatives", "passage_text",
           "peak_memory_mb", "run_key", "run_steps", "train_model", "validation_split"]
