"""Text facts used across layers, decided once: is this Korean?

One rule everywhere (sentence splitting, answer language, synthesis prompts, the loop's set language):
text is Korean when Hangul syllables make up at least a fifth of its non-space characters. Mixed
Korean-English helpdesk text ("Claude API 요금제는?") counts as Korean; an English page quoting one
Korean word does not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Literal

HANGUL = re.compile("[\uac00-\ud7a3]")
HANGUL_RUN = re.compile("[\uac00-\ud7a3]+")
WORD = re.compile(r"\w+")
KOREAN_SHARE = 0.2


def hangul_share(text: str) -> float:
    """Hangul syllables / non-space characters (0.0 for empty text)."""
    letters = len(text) - sum(ch.isspace() for ch in text)
    return len(HANGUL.findall(text)) / letters if letters else 0.0


def mean_hangul_run(text: str) -> float:
    """Mean length of the runs of Hangul syllables in ``text`` (0.0 without Hangul): 2-3 in spaced Korean, where
    most words are two to four syllables and particles stick to them; far more when the word spaces are lost."""
    runs = HANGUL_RUN.findall(text)
    return sum(map(len, runs)) / len(runs) if runs else 0.0


def hangul_run_of_a_syllable(text: str) -> float:
    """Length of the Hangul run an average syllable of ``text`` sits in (runs weighted by their length; 0.0 without
    Hangul). Unlike :func:`mean_hangul_run` it is not pulled down by the short runs of tables, numbers and headings
    on a page whose prose runs together."""
    runs = [len(run) for run in HANGUL_RUN.findall(text)]
    return sum(n * n for n in runs) / sum(runs) if runs else 0.0


def words(text: str, hangul_only: bool = False) -> Counter[str]:
    """The words (runs of letters and digits) of ``text`` with their counts; with ``hangul_only``, those holding
    Hangul. Table bars, punctuation and line breaks are not words, so two readings of one document compare."""
    return Counter(w for w in WORD.findall(text) if not hangul_only or HANGUL.search(w))


def word_recall(reference: str, text: str, *, hangul_only: bool = False,
                shared_syllables: bool = False) -> float | None:
    """Share of the reference's words (with repeats) that ``text`` has too; None when the reference has none.

    ``shared_syllables`` keeps only reference words made of Hangul syllables ``text`` has somewhere, which leaves
    out words the two decoded differently and so measures word breaks alone. How extraction is measured against a
    reference extractor (bench and tests alike)."""
    wanted, got = words(reference, hangul_only), words(text, hangul_only)
    if shared_syllables:
        seen = set(HANGUL.findall(text))
        wanted = Counter({w: n for w, n in wanted.items() if set(HANGUL.findall(w)) <= seen})
    total = sum(wanted.values())
    return sum(min(n, got[w]) for w, n in wanted.items()) / total if total else None


def hangul_recall(reference: str, text: str) -> float | None:
    """Share of the reference's Hangul syllables (with repeats) that ``text`` has too; None without any: what word
    recall misses when only the spaces differ."""
    wanted, got = Counter(HANGUL.findall(reference)), Counter(HANGUL.findall(text))
    total = sum(wanted.values())
    return sum(min(n, got[c]) for c, n in wanted.items()) / total if total else None


def language_of(text: str | Iterable[str]) -> Literal["ko", "en"]:
    """'ko' or 'en' by :data:`KOREAN_SHARE`; several texts (a set's queries) are judged together."""
    joined = text if isinstance(text, str) else " ".join(text)
    return "ko" if hangul_share(joined) >= KOREAN_SHARE else "en"


COMMON_SCRIPTS = ("HANGUL", "LATIN", "CJK", "HIRAGANA", "KATAKANA", "FULLWIDTH", "HALFWIDTH")
"""Scripts of the company's text (Korean with English, Japanese and Chinese names): never evidence of garbage."""
MAX_CONTROL_SHARE = 0.01
"""Above this share of control characters a page's text is glyph ids, not text (a font without a Unicode map)."""


def _script(char: str) -> str:
    import unicodedata

    name = unicodedata.name(char, "")
    if not name:
        return "UNKNOWN"
    if name.startswith("LATIN") and not ("A" <= char <= "z" or "\u00c0" <= char <= "\u024f"):
        return "LATIN-IPA"  # IPA and phonetic letters: in running text, the mark of a mis-decoded font
    return name.split()[0]


def garbled(text: str) -> str | None:
    """Why ``text`` (one page, as extracted, before clean-up) is not text but garbage, or None.

    Two signs, both cheap and both rare in real pages: more than 1% control characters (glyph ids of a font
    without a ToUnicode map come out as C0 controls), or most letters outside the company's usual scripts (Hangul,
    Latin, CJK, kana), spread over two or more such scripts with none holding 60% of all letters (mojibake such as
    "ɹɹং ΘͨͶ" mixes phonetic Latin, Bengali and Greek; a Greek or a Russian page, or Greek beside English, has one
    unusual script and passes)."""
    if not text.strip():
        return None
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r" or 0x7f <= ord(c) < 0xa0)
    if controls > MAX_CONTROL_SHARE * len(text):
        return f"{controls} control characters in {len(text)} (glyph ids, not text: a font without a Unicode map?)"
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 20:
        return None
    counts: dict[str, int] = {}
    for char in letters:
        script = _script(char)
        counts[script] = counts.get(script, 0) + 1
    unusual = sum(n for s, n in counts.items() if s not in COMMON_SCRIPTS)
    top = max(counts.values())
    spread = sum(1 for n in counts.values() if n >= 0.05 * len(letters))
    unusual_scripts = sum(1 for s, n in counts.items() if s not in COMMON_SCRIPTS and n >= 0.05 * len(letters))
    if unusual > 0.5 * len(letters) and top < 0.6 * len(letters) and unusual_scripts >= 2:
        shares = ", ".join(f"{s.lower()} {n / len(letters):.0%}" for s, n in sorted(counts.items(),
                                                                                  key=lambda i: -i[1])[:4])
        return f"letters of {spread} scripts mixed as no language writes ({shares}): mis-decoded text"
    return None
