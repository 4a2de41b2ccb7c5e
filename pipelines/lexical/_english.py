"""English tokens: regex tokens without stopwords, Snowball-stemmed."""

from __future__ import annotations

from pipelines.lexical.base import TOKENIZERS, WORD, Tokenizer


@TOKENIZERS.register
class EnglishTokenizer(Tokenizer):
    """Regex tokens without English stopwords, Snowball-stemmed (PyStemmer)."""

    name = "english"

    def __init__(self) -> None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self.stopwords = frozenset(STOPWORDS_EN)
        self.stemmer = Stemmer.Stemmer("english")

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        out = []
        for text in texts:
            words = [w for w in WORD.findall(text.lower()) if w not in self.stopwords]
            out.append(self.stemmer.stemWords(words))
        return out
