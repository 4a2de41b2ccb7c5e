"""Answer text made comparable: one normalisation for scoring short answers and for checking synthesized ones.

Korean answers differ from their reference in ways that do not change what they say: particles and endings
('임수경은', '임수경이다'), date and number formats ('1989. 2. 15.', '1989년 02월 15일', '1,000'), punctuation and
spacing. KorQuAD's official script lower-cases, drops punctuation and compares characters with spaces removed;
this module does the same after writing dates and numbers one way, and gives the content morphemes (kiwipiepy:
nouns, stems, numbers, foreign words; particles and endings dropped) for comparisons by morpheme.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DATE = re.compile(r"(?<!\d)(\d{4})\s*(?:년\s*|[-./]\s*)(\d{1,2})\s*(?:월\s*|[-./]\s*)(\d{1,2})(?:\s*일|\.(?!\d))?")
"""2023-08-22, 2023.8.22, 2023/08/22, 2023. 8. 22., 2023년 08월 22일: all become '2023년 8월 22일'."""
_LEADING_ZERO = re.compile(r"(?<!\d)0(\d)(?=\s*[월일시분초])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_SENTENCE_PUNCTUATION = re.compile(r"[.?!。？！]\s*$")
_FINAL_SYLLABLES = set("다요까오라죠")
"""Last syllables of Korean sentence endings: '-다', '-요', '-니까', '-시오', '-라', '-죠'."""
CONTENT_TAGS = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG", "MM")
"""Morpheme tags that carry meaning: nouns, verb/adjective stems, roots, numbers, foreign words, adverbs."""


def normalise_dates_numbers(text: str) -> str:
    """Dates written as 'YYYY년 M월 D일' (leading zeros of months and days dropped), thousands separators removed."""
    text = unicodedata.normalize("NFKC", text)
    text = _DATE.sub(lambda m: f"{int(m[1])}년 {int(m[2])}월 {int(m[3])}일", text)
    text = _LEADING_ZERO.sub(r"\1", text)
    return _THOUSANDS.sub("", text)


def normalise_answer(text: str) -> str:
    """KorQuAD's normalisation (lower case, punctuation to spaces, spaces collapsed) after dates and numbers are
    written one way. Punctuation is every Unicode P* character, so 《》「」· go as KorQuAD's list removes them."""
    text = normalise_dates_numbers(text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def compact(text: str) -> str:
    """:func:`normalise_answer` without spaces: what KorQuAD's character-level scores compare."""
    return normalise_answer(text).replace(" ", "")


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi  # lazy: loading the morphological model takes about a second

    return Kiwi()


def content_morphemes(text: str) -> list[str]:
    """The morphemes of ``text`` that carry meaning (:data:`CONTENT_TAGS`), lower-cased, in order, after
    :func:`normalise_dates_numbers`: '임수경이' and '임수경은' both give ['임수경']."""
    tokens = _kiwi().tokenize(normalise_dates_numbers(text))
    return [t.form.lower() for t in tokens if t.tag.split("-")[0] in CONTENT_TAGS]


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends as a sentence does: sentence punctuation, or a Korean final ending (kiwipiepy's EF:
    '같습니다', '있다', ending in one of :data:`_FINAL_SYLLABLES`). A name, a number, a date or a noun phrase does not."""
    stripped = text.strip()
    if not stripped:
        return False
    if _SENTENCE_PUNCTUATION.search(stripped) and not re.search(r"\b[A-Za-z]\.$", stripped):
        return True  # 'G.O.O.D.' ends with an initial's dot, not a sentence's
    if not re.search("[\uac00-\ud7a3]", stripped):
        return False
    if stripped[-1] not in _FINAL_SYLLABLES:  # kiwipiepy reads some nouns ('차붐', '깜빡임') as ending in EF
        return False
    tokens = _kiwi().tokenize(stripped)
    return bool(tokens) and tokens[-1].tag.startswith("EF")
