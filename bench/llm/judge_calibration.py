"""How far to trust the judge: `evolve judge calibrate`'s library function on the bench labels.

    .venv/bin/python -m bench.llm.judge_labels                      # writes .evolve/bench/judge_labels.jsonl
    .venv/bin/python -m bench.llm.judge_calibration [--model qwen2.5-coder-1.5b] [--threads 2] [--limit N]
        [--labels FILE] [--base-url URL --served-model NAME] [--out bench/results/judge_calibration]

Judges every labelled item (correctness against the reference, no contexts: short prompts) with a cold request
cache, then writes OUT.json and OUT.md: accuracy, Cohen's kappa, n, invalid verdicts, the confusion counts and the
mean time per judgement, per source (korquad, claude-docs-qa) and over all items.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench import RESULTS
from bench.llm.args import add_llm_arguments, bench_client
from bench.llm.judge_labels import DEFAULT_OUT
from experiments import Calibration, CalibrationReport, Judge, calibrate, read_labels


def row(calibration: Calibration, seconds: float | None) -> dict:
    return {"source": calibration.source, "n": calibration.n, "invalid": calibration.invalid,
            "accuracy": calibration.accuracy, "kappa": calibration.kappa, **calibration.confusion,
            "seconds_per_judgement": round(seconds, 2) if seconds is not None else None}


def summary(report: CalibrationReport, labels: Path, wall_s: float) -> dict:
    by_source: dict[str, list[float]] = {}
    for judged in report.judged:
        by_source.setdefault(judged.item.source or "", []).append(judged.seconds)
    rows = [row(part, sum(by_source[part.source]) / len(by_source[part.source])) for part in report.parts]
    overall = {**row(report.overall, report.seconds_per_judgement), "source": "all"}
    wrong = [{"id": j.item.id, "label": j.item.label, "verdict": j.score.value, "reason": j.score.reason[:200]}
             for j in report.judged if j.score.value is None or j.score.value != j.item.label]
    return {"judge_model": report.overall.judge_model, "metric": report.overall.metric, "labels": str(labels),
            "items": len(report.judged), "wall_seconds": round(wall_s, 1), "sources": rows, "overall": overall,
            "disagreements": wrong}


def markdown(result: dict) -> str:
    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [f"# Judge calibration: {result['judge_model']} ({result['metric']})", "",
             f"{result['items']} labelled items from `bench/llm/judge_labels.py`, judged in {result['wall_seconds']} s "
             "(cold cache). tp = label 1 judged 1, fp = label 0 judged 1, fn = label 1 judged 0, "
             "tn = label 0 judged 0.", "",
             "| source | n | invalid | accuracy | kappa | tp | fp | fn | tn | s / judgement |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for entry in result["sources"] + [result["overall"]]:
        lines.append(f"| {entry['source']} | {entry['n']} | {entry['invalid']} | {number(entry['accuracy'])} | "
                     f"{number(entry['kappa'])} | {entry['tp']} | {entry['fp']} | {entry['fn']} | {entry['tn']} | "
                     f"{entry['seconds_per_judgement']} |")
    lines += ["", f"{len(result['disagreements'])} disagreements (first 10):", ""]
    lines += [f"- `{d['id']}` label {d['label']}, verdict {d['verdict']}: {d['reason']}"
              for d in result["disagreements"][:10]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--labels", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, help="only the first N items of each source (a quick check)")
    parser.add_argument("--out", type=Path, default=RESULTS / "judge_calibration")
    args = parser.parse_args()
    items = read_labels(args.labels)
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(item.source or args.labels.name, []).append(item)
    if args.limit:
        groups = {source: group[:args.limit] for source, group in groups.items()}
    def progress(stage: str, done: int, total: int) -> None:
        print(f"{stage}: {done}/{total}", flush=True)

    with bench_client(args) as client:  # a cold cache: every judgement is timed for real
        started = time.perf_counter()
        report = calibrate(Judge(client), groups, progress)
        result = summary(report, args.labels, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
