"""Deterministic correctness of short references against the judge calibration's human labels (no LLM).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.llm.short_answer_agreement [--per-set 60] [--seed 17]

Builds the labelled items of ``bench/llm/judge_labels.py`` (same seed: the same items the judge was calibrated on in
bench/results/judge_calibration.md) and scores every KorQuAD item whose reference is short
(``experiments.short_answers.is_short_reference``) with containment, exact match and character F1 >= 0.5, as
0/1 verdicts against the labels: accuracy and Cohen's kappa with a 95% bootstrap interval (2,000 resamples).

Caveat, stated in the result: these labels were made by construction (a right answer is a passage sentence that
contains the reference span; a wrong one is another question's answer or a sentence without the span), so
containment agrees with them nearly by definition. The number says the normalisation does not break on real
KorQuAD text; it is not a human study of answers a model wrote.
"""

from __future__ import annotations

import argparse
import json
import random

from bench import RESULTS
from bench.llm.judge_labels import build
from bench.llm.kappa import kappa_interval
from experiments import agreement, is_short_reference
from experiments.short_answers import char_f1, contains_reference, exact_match

OUT = RESULTS / "short_answer_agreement.md"
RULES = {"containment (answer_correctness)": contains_reference,
         "exact match": exact_match,
         "character F1 >= 0.5": lambda answer, reference: char_f1(answer, reference) >= 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-set", type=int, default=60)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    items = [i for i in build(args.per_set, args.seed) if i["source"] == "korquad"]
    short = [i for i in items if is_short_reference(i["reference"])]
    labels = [i["label"] for i in short]
    rows, results = [], {}
    for name, rule in RULES.items():
        verdicts = [int(rule(i["answer"], i["reference"])) for i in short]
        found = agreement(labels, verdicts)
        low, high = kappa_interval(labels, verdicts, random.Random(0))
        results[name] = {"n": found.n, "accuracy": found.accuracy, "kappa": found.kappa, "kappa_95": [low, high],
                         "tp": found.tp, "fp": found.fp, "fn": found.fn, "tn": found.tn}
        rows.append(f"| {name} | {found.n} | {found.accuracy:.3f} | {found.kappa:.3f} [{low:.3f}, {high:.3f}] | "
                    f"{found.tp} | {found.fp} | {found.fn} | {found.tn} |")
    text = "\n".join([
        "# Short-answer correctness against the judge calibration's KorQuAD labels (no LLM)", "",
        (f"`python -m bench.llm.short_answer_agreement --per-set {args.per_set} --seed {args.seed}`: the {len(items)} KorQuAD "
         f"items of `bench/llm/judge_labels.py`, {len(short)} with a short reference. For comparison, the judge "
         "qwen2.5-coder-1.5b on the same items: accuracy 0.569, kappa 0.162 (bench/results/judge_calibration.md)."),
        "", "| rule | n | accuracy | kappa [95% bootstrap] | tp | fp | fn | tn |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *rows, "",
        ("Caveat: the labels are made by construction (a right answer is a passage sentence containing the "
         "reference span), so containment agrees nearly by definition; exact match shows why containment, not exact "
         "match, decides: a right answer that is a sentence is never an exact match."), ""])
    OUT.write_text(text, "utf-8")
    OUT.with_suffix(".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(text)


if __name__ == "__main__":
    main()
