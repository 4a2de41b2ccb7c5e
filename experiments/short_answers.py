"""Correctness without a judge where the reference is short: exact match, F1 and containment, as KorQuAD scores.

A reference that is a span (a name, a year, a number, a short noun phrase) needs no LLM to be checked: the answer
either says it or not. A small local judge is worst exactly here (it rejected 25 of 30 right Korean answers worded
unlike their reference, bench/results/judge_calibration.md), so for these references the answer's correctness is
decided by string comparison after Korean normalisation (:mod:`evalsets.answer_text`), and the judge is kept for
long-form references and for faithfulness and context relevance.

The rule for "short" (:func:`is_short_reference`): at most :data:`SHORT_MAX_CHARS` characters and
:data:`SHORT_MAX_WORDS` words, and it does not end as a sentence does (no sentence punctuation at the end and no
Korean final ending such as '-다', '-습니다'). 3,461 of KorQuAD v1 dev's 3,473 references are short by this rule
(not: '은메달을 획득하였다.', '나는 나를 파괴할 권리가 있다'); '결정내용은 붙임과 같습니다.' is not either.

Per query, for a short reference (the best over the query's references):

- ``answer_correctness`` (0/1): the reference is contained in the answer, compared without spaces after
  normalisation, or its content morphemes appear in the answer in order (so '훈민정음 창제' is found in
  '훈민정음을 창제하였다'). Generated answers are sentences, so exact match alone would call almost every
  right answer wrong; containment is what a reader checks.
- ``answer_exact_match`` (0/1) and ``answer_f1`` (character-level F1 with spaces removed, KorQuAD v1's official
  F1), both after the same normalisation; ``answer_token_f1`` over content morphemes. Reported, not held.
"""

from __future__ import annotations

from collections import Counter

from evalsets import compact, content_morphemes, ends_sentence, normalise_answer

SHORT_MAX_CHARS = 40
SHORT_MAX_WORDS = 6
SHORT_ANSWER_METRICS = ("answer_exact_match", "answer_f1", "answer_token_f1")
"""Per-query scores of answers to short references, beside ``answer_correctness`` (which they decide there)."""
DECIDER = "answer_f1"
"""A per-query row that holds this metric had its ``answer_correctness`` decided by containment, not the judge."""
CONTAINMENT = "reference contained in the answer (Korean-normalised, deterministic)"


def is_short_reference(reference: str) -> bool:
    """A span, not a sentence: at most :data:`SHORT_MAX_CHARS` characters and :data:`SHORT_MAX_WORDS` words, and
    no sentence ending (see the module's docstring)."""
    text = reference.strip()
    return (0 < len(text) <= SHORT_MAX_CHARS and len(text.split()) <= SHORT_MAX_WORDS
            and not ends_sentence(text))


def _f1(predicted: list[str], truth: list[str]) -> float:
    common = sum((Counter(predicted) & Counter(truth)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def char_f1(answer: str, reference: str) -> float:
    """KorQuAD v1's F1: characters of the normalised texts, spaces removed, as a multiset."""
    return _f1(list(compact(answer)), list(compact(reference)))


def token_f1(answer: str, reference: str) -> float:
    """F1 over content morphemes (particles and endings dropped)."""
    return _f1(content_morphemes(answer), content_morphemes(reference))


def exact_match(answer: str, reference: str) -> bool:
    return normalise_answer(answer) == normalise_answer(reference)


def _in_order(needle: list[str], haystack: list[str]) -> bool:
    return any(haystack[i:i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


def contains_reference(answer: str, reference: str) -> bool:
    """The reference, normalised and without spaces, is a substring of the answer so normalised; or the
    reference's content morphemes occur in the answer's, contiguous and in order."""
    ref = compact(reference)
    if ref and ref in compact(answer):
        return True
    morphemes = content_morphemes(reference)
    return bool(morphemes) and _in_order(morphemes, content_morphemes(answer))


def score_short_answer(answer: str, references: list[str]) -> dict[str, float]:
    """``answer_correctness`` (containment) and :data:`SHORT_ANSWER_METRICS`, each the best over ``references``."""
    return {"answer_correctness": max(float(contains_reference(answer, r)) for r in references),
            "answer_exact_match": max(float(exact_match(answer, r)) for r in references),
            "answer_f1": max(char_f1(answer, r) for r in references),
            "answer_token_f1": max(token_f1(answer, r) for r in references)}


def short_references(references: list[str]) -> list[str]:
    """The references scored deterministically: all of them when every one is short, else none (a query with a
    long-form reference goes to the judge)."""
    return list(references) if references and all(is_short_reference(r) for r in references) else []
