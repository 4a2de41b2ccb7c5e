"""Lexical retrieval: BM25 (bm25s) with regex, English and Korean (kiwipiepy) tokenizers."""

from pipelines.lexical.bm25 import BM25Index
from pipelines.lexical.tokenizers import TOKENIZERS, Tokenizer, get_tokenizer

__all__ = ["TOKENIZERS", "BM25Index", "Tokenizer", "get_tokenizer"]
