"""Plain regex tokens: nothing removed, nothing stemmed."""

from __future__ import annotations

from pipelines.lexical.base import TOKENIZERS, WORD, Tokenizer


@TOKENIZERS.register
class RegexTokenizer(Tokenizer):
    """Lower-cased runs of 2+ word characters (bm25s' default pattern), nothing removed."""

    name = "regex"

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        return [WORD.findall(text.lower()) for text in texts]
