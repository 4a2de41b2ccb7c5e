"""Would a round trip catch the synthesized items people reject? The writer answers its own kept question again.

    .venv/bin/python -m bench.llm.synth_roundtrip [--model qwen2.5-coder-1.5b --gguf FILE --threads 2]

For every kept item of ``bench.llm.synth_acceptance``'s result files that a person labelled (by the model that wrote
it), the same model answers the question from the passage alone; the reply is compared with the kept answer by
KorQuAD's character F1 and by containment either way (:mod:`experiments.short_answers`). Writes
``bench/results/synth_roundtrip.jsonl`` (one row per item; a rerun skips the rows it has, so a killed run resumes)
and ``synth_roundtrip.md``: per language, for rules 'contains, or F1 >= t', how many items a filter would keep, the
share acceptable among them, and how many acceptable items it would drop.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from bench import RESULTS
from bench.llm.args import add_llm_arguments, bench_client
from bench.llm.synth_acceptance import LABELS, PREFIX, passage_of, read_labels
from evalsets import language_of
from experiments.short_answers import char_f1, contains_reference

OUT = RESULTS / "synth_roundtrip.jsonl"
THRESHOLDS = (0.2, 0.4, 0.6, 0.8)


class Reply(BaseModel):
    answer: str = Field(json_schema_extra={"maxLength": 200})


def messages(passage: str, question: str, korean: bool) -> list[dict[str, str]]:
    instruction = ("다음 구절만 보고 질문에 짧게 답하세요. 구절에 답이 없으면 \"없음\"이라고 답하세요." if korean else
                   "Answer the question from the passage alone, briefly. If the passage does not answer it, reply "
                   "\"none\".")
    return [{"role": "system", "content": "You answer questions from a passage. Reply as JSON."},
            {"role": "user", "content": f"{instruction}\n\nPassage:\n{passage}\n\nQuestion: {question}"}]


def labelled_items(model: str) -> dict[tuple[str, str], dict]:
    """(source, question, answer) -> the kept item, for the labelled items ``model`` wrote (first seed that kept it)."""
    labels, items = read_labels(LABELS), {}
    for path in sorted(RESULTS.glob(f"{PREFIX}*-*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        for item in result["items"] if result["model"] == model else []:
            key = (result["model"], result["source"], item["question"], item["answer"])
            if key in labels and key[1:] not in items:
                items[key[1:]] = {**item, "acceptable": bool(labels[key]["acceptable"])}
    return items


def run_over_labelled(args: argparse.Namespace, out_path: Path, score: Callable[..., dict[str, Any]],
                      language_only: str | None = None) -> None:
    """For every labelled item ``args.model`` kept that ``out_path`` has no row for, ``score(llm, passage, question,
    item, language)``'s fields join the item's row (appended at once, so a killed run resumes)."""
    rows = [json.loads(line) for line in out_path.open(encoding="utf-8")] if out_path.is_file() else []
    done = {(row["model"], row["source"], row["question"], row["answer"]) for row in rows}
    with bench_client(args) as llm, out_path.open("a", encoding="utf-8") as out:
        for (source, question, answer), item in labelled_items(args.model).items():
            if (args.model, source, question, answer) in done:
                continue
            passage = passage_of(item, source)
            language = language_of(passage)
            if language_only and language != language_only:
                continue
            started = time.perf_counter()
            row = {"model": args.model, "source": source, "language": language, "question": question,
                   "answer": answer, "acceptable": item["acceptable"],
                   **score(llm, passage, question, item, language), "seconds": round(time.perf_counter() - started, 1)}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            done.add((args.model, source, question, answer))
            print(f"{len(done)}: {json.dumps(row, ensure_ascii=False)[:160]}", flush=True)


def round_trip(llm: Any, passage: str, question: str, item: dict, language: str) -> dict[str, Any]:
    try:
        reply = llm.structured(messages(passage, question, language == "ko"), Reply, max_tokens=120).answer
    except Exception as err:  # noqa: BLE001 -- an invalid reply is a row too
        reply = f"no valid reply: {err}"[:200]
    return {"roundtrip": reply, "char_f1": round(char_f1(reply, item["answer"]), 3),
            "contains": contains_reference(reply, item["answer"]) or contains_reference(item["answer"], reply)}


def summary() -> str:
    rows = [json.loads(line) for line in OUT.open(encoding="utf-8")]
    lines = ["# Round trip: does the writer's second answer tell acceptable synthesized items from the rest?", "",
             (f"`python -m bench.llm.synth_roundtrip` over {len(rows)} labelled items "
              "(`bench/llm/synth_acceptance_labels.jsonl`); rule: keep an item when the second answer contains the "
              "kept one or is contained in it, or their character F1 is at least t."), "",
             "| model | language | items | acceptable | rule | kept | acceptable among kept | acceptable dropped |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for model in sorted({r["model"] for r in rows}):
        for language in ("ko", "en"):
            group = [r for r in rows if r["model"] == model and r["language"] == language]
            good = sum(r["acceptable"] for r in group)
            for rule, keeps in [("contains", lambda r: r["contains"])] + [
                    (f"contains or F1 >= {t}", lambda r, t=t: r["contains"] or r["char_f1"] >= t) for t in THRESHOLDS]:
                kept = [r for r in group if keeps(r)]
                share = sum(r["acceptable"] for r in kept)
                lines.append(f"| {model} | {language} | {len(group)} | {good} | {rule} | {len(kept)} | "
                             f"{share}/{len(kept)} = {share / len(kept):.0%} | {good - share} |")
    return "\n".join(lines) + "\n"


def filter_bench_main(doc: str, out_path: Path, score: Callable[..., dict[str, Any]], summary: Callable[[], str]
                      ) -> None:
    """The command line of a bench that scores each labelled kept item (this one, ``synth_critic``): run, then
    write and print the table."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--language", choices=("ko", "en"), help="only the items of this language")
    parser.add_argument("--summarize", action="store_true", help="no LLM: the table from the rows written")
    args = parser.parse_args()
    if not args.summarize:
        run_over_labelled(args, out_path, score, args.language)
    text = summary()
    out_path.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)


def main() -> None:
    filter_bench_main(__doc__, OUT, round_trip, summary)


if __name__ == "__main__":
    main()
