"""Evaluation sets: documents, queries and relevance judgements (the BEIR-style layout).

Public API::

    from evalsets import EvalSet, Document, Query, load_evalset, EvalSetError
"""

from evalsets.errors import EvalSetError
from evalsets.loader import available_splits, load_evalset
from evalsets.model import Document, EvalSet, Query

__all__ = ["Document", "EvalSet", "EvalSetError", "Query", "available_splits", "load_evalset"]
