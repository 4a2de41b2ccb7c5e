"""Kappa over the items of several judge calibration results of one judge, without judging anything again.

    .venv/bin/python -m bench.llm.judge_labels --out .evolve/bench/judge_labels_all.jsonl
    .venv/bin/python -m bench.llm.calibration_pool --labels .evolve/bench/judge_labels_all.jsonl --language ko \\
        --results bench/results/judge_calibration.json bench/results/judge_calibration-ko-new-qwen2.5-coder-1.5b.json \\
        --out bench/results/judge_calibration-ko-pooled-qwen2.5-coder-1.5b

Why: a 1.5B verdict takes 5 to 25 s on the shared CPU, so the 150 Korean items added later were judged alone, and
the 60 judged before are read from their recorded result instead of judged again (the judge, its prompt and its
temperature 0 are the same). A result file lists its disagreements; every other item it judged was judged as
labelled, so each item's verdict is recovered from the labels file and the result. Writes OUT.json and OUT.md:
accuracy and kappa with a 95% bootstrap interval per result and pooled.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from bench.llm.kappa import kappa_interval
from evalsets import language_of
from experiments import agreement


def verdicts(result: dict, labels: dict[str, dict], language: str | None) -> dict[str, tuple[int, float | None]]:
    """item id -> (label, verdict) for the items of ``result``'s sources (in ``language``, when given)."""
    sources = {s["source"] for s in result["sources"]} or {result["overall"]["source"]}
    differ = {d["id"]: d["verdict"] for d in result["disagreements"]}
    return {item_id: (item["label"], differ.get(item_id, item["label"]))
            for item_id, item in labels.items() if item["source"] in sources
            and (language is None or language_of(item["question"]) == language)}


def row(name: str, pairs: list[tuple[int, float | None]]) -> dict:
    found = agreement([label for label, _ in pairs], [verdict for _, verdict in pairs])
    valid = [(label, int(verdict)) for label, verdict in pairs if verdict is not None]
    low, high = kappa_interval([v[0] for v in valid], [v[1] for v in valid], random.Random(0))
    return {"part": name, "n": found.n, "invalid": found.invalid, "accuracy": found.accuracy, "kappa": found.kappa,
            "kappa_95": [low, high], "tp": found.tp, "fp": found.fp, "fn": found.fn, "tn": found.tn}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--results", type=Path, nargs="+", required=True)
    parser.add_argument("--language")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    labels = {item["id"]: item for line in args.labels.read_text("utf-8").splitlines() if (item := json.loads(line))}
    results = [json.loads(path.read_text("utf-8")) for path in args.results]
    judges = {r["judge_model"] for r in results}
    if len(judges) != 1:
        raise SystemExit(f"results of more than one judge: {sorted(judges)}")
    parts = [verdicts(r, labels, args.language) for r in results]
    for path, result, part in zip(args.results, results, parts):
        if len(part) > result["items"]:  # a --limit run: its unlisted items were not all judged
            raise SystemExit(f"{path}: {result['items']} items judged, but the labels hold {len(part)} of its sources")
    rows = [row(path.name, list(part.values())) for path, part in zip(args.results, parts)]
    pooled: dict[str, tuple[int, float | None]] = {}
    for part in parts:
        pooled.update(part)
    rows.append(row("pooled", list(pooled.values())))
    out = {"judge_model": judges.pop(), "language": args.language, "labels": str(args.labels), "rows": rows}
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(out, indent=2) + "\n", "utf-8")
    lines = [f"# Judge calibration pooled: {out['judge_model']}, {args.language or 'all'} items", "",
             "`python -m bench.llm.calibration_pool` (module docstring: how verdicts are recovered).", "",
             "| result | n | invalid | accuracy | kappa [95%] | tp | fp | fn | tn |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['part']} | {r['n']} | {r['invalid']} | {r['accuracy']:.3f} | {r['kappa']:.3f} "
              f"[{r['kappa_95'][0]:.3f}, {r['kappa_95'][1]:.3f}] | {r['tp']} | {r['fp']} | {r['fn']} | {r['tn']} |"
              for r in rows]
    args.out.with_name(args.out.name + ".md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
