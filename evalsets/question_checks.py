"""Would a person ask this? Checks every synthesized question and answer must pass before it joins a set.

A small model asked for "a question and its answer" returns timestamps equal to their own answer, statements
answered "yes", and answers that point elsewhere ("결정내용은 붙임과 같습니다."), and its own answerability verdict
accepts them all. These checks are plain functions of the text, so they hold whatever the model:

- ``own answer``: the answer is the question, is written in it verbatim (after normalisation), or is restated in it
  (most of its content morphemes are the question's);
- ``bare literal``: the question is a bare date, number, timestamp or identifier (fewer than two words of letters);
- ``wrong language``: the question is not in the passage's language;
- ``not a question``: it is neither a question (question mark, question word, asking ending) nor an instruction
  ('설명하시오', 'Explain ...');
- ``refers to the passage``: the question or its answer points at the text it was written from ('이 지침은',
  '위 글에서', 'this passage', 'according to the document') or the question opens by pointing at what the passage
  named before ('이 사건이 언제...'): a person searching names what they ask about;
- ``uninformative answer``: yes/no, or an answer that refers to an attachment or to "the following";
- ``near duplicate``: its question shares :data:`DUPLICATE_JACCARD` of character trigrams with a kept question;
- ``ungrounded``: the answer is not in the passage, neither as a string nor by most of its content morphemes.

An item is counted under the first check it fails, in this order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from evalsets.answer_text import compact, content_morphemes
from evalsets.text import language_of

CHECKS = ("own answer", "bare literal", "wrong language", "not a question", "refers to the passage",
          "uninformative answer", "near duplicate", "ungrounded")
DUPLICATE_JACCARD = 0.8
RESTATED_SHARE = 0.8
"""Share of the answer's content morphemes that, found in the question, make the answer its own (none of 400 real
KorQuAD questions reaches it; answers restating a question copied from the passage do)."""
GROUNDED_SHARE = 0.6
"""Share of the answer's content morphemes the passage must hold when the answer is not in it verbatim."""

_KO_QUESTION_WORDS = re.compile("무엇|무슨|누구|누가|언제|어디|어떤|어떻게|어느|왜|몇|얼마|뭐")
_KO_ASKING_END = re.compile(r"(니까|는가|은가|인가|나요|가요|까요|을까|는지요|은지요|냐)\s*$")
_KO_INSTRUCTION_END = re.compile(r"(시오|세요|십시오|주세요|하라|쓰라|보라)\s*[.!]?\s*$")
_EN_OPENERS = re.compile(r"^(what|who|whom|whose|when|where|which|why|how|is|are|was|were|does|do|did|can|could|"
                         r"should|would|will|has|have|list|name|explain|describe|give|summari[sz]e|compare|state|"
                         r"identify|define)\b", re.IGNORECASE)
_YES_NO = {"yes", "no", "예", "네", "아니오", "아니요", "아니", "그렇다", "그렇습니다", "맞다", "맞습니다", "아닙니다",
           "true", "false", "o", "x"}
_KO_THIS_TEXT = re.compile(r"(?<![가-힣])(이|본|위|윗|아래|다음|상기|주어진|해당)\s*(문서|지침|규정|구절|글|본문|단락|문단|텍스트|"
                           r"지문|페이지|자료|기사|문장)(에서|에|의|은|는|을|를|이|가|으로|로|와|과|도|만)?(?![가-힣])")
_EN_THIS_TEXT = re.compile(r"\b(this|the above|the following|the given|the provided) (passage|document|text|paragraph|"
                           r"excerpt|article|guide|page|section|snippet|code snippet|code sample|example)\b"
                           r"|\bthe (passage|excerpt|snippet|code snippet)\b|\baccording to the (text|document|guide|page)\b",
                           re.IGNORECASE)
_POINTER_OPENING = re.compile(r"^\s*((이|그|저|해당|이러한|이런|그러한|그런)\s|(this|that|these|those|such)\s+[a-z])",
                              re.IGNORECASE)
_REFERRAL = re.compile(r"(붙임|첨부|별첨|별지|아래|다음|상기|위)\s*(와|과|의|에|을|를)?\s*(같|참조|참고|기재)|"
                       r"\b(see|refer to) (the )?(attach|appendix|enclosure|below|above)|\bas follows\b", re.IGNORECASE)


