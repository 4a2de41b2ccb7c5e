"""Text facts used across layers, decided once: is this Korean?

One rule everywhere (sentence splitting, answer language, synthesis prompts, the loop's set language):
text is Korean when Hangul syllables make up at least a fifth of its non-space characters. Mixed
Korean-English helpdesk text ("Claude API 요금제는?") counts as Korean; an English page quoting one
Korean word does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

HANGUL = re.compile("[\uac00-\ud7a3]")
KOREAN_SHARE = 0.2


def hangul_share(text: str) -> float:
    """Hangul syllables / non-space characters (0.0 for empty text)."""
    letters = len(text) - sum(ch.isspace() for ch in text)
    return len(HANGUL.findall(text)) / letters if letters else 0.0


def language_of(text: str | Iterable[str]) -> Literal["ko", "en"]:
    """'ko' or 'en' by :data:`KOREAN_SHARE`; several texts (a set's queries) are judged together."""
    joined = text if isinstance(text, str) else " ".join(text)
    return "ko" if hangul_share(joined) >= KOREAN_SHARE else "en"
