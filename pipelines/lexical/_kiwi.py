"""Korean morphemes (kiwipiepy).

Korean inflects: '서울은', '서울에서', '서울의' are one noun with particles. Regex tokens keep them
apart; kiwipiepy's morphological analysis reduces them to '서울' and drops particles and endings.
"""

from __future__ import annotations

from functools import lru_cache

from pipelines.lexical.base import TOKENIZERS, Tokenizer


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    from pipelines.device import cpu_threads

    return Kiwi(num_workers=max(cpu_threads(), 1))


@TOKENIZERS.register
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