def is_question(text: str, language: str) -> bool:
    """A question or an instruction, by its form: a question mark, a question word, or an asking or
    instructing ending (Korean); a question mark or an opening question word or imperative (English)."""
    stripped = text.strip()
    if stripped.endswith(("?", "？")):
        return True
    if language == "ko":
        return bool(_KO_QUESTION_WORDS.search(stripped) and not stripped.endswith(".")
                    or _KO_ASKING_END.search(stripped) or _KO_INSTRUCTION_END.search(stripped))
    return bool(_EN_OPENERS.match(stripped))


def is_bare_literal(text: str) -> bool:
    """Fewer than two words of letters (at least two letters, no digit): '2023-08-22 12:22:52', '제2023-123호'."""
    words = [w for w in text.split() if sum(ch.isalpha() for ch in w) >= 2 and not any(ch.isdigit() for ch in w)]
    return len(words) < 2


def is_own_answer(question: str, answer: str) -> bool:
    """The answer is the question, is written in it, or is restated in it: the question holds at least
    :data:`RESTATED_SHARE` of the answer's content morphemes (two at least), however the endings differ."""
    q, a = compact(question), compact(answer)
    if a and (a == q or (len(a) >= 2 and a in q)):
        return True
    wanted = content_morphemes(answer)
    if len(wanted) < 2:
        return False
    held = set(content_morphemes(question))
    return sum(m in held for m in wanted) / len(wanted) >= RESTATED_SHARE


def refers_to_text(text: str) -> bool:
    """Points at the text itself ('이 문서는', '위 글에서', 'this passage', 'the code snippet'): none of KorQuAD dev's
    3,473 questions does, nor any of the demo set's 100 and SciFact's 300."""
    return bool(_KO_THIS_TEXT.search(text) or _EN_THIS_TEXT.search(text))


def opens_with_a_pointer(question: str) -> bool:
    """The question opens by pointing at something the passage named before ('이 사건이 언제 일어났나요?', 'When did
    this event...' does not, 'This method...' does): 5 of KorQuAD dev's 3,473 questions open so, each written by
    someone reading the passage ('이 경기에서 은메달을 딴 선수는?'); none of the demo set's 100 or SciFact's 300."""
    return bool(_POINTER_OPENING.search(question))


def is_uninformative(answer: str) -> bool:
    return compact(answer) in _YES_NO or bool(_REFERRAL.search(answer))


def is_grounded(answer: str, passage: str) -> bool:
    """The answer is in the passage as a string (normalised, no spaces), or the passage holds at least
    :data:`GROUNDED_SHARE` of the answer's content morphemes."""
    a = compact(answer)
    if a and a in compact(passage):
        return True
    wanted = content_morphemes(answer)
    if not wanted:
        return False
    found = set(content_morphemes(passage))
    return sum(m in found for m in wanted) / len(wanted) >= GROUNDED_SHARE


def trigrams(text: str) -> set[str]:
    t = compact(text)
    return {t[i:i + 3] for i in range(max(1, len(t) - 2))}


def is_near_duplicate(question: str, kept: Iterable[set[str]]) -> bool:
    """Character-trigram Jaccard of at least :data:`DUPLICATE_JACCARD` with any of ``kept`` (their trigrams)."""
    mine = trigrams(question)
    return any(len(mine & other) / len(mine | other) >= DUPLICATE_JACCARD for other in kept if mine | other)


def failed_check(question: str, answer: str, passage: str, kept: Iterable[set[str]] = ()) -> str | None:
    """The first of :data:`CHECKS` the item fails, or None when a person could ask it."""
    language = language_of(passage)
    if is_own_answer(question, answer):
        return "own answer"
    if is_bare_literal(question):
        return "bare literal"
    if language_of(question) != language:
        return "wrong language"
    if not is_question(question, language):
        return "not a question"
    if refers_to_text(question) or opens_with_a_pointer(question) or refers_to_text(answer):
        return "refers to the passage"
    if is_uninformative(answer):
        return "uninformative answer"
    if is_near_duplicate(question, kept):
        return "near duplicate"
    if not is_grounded(answer, passage):
        return "ungrounded"
    return None
