"""More labelled Korean items for the judge's calibration (issue 36): answers a small judge gets wrong on Korean.

Used by ``bench/llm/judge_labels.py`` (``--korean N``); KorQuAD 1.0 dev only (CC BY-ND: the file stays under
.evolve/). The 60 KorQuAD items judge_labels always made (a passage sentence with the span, another article's
answer, a sentence without the span) are kept as they are; these are drawn from other questions, with their own
seeded generator, so the old items and their verdicts stay comparable ("before" and "after").

Two sources, each kind labelled by construction (the rule is the label; :data:`CORRECTIONS` where reading the
items showed the rule wrong):

``korquad-short``: the reference is KorQuAD's span (a name, a date, a number: what evolve scores without a judge).

- ``reworded`` (1): the span in a short Korean sentence from a fixed set ("구절에 따르면 X입니다."), dates written
  another way (1989년 2월 15일 -> 1989. 2. 15.), thousands separators dropped: right, worded unlike the reference.
- ``long`` (1): the passage sentence holding the span and the sentence after it: right, with more than was asked.
- ``near`` (0): another question's span from the same passage, in the same sentence set: a plausible wrong answer.
- ``partial`` (0): part of the span: the year of a full date, or the longest word of a span of several words
  without digits ('학생회관 건물 계단' -> '학생회관'): partly right, counted wrong (the question asked for more).
- ``refusal`` (0): "the passages do not say" in one of a few wordings.

``korquad-long``: the reference is long-form: the passage sentence holding the span, and for every other item
the next sentence too (a two-sentence reference).

- ``span`` (1): the span alone in a short sentence (as ``reworded``): right, much shorter than the reference.
- ``first`` (1, two-sentence references only): the reference's first sentence, which holds the span.
- ``cut`` (0): a sentence of the passage without the span.
- ``near`` (0): as above, another question's span that the reference does not hold.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from evalsets import EvalSet, Query
from pipelines.chunking import sentence_spans

RIGHT_FORMS = ("{}입니다.", "구절에 따르면 {}입니다.", "질문의 답은 '{}'입니다.", "정답: {}")
"""How a short answer is worded; right and near answers share them, so the wording never gives the label away."""
REFUSALS = ("제공된 구절에는 이 질문에 대한 답이 없습니다.", "구절만으로는 알 수 없습니다.", "모르겠습니다.")
SHORT_KINDS = ("reworded", "near", "long", "partial", "reworded", "refusal")
LONG_KINDS = ("span", "cut", "first", "near")
LABEL = {"reworded": 1, "long": 1, "span": 1, "first": 1, "near": 0, "partial": 0, "refusal": 0, "cut": 0}
CORRECTIONS = {"korquad-short-6589969-33-0-partial": 1, "korquad-short-6589969-4-0-partial": 1}
"""Labels corrected by hand after reading (seed 17): the 'partial' rule dropped a title or a country, not part of
the answer ('노무현' for '노무현 대통령', '오사카' for '일본 오사카' where the question asks where he was born)."""
MIN_SENTENCE = 25
DATE = re.compile(r"^(\d{3,4})년 ?(\d{1,2})월(?: ?(\d{1,2})일)?$")


def sentences(text: str) -> list[str]:
    return [" ".join(text[start:end].split()) for start, end in sentence_spans(text)]


def reworded(span: str) -> str:
    """The span written another way where a rule allows (a date, a number with separators), else itself."""
    if match := DATE.match(span):
        year, month, day = match.groups()
        return f"{year}. {month}." + (f" {day}." if day else "")
    return re.sub(r"(?<=\d),(?=\d{3})", "", span)


def partial(span: str) -> str | None:
    """Part of the span, or None when no part is clearly less than the whole (see the module docstring)."""
    if match := DATE.match(span):
        return f"{match.group(1)}년"
    words = span.split()
    if len(words) < 2 or any(c.isdigit() for c in span):
        return None
    longest = max(words, key=len)
    return longest if len(longest) >= 2 else None


def with_span(query: Query, passage: str) -> list[str]:
    """Sentences of the passage holding the query's span, each with the sentence after it ('' at the end)."""
    parts = sentences(passage)
    span = query.answers[0]
    return [f"{s} {parts[i + 1]}" if i + 1 < len(parts) else s for i, s in enumerate(parts) if span in s]


