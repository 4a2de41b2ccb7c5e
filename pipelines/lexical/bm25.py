"""BM25 over chunks with bm25s (numpy sparse scoring)."""

from __future__ import annotations

import numpy as np

from pipelines.lexical.base import Tokenizer
from pipelines.scored import ScoredLists, top_k_rows


class BM25Index:
    def __init__(self, tokenizer: Tokenizer, k1: float = 1.5, b: float = 0.75, method: str = "lucene"):
        self.tokenizer = tokenizer
        self.k1, self.b, self.method = k1, b, method
        self._retriever = None
        self._vocab: set[str] = set()

    def build(self, chunk_tokens: list[list[str]]) -> "BM25Index":
        import bm25s

        self._retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self._retriever.index(chunk_tokens, show_progress=False)
        self._vocab = set(self._retriever.vocab_dict)
        self.size = len(chunk_tokens)
        return self

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for one query (zeros when no query token is in the vocabulary)."""
        tokens = [t for t in self.tokenizer.tokenize([query])[0] if t in self._vocab]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)

    def search(self, queries: list[str], k: int) -> ScoredLists:
        matrix = np.vstack([self.scores(q) for q in queries]) if queries else np.zeros((0, self.size))
        return top_k_rows(matrix, k)

    def nbytes(self) -> int:
        scores = self._retriever.scores
        return int(sum(a.nbytes for a in (scores["data"], scores["indices"], scores["indptr"])))
