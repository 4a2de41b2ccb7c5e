"""Would answer-sentence consistency catch the synthesized items people reject? No LLM: the passage's sentences ranked.

    .venv/bin/python -m bench.llm.synth_sentence_rank

Most rejected Korean items are comprehension errors: the question asks about one sentence and the answer is taken
from another ('이명박은 언제 현대건설에 입사했나요?' -> the year of a fine). A cheap check for that: rank the passage's
sentences by the question (content morphemes shared, each weighted by its inverse sentence frequency, the answer's
own morphemes left out) and keep the item only when the sentence that holds the answer ranks first (or in the first
two). For every labelled item of :mod:`bench.llm.synth_roundtrip`, alone and together with its best round-trip
rule (the writer's second answer contains the kept one, or F1 >= 0.8). Writes ``bench/results/synth_sentence_rank.md``.
"""

from __future__ import annotations

import json
import math
from collections import Counter

from bench import RESULTS
from bench.llm.synth_acceptance import passage_of
from bench.llm.synth_roundtrip import OUT as ROUND_TRIP
from bench.llm.synth_roundtrip import labelled_items
from evalsets import language_of
from evalsets.answer_text import compact, content_morphemes
from experiments.short_answers import char_f1
from pipelines.chunking import sentence_spans

MODEL = "qwen2.5-coder-1.5b"
OUT = RESULTS / "synth_sentence_rank.md"


def answer_sentence_rank(question: str, answer: str, passage: str) -> int:
    """1 + the number of the passage's sentences that share more (idf-weighted) question morphemes than the best
    sentence holding the answer (verbatim after normalisation, else the one closest by character F1)."""
    sentences = [passage[a:b] for a, b in sentence_spans(passage)] or [passage]
    wanted = compact(answer)
    holding = [i for i, s in enumerate(sentences) if wanted and wanted in compact(s)]
    if not holding:
        closeness = [char_f1(answer, s) for s in sentences]
        holding = [max(range(len(sentences)), key=closeness.__getitem__)]
    morphemes = [set(content_morphemes(s)) for s in sentences]
    frequency = Counter(m for s in morphemes for m in s)
    asked = set(content_morphemes(question)) - set(content_morphemes(answer))
    scores = [sum(math.log(1 + len(sentences) / frequency[m]) for m in asked & s) for s in morphemes]
    best_holding = max(scores[i] for i in holding)
    return 1 + sum(score > best_holding for score in scores)


def rows() -> list[dict]:
    trips = {(r["source"], r["question"], r["answer"]): r
             for r in map(json.loads, ROUND_TRIP.open(encoding="utf-8"))} if ROUND_TRIP.is_file() else {}
    out = []
    for (source, question, answer), item in labelled_items(MODEL).items():
        passage = passage_of(item, source)
        if not passage:
            continue
        trip = trips.get((source, question, answer))
        out.append({"source": source, "language": language_of(passage), "acceptable": item["acceptable"],
                    "rank": answer_sentence_rank(question, answer, passage),
                    "round_trip": None if trip is None else bool(trip["contains"] or trip["char_f1"] >= 0.8)})
    return out


def summary(items: list[dict]) -> str:
    lines = ["# Answer-sentence rank: does the sentence holding the answer rank first for the question?", "",
             (f"`python -m bench.llm.synth_sentence_rank` over the {len(items)} labelled items {MODEL} kept "
              "(`bench/llm/synth_acceptance_labels.jsonl`). Round trip: the writer's second answer contains the kept "
              "one or is contained in it, or their character F1 is at least 0.8 (`synth_roundtrip.jsonl`)."), "",
             "| language | source | rule | kept | acceptable among kept | acceptable dropped |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    rules = [("none", lambda r: True), ("rank 1", lambda r: r["rank"] <= 1), ("rank <= 2", lambda r: r["rank"] <= 2),
             ("round trip", lambda r: bool(r["round_trip"])),
             ("round trip and rank 1", lambda r: bool(r["round_trip"]) and r["rank"] <= 1)]
    for language in ("ko", "en"):
        sources = sorted({r["source"] for r in items if r["language"] == language})
        for source in sources + (["all"] if len(sources) > 1 else []):
            group = [r for r in items if r["language"] == language and source in ("all", r["source"])]
            good = sum(r["acceptable"] for r in group)
            for rule, keeps in rules:
                kept = [r for r in group if keeps(r)]
                share = sum(r["acceptable"] for r in kept)
                percent = f" = {share / len(kept):.0%}" if kept else ""
                lines.append(f"| {language} | {source} | {rule} | {len(kept)} | {share}/{len(kept)}{percent} | "
                             f"{good - share} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = summary(rows())
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
