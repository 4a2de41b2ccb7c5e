"""Evaluation sets: documents, queries and relevance judgements (the BEIR-style layout).

Public API::

    from evalsets import EvalSet, Document, Query, load_evalset, EvalSetError
"""

from evalsets.errors import EvalSetError
from evalsets.failures import (LEFT_OUT, JudgeUnavailable, bad_lines, build_failure_set, gating_subset,
                               read_feedback_file)
from evalsets.feedback import (
           MAX_TEXT,
           TABLES,
           FeedbackEvent,
           FeedbackRefused,
           FeedbackStore,
           SnapshotExporter,
           StoreLocked,
           UnknownRequest,
           normalise_query,
           read_snapshot,
           snapshot_folder,
)
from evalsets.jsonl import json_line, split_lines
from evalsets.loader import available_splits, load_evalset, read_corpus
from evalsets.model import Document, EvalSet, Qrels, Query
from evalsets.answer_text import compact, content_morphemes, ends_sentence, normalise_answer
from evalsets.synthesize import corpus_language, synthesize
from evalsets.writer_probe import ProbeResult, probe_writer
from evalsets.text import language_of

__all__ = ["Document", "EvalSet", "EvalSetError", "FeedbackEvent", "FeedbackRefused", "FeedbackStore",
           "JudgeUnavailable", "LEFT_OUT", "MAX_TEXT", "Qrels", "Query", "SnapshotExporter", "StoreLocked", "TABLES",
           "UnknownRequest", "available_splits", "bad_lines", "build_failure_set", "gating_subset", "json_line",
           "language_of", "load_evalset", "normalise_query", "read_corpus", "read_feedback_file", "read_snapshot", "snapshot_folder", "split_lines",
           "synthesize", "corpus_language", "ProbeResult", "probe_writer", "compact", "content_morphemes",
           "ends_sentence", "normalise_answer"]
