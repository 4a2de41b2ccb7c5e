"""How far to trust the judge: `evolve judge calibrate`'s library function on the bench labels.

    .venv/bin/python -m bench.llm.judge_labels                      # writes .evolve/bench/judge_labels.jsonl
    .venv/bin/python -m bench.llm.judge_calibration [--model qwen2.5-coder-1.5b] [--threads 2] [--limit N]
        [--labels FILE] [--language ko] [--source S ...] [--cache FILE] [--base-url URL --served-model NAME]
        [--out bench/results/judge_calibration]

Judges every labelled item (correctness against the reference, no contexts: short prompts) with a cold request
cache (``--cache``: a file that keeps the calls, so a killed run resumes; its timings then count only new calls),
then writes OUT.json and OUT.md: accuracy, Cohen's kappa with a 95% bootstrap interval, n, invalid verdicts, the
confusion counts and the mean time per judgement, per source (korquad, claude-docs-qa, korquad-short, korquad-long,
business-ko), per language of the questions (what ``evolve judge calibrate`` stores for ``answers.min_judge_kappa``;
business-ko counts as ko) and over all items, and the share judged right per kind of item (the id's last part:
right, other, cut, reworded, ...).
``--language`` keeps only the items whose question is in that language, ``--source`` only those of the sources named
(e.g. ``--source business-ko``: the business-document items alone, pooled with earlier results by
bench/llm/calibration_pool.py instead of judging the others again).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from bench import RESULTS
from bench.llm.args import add_llm_arguments, bench_client
from bench.llm.judge_labels import DEFAULT_OUT
from bench.llm.kappa import kappa_interval
from evalsets import language_of
from experiments import Calibration, CalibrationReport, Judge, JudgedItem, calibrate, read_labels
from experiments.calibration import LANGUAGE_SOURCE


def row(calibration: Calibration, judged: list[JudgedItem]) -> dict:
    """One table row: the calibration, its kappa's 95% bootstrap interval and the mean seconds of its verdicts."""
    valid = [j for j in judged if j.score.value is not None]
    interval = (kappa_interval([j.item.label for j in valid], [int(j.score.value) for j in valid], random.Random(0))
                if calibration.kappa is not None else None)
    seconds = sum(j.seconds for j in judged) / len(judged) if judged else None
    return {"source": calibration.source, "n": calibration.n, "invalid": calibration.invalid,
            "accuracy": calibration.accuracy, "kappa": calibration.kappa, "kappa_95": interval,
            **calibration.confusion, "seconds_per_judgement": round(seconds, 2) if seconds is not None else None}


def kind_of(judged: JudgedItem) -> str:
    return judged.item.id.rsplit("-", 1)[-1]


def summary(report: CalibrationReport, labels: Path, wall_s: float) -> dict:
    def where(test) -> list[JudgedItem]:
        return [j for j in report.judged if test(j)]

    rows = [row(part, where(lambda j, s=part.source: j.item.source == s)) for part in report.parts]
    sources = {j.item.source for j in report.judged}
    if not rows and len(sources) == 1 and None not in sources:  # one source (--source): calibrate() gives no parts
        rows = [{**row(report.overall, report.judged), "source": sources.pop()}]
    languages = [row(part, where(lambda j, s=part.source: f"{LANGUAGE_SOURCE}{language_of(j.item.question)}" == s))
                 for part in report.languages]
    overall = {**row(report.overall, report.judged), "source": "all"}
    kinds: dict[tuple[str, str, int], list[JudgedItem]] = {}
    for judged in report.judged:
        kinds.setdefault((judged.item.source or "", kind_of(judged), judged.item.label), []).append(judged)
    by_kind = [{"source": source, "kind": kind, "label": label, "n": len(group),
                "judged_right": sum(j.score.value == label for j in group),
                "invalid": sum(j.score.value is None for j in group)}
               for (source, kind, label), group in kinds.items()]
    wrong = [{"id": j.item.id, "label": j.item.label, "verdict": j.score.value, "reason": j.score.reason[:200]}
             for j in report.judged if j.score.value is None or j.score.value != j.item.label]
    return {"judge_model": report.overall.judge_model, "metric": report.overall.metric, "labels": str(labels),
            "items": len(report.judged), "wall_seconds": round(wall_s, 1), "sources": rows, "languages": languages,
            "overall": overall, "kinds": by_kind, "disagreements": wrong}


def markdown(result: dict) -> str:
    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    def interval(entry: dict) -> str:
        low_high = entry.get("kappa_95")
        return f" [{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else ""

    lines = [f"# Judge calibration: {result['judge_model']} ({result['metric']})", "",
             (f"{result['items']} labelled items from `bench/llm/judge_labels.py`, judged in {result['wall_seconds']} "
              "s. tp = label 1 judged 1, fp = label 0 judged 1, fn = label 1 judged 0, tn = label 0 judged 0; "
              "kappa with its 95% bootstrap interval (2,000 resamples)."), "",
             "| source | n | invalid | accuracy | kappa [95%] | tp | fp | fn | tn | s / judgement |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for entry in result["sources"] + result.get("languages", []) + [result["overall"]]:
        lines.append(f"| {entry['source']} | {entry['n']} | {entry['invalid']} | {number(entry['accuracy'])} | "
                     f"{number(entry['kappa'])}{interval(entry)} | {entry['tp']} | {entry['fp']} | {entry['fn']} | "
                     f"{entry['tn']} | {entry['seconds_per_judgement']} |")
    if result.get("kinds"):
        lines += ["", "Per kind of item (bench/llm/judge_labels.py, bench/llm/korean_labels.py):", "",
                  "| source | kind | label | n | judged as labelled | invalid |", "| --- | --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {k['source']} | {k['kind']} | {k['label']} | {k['n']} | {k['judged_right']} | {k['invalid']} |"
                  for k in result["kinds"]]
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
    parser.add_argument("--language", help="only the items whose question is in this language (ko, en)")
    parser.add_argument("--source", nargs="+", help="only the items of these sources (e.g. business-ko)")
    parser.add_argument("--cache", type=Path, help="keep the LLM calls in this file (a killed run resumes)")
    args = parser.parse_args()
    items = [i for i in read_labels(args.labels) if (not args.language or language_of(i.question) == args.language)
             and (not args.source or i.source in args.source)]
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(item.source or args.labels.name, []).append(item)
    if args.limit:
        groups = {source: group[:args.limit] for source, group in groups.items()}
    def progress(stage: str, done: int, total: int) -> None:
        print(f"{stage}: {done}/{total}", flush=True)

    with bench_client(args, args.cache) as client:  # cold unless --cache holds earlier calls
        started = time.perf_counter()
        report = calibrate(Judge(client), groups, progress)
        result = summary(report, args.labels, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # OUT + ".json", not with_suffix: a stem naming a model ('...-qwen2.5-coder-1.5b') has a dot of its own
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                                           encoding="utf-8")
    args.out.with_name(args.out.name + ".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