class KoreanItems:
    """Builds the items of both sources; ``passage(query_id)`` is the text of the query's relevant passage."""

    def __init__(self, data: EvalSet, passage: Callable[[str], str], rng: random.Random):
        self.data, self.passage, self.rng = data, passage, rng
        self.by_passage: dict[str, list[Query]] = {}
        for query in data.queries:
            if query.answers:
                self.by_passage.setdefault(self.passage(query.query_id), []).append(query)

    def near(self, query: Query, avoid: str) -> str | None:
        """Another question's span from the same passage, not in ``avoid`` and not holding the reference."""
        span = query.answers[0]
        others = sorted({q.answers[0] for q in self.by_passage.get(self.passage(query.query_id), [])
                         if q.answers[0] not in avoid and span not in q.answers[0] and q.answers[0] not in span})
        return self.rng.choice(RIGHT_FORMS).format(self.rng.choice(others)) if others else None

    def short(self, query: Query, kind: str) -> tuple[str, str] | None:
        """(answer, reference) of a ``korquad-short`` item, None when the query cannot give ``kind``."""
        span, form = query.answers[0], self.rng.choice(RIGHT_FORMS)
        if kind == "reworded":
            return form.format(reworded(span)), span
        if kind == "long":
            having = [s for s in with_span(query, self.passage(query.query_id)) if s != span]
            return (having[0], span) if having else None
        if kind == "near":
            answer = self.near(query, span)
            return (answer, span) if answer else None
        if kind == "partial":
            part = partial(span)
            return (form.format(part), span) if part else None
        return self.rng.choice(REFUSALS), span

    def long(self, query: Query, kind: str, index: int) -> tuple[str, str] | None:
        """(answer, reference) of a ``korquad-long`` item; every other reference has two sentences."""
        span, text = query.answers[0], self.passage(query.query_id)
        holding = [s for s in sentences(text) if span in s and len(s) >= MIN_SENTENCE and s != span]
        if not holding:
            return None
        two = [s for s in with_span(query, text) if s.startswith(holding[0]) and s != holding[0]]
        reference = two[0] if (kind == "first" or index % 2) and two else holding[0]
        if kind == "span":
            return self.rng.choice(RIGHT_FORMS).format(reworded(span)), reference
        if kind == "first":
            return (holding[0], reference) if reference != holding[0] else None
        if kind == "near":
            answer = self.near(query, reference)
            return (answer, reference) if answer else None
        without = [s for s in sentences(text) if span not in s and len(s) >= MIN_SENTENCE and s not in reference]
        return (self.rng.choice(without), reference) if without else None

    def build(self, n_short: int, n_long: int, exclude: set[str]) -> list[dict]:
        """``n_short`` + ``n_long`` items from questions not in ``exclude``, the kinds in turn."""
        queries = [q for q in self.data.queries if q.answers and q.query_id not in exclude]
        self.rng.shuffle(queries)
        items: list[dict] = []
        short_count = long_count = 0
        for query in queries:
            if short_count < n_short:
                kind = SHORT_KINDS[short_count % len(SHORT_KINDS)]
                made = self.short(query, kind)
                source = "korquad-short"
            elif long_count < n_long:
                kind = LONG_KINDS[long_count % len(LONG_KINDS)]
                made = self.long(query, kind, long_count // len(LONG_KINDS))
                source = "korquad-long"
            else:
                break
            if made is None:
                continue
            answer, reference = made
            item_id = f"{source}-{query.query_id}-{kind}"
            items.append({"id": item_id, "question": query.text, "answer": answer, "reference": reference,
                          "label": CORRECTIONS.get(item_id, LABEL[kind]), "metric": "correctness", "source": source})
            if source == "korquad-short":
                short_count += 1
            else:
                long_count += 1
        return items
