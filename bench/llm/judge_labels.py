"""A labelled calibration set for the judge (the labels.jsonl layout of experiments/calibration.py).

    .venv/bin/python -m bench.llm.judge_labels [--out .evolve/bench/judge_labels.jsonl] [--per-set 60] [--seed 17]
                                               [--korean 150] [--no-business]

From KorQuAD 1.0 dev (../shared/data/korquad-v1-dev, or $EVOLVE_SHARED_DATA) and claude-docs-qa (bundled, MIT),
``--per-set`` questions each, labelled for the correctness metric against the question's reference answer:

- label 1 (about half): a correct answer that is not the reference verbatim where the data allows. KorQuAD: the
  sentence of the relevant paragraph that contains the answer span. claude-docs-qa (no span to find): the
  reference answer itself.
- label 0, "other": the reference answer of another question (KorQuAD: of another article).
- label 0, "cut": the passage with the answer cut out, i.e. a sentence of the relevant passage that does not
  contain the answer span (claude-docs-qa: the sentence of the relevant section sharing fewest words of four or
  more letters with the reference, and no number).

Then ``--korean`` (150) more KorQuAD items from other questions, sources ``korquad-short`` and ``korquad-long``: right
answers worded unlike the reference, partly right ones, plausible wrong ones, short and long-form references
(bench/llm/korean_labels.py says how each kind is labelled).

Then (unless ``--no-business``) the 72 items of bench/llm/business_labels.py, source ``business-ko``: questions on
Korean internal business documents written for the project, long-form references, right, partly right and wrong
answers labelled by reading.

Each line carries ``source`` (korquad, claude-docs-qa, korquad-short, korquad-long, business-ko) and the kind in its
id. Fixed seed: the same file every run.
KorQuAD is CC BY-ND 2.0 KR (keep it internal), so the file goes under .evolve/ (not committed) by default.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

from bench import ROOT
from bench.llm import business_labels
from bench.llm.korean_labels import MIN_SENTENCE, KoreanItems, sentences
from evalsets import EvalSet, Query, load_evalset

DEFAULT_OUT = ROOT / ".evolve" / "bench" / "judge_labels.jsonl"
KINDS = ("right", "right", "other", "cut")
"""Drawn per question: half right, a quarter another question's answer, a quarter a cut-out sentence."""
KOREAN_LONG_SHARE = 0.4
"""Of ``--korean`` items, the share with a long-form reference (bench/llm/korean_labels.py)."""


def shared_data() -> Path:
    return Path(os.environ.get("EVOLVE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def passage(data: EvalSet, query_id: str) -> str:
    (doc_id,) = [d for d, relevance in data.qrels[query_id].items() if relevance > 0][:1]
    return data.document(doc_id).text


def labelled(data: EvalSet, n: int, rng: random.Random, source: str, prefix: str,
             answer_of: Callable[[Query, str, list[Query]], str | None]) -> list[dict]:
    """``n`` items of ``data``, the kinds in turn; ``answer_of(query, kind, queries)`` is the answer to judge, None
    when the query cannot give that kind (then the next query is tried)."""
    queries = [q for q in data.queries if q.answers]
    rng.shuffle(queries)
    items = []
    for query in queries:
        if len(items) == n:
            break
        kind = KINDS[len(items) % len(KINDS)]
        answer = answer_of(query, kind, queries)
        if answer is not None:
            items.append(item(f"{prefix}-{query.query_id}-{kind}", query.text, answer, query.answers[0], kind, source))
    return items


def korquad_items(data: EvalSet, n: int, rng: random.Random) -> list[dict]:
    def answer_of(query: Query, kind: str, queries: list[Query]) -> str | None:
        reference, text = query.answers[0], passage(data, query.query_id)
        if kind == "right":
            having = [s for s in sentences(text) if reference in s and s != reference]
            return having[0] if having else None
        if kind == "other":
            others = [q for q in queries if q.metadata.get("article") != query.metadata.get("article")]
            return rng.choice(others).answers[0]
        without = [s for s in sentences(text) if reference not in s and len(s) >= MIN_SENTENCE]
        return rng.choice(without) if without else None

    return labelled(data, n, rng, "korquad", "korquad", answer_of)


def docs_items(data: EvalSet, n: int, rng: random.Random) -> list[dict]:
    def answer_of(query: Query, kind: str, queries: list[Query]) -> str | None:
        reference = query.answers[0]
        if kind == "right":
            return reference
        if kind == "other":
            return rng.choice([q for q in queries if q.query_id != query.query_id]).answers[0]
        said = {w for w in words(reference) if len(w) >= 4 or w.isdigit()}
        candidates = [s for s in sentences(passage(data, query.query_id)) if len(s) >= MIN_SENTENCE
                      and not {w for w in words(s) if w.isdigit()} & said]
        return min(candidates, key=lambda s: (len(words(s) & said), len(s), s)) if candidates else None

    return labelled(data, n, rng, "claude-docs-qa", "docs", answer_of)


def item(item_id: str, question: str, answer: str, reference: str, kind: str, source: str) -> dict:
    return {"id": item_id, "question": question, "answer": answer, "reference": reference,
            "label": 1 if kind == "right" else 0, "metric": "correctness", "source": source}


def build(per_set: int, seed: int, korean: int = 0, business: bool = False) -> list[dict]:
    """The ``per_set`` items of each set (the same for a seed whatever ``korean`` is), then ``korean`` more KorQuAD
    items of the kinds of bench/llm/korean_labels.py, from other questions, then with ``business`` the fixed items of
    bench/llm/business_labels.py (no randomness: the others stay the same)."""
    rng = random.Random(seed)
    korquad = load_evalset(shared_data() / "korquad-v1-dev")
    docs = load_evalset(ROOT / "evalsets" / "data" / "claude-docs-qa")
    first = korquad_items(korquad, per_set, rng)
    items = first + docs_items(docs, per_set, rng)
    if korean:
        used = {i["question"] for i in first}
        exclude = {q.query_id for q in korquad.queries if q.text in used}
        n_long = round(korean * KOREAN_LONG_SHARE)
        extra = KoreanItems(korquad, lambda query_id: passage(korquad, query_id), random.Random(seed + 1))
        items += extra.build(korean - n_long, n_long, exclude)
    if business:
        items += business_labels.items()
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-set", type=int, default=60, help="questions from each data set")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--korean", type=int, default=150, help="more Korean items (bench/llm/korean_labels.py)")
    parser.add_argument("--business", action=argparse.BooleanOptionalAction, default=True,
                        help="the Korean business-document items (bench/llm/business_labels.py)")
    args = parser.parse_args()
    items = build(args.per_set, args.seed, args.korean, args.business)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        for line in items:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    ones = sum(i["label"] for i in items)
    print(f"{len(items)} labelled items ({ones} label 1, {len(items) - ones} label 0) -> {args.out}")


if __name__ == "__main__":
    main()
