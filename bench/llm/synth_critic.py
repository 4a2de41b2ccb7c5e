"""Would the writer, asked to review its own item, tell acceptable synthesized items from the rest?

    .venv/bin/python -m bench.llm.synth_critic [--model qwen2.5-coder-1.5b --gguf FILE --threads 2] [--language ko]
    .venv/bin/python -m bench.llm.synth_critic --summarize

For every kept item of ``bench.llm.synth_acceptance``'s result files that a person labelled (by the model that wrote
it), the same model reviews the passage, question and answer (:func:`review_item` here): is the question natural,
does it name what it asks about, and, after answering the question itself, is the given answer right and whole?
Writes ``bench/results/synth_critic.jsonl`` (one row per item; a rerun skips the rows it has) and
``synth_critic.md``: per model and language, how many items the review keeps, the share acceptable among them (95%
Wilson) against the share before it, and how many acceptable items it drops.

Not in the product: on the first 18 Korean items (business pages) the 1.5B's review kept 12, 4 of them acceptable
(33%, against 9 of 18 before it): it copied the given answer as its own and called it right. A review in one verdict
(problem first, verdict last) rejected every item with the prompt's first rule as its reason.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from bench import RESULTS
from bench.llm.synth_acceptance import wilson
from bench.llm.synth_roundtrip import filter_bench_main
from evalsets import language_of

OUT = RESULTS / "synth_critic.jsonl"

PROBLEM_CHARS = 200


class Review(BaseModel):
    """One answer per question, in the order they are asked; the item is kept only when all are yes (1)."""
    natural: Literal[0, 1]
    names_subject: Literal[0, 1]
    own_answer: str = Field(json_schema_extra={"maxLength": PROBLEM_CHARS})
    answer_right: Literal[0, 1]

    @property
    def keep(self) -> bool:
        return self.natural == 1 and self.names_subject == 1 and self.answer_right == 1

    @property
    def problem(self) -> str:
        failed = [name for name in ("natural", "names_subject", "answer_right") if getattr(self, name) != 1]
        return ", ".join(failed) or "none"


_KO_REVIEW = """아래 구절로 만든 검색 평가용 질문과 정답이 있습니다. 다음을 순서대로 답하세요.
- natural: 질문이 한국어로 자연스럽고 무엇을 묻는지 분명하면 1, 어색하거나 뜻이 분명하지 않으면 0.
- names_subject: 질문이 묻는 대상(사람, 사건, 제도, 제품의 이름)을 직접 밝혀서 구절을 보지 않은 사람도 물을 수 있으면 1, 아니면 0.
- own_answer: 구절만 보고 이 질문에 직접 짧게 답하세요.
- answer_right: 주어진 정답이 당신의 답과 같은 내용이고 구절과 맞으면 1, 다르거나 일부만 맞으면 0."""

_EN_REVIEW = """Below is a question and answer written from the passage to evaluate a search system. Answer in order:
- natural: 1 if the question is natural English and clear about what it asks, 0 if it is garbled or unclear.
- names_subject: 1 if the question names what it asks about (the person, event, product or rule), so a person who has
  not read the passage could ask it, else 0.
- own_answer: answer the question yourself, briefly, from the passage alone.
- answer_right: 1 if the given answer says the same as yours and agrees with the passage, 0 if it differs or is only
  partly right."""


def review_messages(passage: str, question: str, answer: str) -> list[dict[str, str]]:
    korean = language_of(passage) == "ko"
    labels = ("구절", "질문", "정답") if korean else ("Passage", "Question", "Answer")
    return [{"role": "system", "content": "You review evaluation questions for a search system. Reply as JSON."},
            {"role": "user", "content": f"{_KO_REVIEW if korean else _EN_REVIEW}\n\n{labels[0]}:\n{passage}\n\n"
                                        f"{labels[1]}: {question}\n{labels[2]}: {answer}"}]


def review_item(llm: Any, passage: str, question: str, answer: str) -> Review:
    """The writer's review of one item; a reply that is not a valid review keeps nothing."""
    try:
        return llm.structured(review_messages(passage, question, answer), Review, max_tokens=200)
    except Exception as err:  # noqa: BLE001 -- whatever the client raises: no review, no item
        return Review(natural=0, names_subject=0, own_answer=f"no valid review: {err}"[:PROBLEM_CHARS],
                      answer_right=0)


def review_row(llm: Any, passage: str, question: str, item: dict, language: str) -> dict[str, Any]:
    review = review_item(llm, passage, question, item["answer"])
    return {"kept": review.keep, "problem": review.problem, "own_answer": review.own_answer}


def summary() -> str:
    rows = [json.loads(line) for line in OUT.open(encoding="utf-8")]
    lines = ["# Review: does the writer's own review tell acceptable synthesized items from the rest?", "",
             (f"`python -m bench.llm.synth_critic` over {len(rows)} labelled items "
              "(`bench/llm/synth_acceptance_labels.jsonl`), reviewed by the writer (`review_item` here). "
              "Interval: 95% Wilson."), "",
             ("| model | language | source | items | acceptable before [95%] | review keeps | acceptable among kept "
              "[95%] | acceptable dropped | s / item |"),
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def share(k: int, n: int) -> str:
        if not n:
            return "n/a"
        low, high = wilson(k, n)
        return f"{k}/{n} = {k / n:.0%} [{low:.0%}, {high:.0%}]"

    for model in sorted({r["model"] for r in rows}):
        for language in ("ko", "en"):
            for source in ["all", *sorted({r["source"] for r in rows if r["language"] == language})]:
                group = [r for r in rows if r["model"] == model and r["language"] == language
                         and source in ("all", r["source"])]
                if not group:
                    continue
                good = sum(r["acceptable"] for r in group)
                kept = [r for r in group if r["kept"]]
                kept_good = sum(r["acceptable"] for r in kept)
                seconds = sum(r["seconds"] for r in group) / len(group)
                lines.append(f"| {model} | {language} | {source} | {len(group)} | {share(good, len(group))} | "
                             f"{len(kept)} | {share(kept_good, len(kept))} | {good - kept_good} | {seconds:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    filter_bench_main(__doc__, OUT, review_row, summary)


if __name__ == "__main__":
    main()
