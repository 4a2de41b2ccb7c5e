"""Tokenizers for BM25: plain regex, English (stopwords + Snowball stemmer), Korean morphemes (kiwipiepy).

Korean inflects: '서울은', '서울에서', '서울의' are one noun with particles. Regex tokens keep them
apart; kiwipiepy's morphological analysis reduces them to '서울' and drops particles and endings.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from functools import lru_cache

_WORD = re.compile(r"(?u)\b\w\w+\b")


class Tokenizer(ABC):
    name: str

    @abstractmethod
    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """One token list per text."""


class RegexTokenizer(Tokenizer):
    """Lower-cased runs of 2+ word characters (bm25s' default pattern), nothing removed."""

    name = "regex"

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        return [_WORD.findall(text.lower()) for text in texts]


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
            words = [w for w in _WORD.findall(text.lower()) if w not in self.stopwords]
            out.append(self.stemmer.stemWords(words))
        return out


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    from pipelines.device import cpu_threads

    return Kiwi(num_workers=max(cpu_threads(), 1))


class KiwiTokenizer(Tokenizer):
    """Korean morphemes that carry meaning (nouns, verb/adjective stems, roots, numbers, foreign words).

    Particles (J*), endings (E*), suffixes and punctuation are dropped; Latin words are lower-cased,
    so mixed Korean/English text works too.
    """

    name = "kiwi"
    KEEP = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG", "MM")

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        analysed = _kiwi().tokenize(texts)
        return [[t.form.lower() for t in tokens if t.tag.split("-")[0] in self.KEEP] for tokens in analysed]


TOKENIZERS: dict[str, type[Tokenizer]] = {
    "regex": RegexTokenizer,
    "english": EnglishTokenizer,
    "kiwi": KiwiTokenizer,
}


@lru_cache(maxsize=None)
def get_tokenizer(name: str) -> Tokenizer:
    if name not in TOKENIZERS:
        raise KeyError(f"unknown BM25 tokenizer {name!r}: use one of {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]()
