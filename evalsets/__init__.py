"""Evaluation data in and out: everything evolve reads to measure, and everything users tell it.

What the package holds today:

- the evaluation-set layout (``corpus.jsonl``, ``queries[.split].jsonl``, ``qrels[.split].tsv``): the in-memory
  model (``model``), loading and validation that name file and line (``loader``, ``errors``), JSON lines written
  one record a line whatever the text (``jsonl``), and the one rule for "is this Korean?" (``text``);
- the bundled demo set (``data/claude-docs-qa``);
- ``ingest/``: company files (PDF, Office, HTML, Markdown/Notion, HWP/HWPX, tickets) to a versioned corpus in
  that layout, one reader per format under ``ingest/formats/``, incremental and crash-safe;
- ``synthesize``: questions and reference answers written by the LLM for sampled passages, asked one of the
  ``writer_prompts`` (``PROMPTS``, ``DEFAULT_PROMPT``);
- ``review``: a person's verdicts on synthesized questions (``reviews.jsonl``); rejected ones leave the set;
- ``feedback``: the DuckDB store of every served request and rating, with its Parquet snapshots;
- ``failures``: feedback files imported, and bad ratings turned into a failure set in the same layout.

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
from evalsets.loader import available_splits, load_evalset, read_corpus, read_lines
from evalsets.model import Document, EvalSet, Qrels, Query
from evalsets.answer_text import compact, content_morphemes, ends_sentence, normalise_answer
from evalsets.review import (Acceptance, acceptance, apply_rejections, is_synthesized, passage_excerpt, pending,
                             record_verdict)
from evalsets.synthesize import corpus_language, synthesize
from evalsets.writer_probe import ProbeResult, probe_writer
from evalsets.writer_prompts import DEFAULT_PROMPT, PROMPTS
from evalsets.text import language_of

__all__ = ["Document", "EvalSet", "EvalSetError", "FeedbackEvent", "FeedbackRefused", "FeedbackStore",
           "JudgeUnavailable", "LEFT_OUT", "MAX_TEXT", "Qrels", "Query", "SnapshotExporter", "StoreLocked", "TABLES",
           "UnknownRequest", "available_splits", "bad_lines", "build_failure_set", "gating_subset", "json_line",
           "language_of", "load_evalset", "normalise_query", "read_corpus", "read_feedback_file", "read_lines", "read_snapshot", "snapshot_folder", "split_lines",
           "synthesize", "corpus_language", "ProbeResult", "probe_writer", "PROMPTS", "DEFAULT_PROMPT", "compact", "content_morphemes",
           "ends_sentence", "normalise_answer", "Acceptance", "acceptance", "apply_rejections", "is_synthesized",
           "passage_excerpt", "pending", "record_verdict"]
