"""Lexical retrieval: BM25 (bm25s) with regex, English and Korean (kiwipiepy) tokenizers.

Each tokenizer is one private module that registers itself in :data:`TOKENIZERS`; :func:`get_tokenizer`
gives the process's instance by name.
"""

from pipelines.lexical._english import EnglishTokenizer
from pipelines.lexical._kiwi import KiwiTokenizer
from pipelines.lexical._regex import RegexTokenizer
from pipelines.lexical.base import TOKENIZERS, Tokenizer, get_tokenizer
from pipelines.lexical.bm25 import BM25Index
from pipelines.registry import import_kinds

import_kinds(__name__, __path__)

__all__ = ["TOKENIZERS", "BM25Index", "EnglishTokenizer", "KiwiTokenizer", "RegexTokenizer", "Tokenizer",
           "get_tokenizer"]
