"""The synthesis bench's summary: labels are matched by question and answer, and writer prompts run on the same
passages are compared row by row (no LLM: recorded result files)."""

from __future__ import annotations

from bench.llm.synth_acceptance import markdown, paired_rows


def result(prompt: str | None, seed: int, items: list[tuple[str, str]]) -> dict:
    found = {"model": "m", "source": "business-ko", "language": "ko", "seed": seed, "probe": {"passed": True},
             "seconds_per_passage": [1.0],
             "report": {"sampled": 4, "kept": len(items), "invalid": 0, "unanswerable": 0, "failed": {}},
             "items": [{"question": q, "answer": a, "doc_id": "d", "passage": "회의실은 최대 2주 뒤까지 예약할 수 있습니다."}
                       for q, a in items]}
    if prompt:
        found["writer_prompt"] = prompt
    return found


def test_prompts_on_the_same_passages_are_paired_and_labels_follow_the_answer():
    question = "회의실은 얼마나 미리 예약할 수 있나요?"
    first = result(None, 3, [(question, "2주")])  # an old file: no writer_prompt, the first prompt
    named = result("named-subject", 3, [(question, "최대 2주 뒤까지")])
    other_seed = result("named-subject", 4, [(question, "2주 뒤까지")])
    labels = {("m", "business-ko", question, "2주"): {"acceptable": False},
              ("m", "business-ko", question, "최대 2주 뒤까지"): {"acceptable": True}}
    rows = paired_rows([first, named, other_seed], labels)
    by_prompt = {(row["prompt"], row["source"]): row["kept_items"] for row in rows}
    # the same question with another answer is another item: its own label, not the first one's
    assert by_prompt[("question-first", "business-ko")]["acceptable"] == 0
    assert by_prompt[("named-subject", "business-ko")]["acceptable"] == 1
    assert {row["seeds"][0] for row in rows if row["source"] != "all"} == {3}  # seed 4 ran one prompt only
    assert len(rows) == 4 and by_prompt[("named-subject", "all")]["labelled"] == 1
    table = markdown({"labels": "labels.jsonl", "rows": [], "paired": rows, "rejected": []})
    assert "## The writer prompts on the same passages" in table and "| named-subject | business-ko | ko | 3 |" in table
