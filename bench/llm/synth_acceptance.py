"""Would a person accept what `evolve evalset synthesize` keeps? The real synthesis on sampled passages, then labels.

    .venv/bin/python -m bench.llm.synth_acceptance --source korquad --model smollm2-135m --n 100 [--threads 2]
        [--gguf FILE] [--seed 0] [--cache FILE] [--base-url URL --served-model NAME]
    .venv/bin/python -m bench.llm.synth_acceptance --summarize [--labels FILE]

A run tries the model on the built-in items of the source's language (:func:`evalsets.writer_probe.probe_writer`,
recorded, then synthesizes anyway, as ``--force`` does), runs :func:`evalsets.synthesize.synthesize` over ``--n``
sampled passages and writes ``bench/results/synth_acceptance-<model>-<source>[-seed<k>].json``: every kept item
(question, answer, source document, the passage it was written from), the synthesis report (sampled, kept,
dropped per check, unanswerable, invalid) and the seconds per passage. Sources: ``korquad`` (KorQuAD 1.0 dev
paragraphs, 961 distinct contexts, from $EVOLVE_SHARED_DATA), ``business-ko`` (long Korean internal company pages
written for this bench, ``bench/llm/data/business_ko.jsonl``) and ``english`` (the bundled claude-docs-qa corpus,
MIT). The calls go through ``--cache`` (default ``.evolve/bench/`` + the result's name + ``.duckdb``): a killed
run, rerun with the same arguments, replays what it had and goes on; the seconds per passage then count only the
passages it called the LLM for (the median is reported beside the mean, as a paused process inflates the mean).
More passages of a source: another ``--seed`` (a larger ``--n`` draws other sections of a long page), whose file
adds to the same row of the summary.

``--summarize`` reads every result file and the labels (``bench/llm/synth_acceptance_labels.jsonl``: one line per
kept item a person read: model, source, query, answer, acceptable, reason) and writes
``bench/results/synth_acceptance.md`` and ``.json``: per model x source and per model x language, kept / sampled,
drops per check, labelled items, the share acceptable with its 95% Wilson interval, and the same share for the kept
items that still pass today's checks (:func:`evalsets.question_checks.failed_check` re-applied to the stored items).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


from bench import RESULTS, ROOT
from bench.llm.args import add_llm_arguments, bench_client
from bench.llm.judge_labels import shared_data
from evalsets import language_of
from evalsets.loader import read_corpus
from evalsets.model import Document
from evalsets.question_checks import CHECKS, failed_check, trigrams
from evalsets.review import wilson as shared_wilson
from evalsets.synthesize import synthesize
from evalsets.writer_probe import probe_writer
from evalsets.writer_prompts import DEFAULT_PROMPT, PROMPTS
from pipelines.llm import LLMClient

SOURCES = {"korquad": lambda: shared_data() / "korquad-v1-dev" / "corpus.jsonl",
           "business-ko": lambda: ROOT / "bench" / "llm" / "data" / "business_ko.jsonl",
           "english": lambda: ROOT / "evalsets" / "data" / "claude-docs-qa" / "corpus.jsonl"}
LICENCES = {"korquad": "passages: KorQuAD 1.0 dev (LG CNS, CC BY-ND 2.0 KR), verbatim",
            "business-ko": "passages: written for this bench (bench/llm/data/README.md), the project's licence",
            "english": "passages: claude-docs-qa (evalsets/data/claude-docs-qa, MIT)"}
LABELS = ROOT / "bench" / "llm" / "synth_acceptance_labels.jsonl"
PREFIX = "synth_acceptance-"
FIRST_PROMPT = "question-first"
"""The writer prompt of the first runs (a question and its short answer, nothing else asked): result files without a
``writer_prompt`` field were written with it."""
WRITER_SCHEMAS = {prompt.schema for prompt in PROMPTS.values()}
PATIENT_TIMEOUT_S = 3600
"""Seconds one call may take: the bench shares a CPU whose other jobs may pause it for many minutes, and a call that
times out would be counted as the model's invalid reply."""


EXCERPT_CHARS = 160
"""KorQuAD's licence (CC BY-ND, kept internal) allows no redistributed copy: its items keep an excerpt, and the
passage is read back from the shared data when the checks are re-applied."""


def stored(item: dict, source: str) -> dict:
    """A kept item as the result file keeps it: the passage whole, or for KorQuAD its opening only."""
    if source != "korquad" or "passage" not in item:
        return item
    passage = item.pop("passage")
    return {**item, "excerpt": passage[:EXCERPT_CHARS] + ("..." if len(passage) > EXCERPT_CHARS else "")}


@functools.cache
def documents(source: str) -> dict[str, Document]:
    return {d.doc_id: d for d in read_corpus(SOURCES[source]())}


def passage_of(item: dict, source: str) -> str:
    """The passage an item was written from: stored, or (KorQuAD) its document's section that the excerpt opens."""
    if "passage" in item:
        return item["passage"]
    doc = documents(source).get(item["doc_id"])
    start = item.get("excerpt", "").removesuffix("...")
    sections = [p.strip() for p in re.split(r"\n\s*\n", doc.text)] if doc else []
    return next((p[:1200] for p in sections if p.startswith(start)), "")


class Recorder:
    """The LLM as synthesis sees it, keeping the passage each question was written from (the prompt holds it)."""

    def __init__(self, llm: Any):
        self.llm, self.model = llm, llm.model
        self.passages: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.errors: list[str] = []

    def structured(self, messages: list[dict[str, Any]], schema: type, **params: Any) -> Any:
        try:
            reply = self.llm.structured(messages, schema, **params)
        except Exception as err:
            self.errors.append(f"{schema.__name__}: {str(err)[:200]}")
            raise
        if schema in WRITER_SCHEMAS:
            prompt = messages[-1]["content"]
            title = prompt.rsplit("Title: ", 1)[1].split("\n", 1)[0] if "Title: " in prompt else ""
            self.passages.setdefault((reply.question, reply.answer), []).append(
                {"title": title, "passage": prompt.split("Passage:\n", 1)[-1]})
        return reply

    def source_of(self, question: str, answer: str) -> dict[str, str]:
        """The passage a kept item was written from: of those that gave this very reply, one it passes the checks
        on (the same reply to another passage may have been dropped there)."""
        found = self.passages.get((question, answer), [])
        fitting = [f for f in found if failed_check(question, answer, f["passage"]) is None]
        return (fitting or found or [{}])[0]


def patient(client: LLMClient) -> LLMClient:
    """The same server and cache, with calls that outlast a paused process instead of counting as invalid."""
    return LLMClient(client.settings.model_copy(update={"timeout_s": PATIENT_TIMEOUT_S, "max_retries": 5}),
                     client.cache)


def run(args: argparse.Namespace) -> Path:
    corpus = SOURCES[args.source]()
    model = args.model if not args.base_url else args.served_model
    name = (f"{PREFIX}{model}-{args.source}" + ("" if args.prompt == FIRST_PROMPT else f"-{args.prompt}")
            + (f"-seed{args.seed}" if args.seed else ""))
    out = args.out or RESULTS / f"{name}.json"
    cache = args.cache or ROOT / ".evolve" / "bench" / f"{name}.duckdb"
    cache.parent.mkdir(parents=True, exist_ok=True)
    language = language_of([json.loads(line)["text"][:2000] for line in corpus.open(encoding="utf-8")][:50])
    with bench_client(args, cache) as client:
        calls = patient(client)
        llm = Recorder(calls)
        probe = probe_writer(llm, language, prompt=args.prompt)
        print(f"probe ({language}): {'passed' if probe.passed else 'failed: ' + '; '.join(probe.misses)}", flush=True)
        outcomes: list[str] = []
        seconds: list[float] = []  # of the passages this run called the LLM for (not replayed from the cache)
        last, made = time.perf_counter(), calls.calls

        def progress(done: int, total: int, outcome: str) -> None:
            nonlocal last, made
            now = time.perf_counter()
            outcomes.append(outcome)
            replayed = calls.calls == made
            if not replayed:
                seconds.append(round(now - last, 2))
            print(f"passage {done}/{total}: {outcome} ({now - last:.1f} s{', cached' if replayed else ''})",
                  flush=True)
            last, made = now, calls.calls

        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            try:
                report = synthesize(corpus, Path(folder), llm, args.n, args.seed, progress=progress,
                                    prompt=args.prompt)
                kept = [json.loads(line) for line in (Path(folder) / "queries.jsonl").open(encoding="utf-8")]
            except Exception as err:  # noqa: BLE001 -- nothing kept: the outcomes still say why
                print(f"synthesis kept nothing: {err}", flush=True)
                report, kept = None, []
            wall = time.perf_counter() - started
    failed = {name: outcomes.count(name) for name in CHECKS}
    items = [{"query_id": q["query_id"], "question": q["text"], "answer": q["answers"][0],
              "doc_id": q["metadata"]["source_doc"], "evidence": q["metadata"].get("evidence"),
              **llm.source_of(q["text"], q["answers"][0])} for q in kept]
    items = [stored(item, args.source) for item in items]
    result = {"model": model, "source": args.source, "language": language, "corpus": str(corpus.relative_to(ROOT))
              if corpus.is_relative_to(ROOT) else str(corpus), "licence": LICENCES[args.source],
              "seed": args.seed, "threads": args.threads, "writer_prompt": args.prompt,
              "probe": {"passed": probe.passed, "misses": probe.misses},
              "report": {"sampled": len(outcomes), "generated": report.generated if report else None,
                         "kept": outcomes.count("kept"), "invalid": outcomes.count("invalid"),
                         "unanswerable": outcomes.count("unanswerable"), "failed": failed,
                         "rejected": report.rejected if report else []},
              "llm_errors": llm.errors, "wall_seconds": round(wall, 1), "seconds_per_passage": seconds,
              "items": items}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{result['report']['kept']} kept of {len(outcomes)} -> {out}", flush=True)
    return out


def wilson(k: int, n: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a share k / n (sound at small n and near 0 or 1, unlike p +- 1.96 se)."""
    if n == 0:
        return None
    low, high = shared_wilson(k, n)
    return round(low, 3), round(high, 3)


def read_labels(path: Path) -> dict[tuple[str, str, str], dict]:
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()] if path.is_file() else []
    return {(r["model"], r["source"], r["query"], r["answer"]): r for r in rows}


def still_kept(result: dict) -> list[dict]:
    """The stored items of a result that pass today's checks, re-applied in the order synthesis kept them."""
    seen: list[set[str]] = []
    passing = []
    for item in result["items"]:
        if failed_check(item["question"], item["answer"], passage_of(item, result["source"]), seen) is None:
            seen.append(trigrams(item["question"]))
            passing.append(item)
    return passing


def group_row(name: dict, results: list[dict], labels: dict) -> dict:
    """One table row over one or more result files (a model on a source, or a model on all sources of a language)."""
    def total(key: str) -> int:
        return sum(r["report"][key] for r in results)

    def pooled(pick) -> dict:
        # a question two seeds both kept (their draws of a long page's sections can meet) is one labelled item
        keys = {(r["model"], r["source"], item["question"], item["answer"]) for r in results for item in pick(r)}
        labelled = [labels[key] for key in keys if key in labels]
        good = sum(bool(row["acceptable"]) for row in labelled)
        return {"labelled": len(labelled), "acceptable": good,
                "share": round(good / len(labelled), 3) if labelled else None, "wilson_95": wilson(good, len(labelled))}

    seconds = [s for r in results for s in r["seconds_per_passage"]]
    return {**name, "sampled": total("sampled"), "kept": total("kept"), "invalid": total("invalid"),
            "unanswerable": total("unanswerable"),
            "failed": {c: sum(r["report"]["failed"].get(c, 0) for r in results) for c in CHECKS},  # runs before a check: 0
            "probe_passed": all(r["probe"]["passed"] for r in results),
            "mean_s_per_passage": round(statistics.mean(seconds), 1) if seconds else None,
            "median_s_per_passage": round(statistics.median(seconds), 1) if seconds else None,
            "kept_items": pooled(lambda result: result["items"]),
            "after_checks": {"kept": sum(len(still_kept(r)) for r in results), **pooled(still_kept)}}


def paired_rows(results: list[dict], labels: dict) -> list[dict]:
    """The prompts compared on the same passages: for each model, source and seed that more than one writer prompt
    ran on (the same sampled passages), a row per prompt; then per model, prompt and language over those."""
    runs: dict[tuple[str, str, int], dict[str, dict]] = {}
    for r in results:
        runs.setdefault((r["model"], r["source"], r["seed"]), {})[r.get("writer_prompt", FIRST_PROMPT)] = r
    shared = {key: by_prompt for key, by_prompt in runs.items() if len(by_prompt) > 1}
    rows = [group_row({"model": m, "prompt": prompt, "source": source, "language": r["language"], "seeds": [seed]},
                      [r], labels)
            for (m, source, seed), by_prompt in sorted(shared.items()) for prompt, r in sorted(by_prompt.items())]
    pooled: dict[tuple[str, str, str], list[dict]] = {}
    for (m, _, _), by_prompt in shared.items():
        for prompt, r in by_prompt.items():
            pooled.setdefault((m, prompt, r["language"]), []).append(r)
    return rows + [group_row({"model": m, "prompt": prompt, "source": "all", "language": lang}, group, labels)
                   for (m, prompt, lang), group in sorted(pooled.items())]


def summarize(labels_path: Path, out: Path) -> dict:
    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob(f"{PREFIX}*-*.json"))]
    labels = read_labels(labels_path)
    by_source: dict[tuple[str, str, str], list[dict]] = {}  # runs of other seeds add to their source's row
    by_language: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        prompt = r.get("writer_prompt", FIRST_PROMPT)
        by_source.setdefault((r["model"], prompt, r["source"], r["language"]), []).append(r)
        by_language.setdefault((r["model"], prompt, r["language"]), []).append(r)
    rows = [group_row({"model": m, "prompt": prompt, "source": source, "language": lang,
                       "seeds": [r["seed"] for r in group]}, group, labels)
            for (m, prompt, source, lang), group in by_source.items()]
    rows += [group_row({"model": m, "prompt": prompt, "source": "all", "language": lang}, group, labels)
             for (m, prompt, lang), group in sorted(by_language.items())]
    paired = paired_rows(results, labels)
    rejected = [{"model": r["model"], "source": r["source"], "query": r["query"], "answer": r["answer"],
                 "reason": r.get("reason", "")} for r in labels.values() if not r["acceptable"]]
    summary = {"labels": str(labels_path.relative_to(ROOT)) if labels_path.is_relative_to(ROOT) else str(labels_path),
               "rows": rows, "paired": paired, "rejected": rejected}
    out.with_name(out.name + ".json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    out.with_name(out.name + ".md").write_text(markdown(summary), encoding="utf-8")
    return summary


def markdown(summary: dict) -> str:
    def pct(part: dict) -> str:
        if not part["labelled"]:
            return "not labelled"
        low, high = part["wilson_95"]
        return f"{part['acceptable']}/{part['labelled']} = {part['share']:.0%} [{low:.0%}, {high:.0%}]"

    lines = ["# Synthesized questions: the share a person would accept", "",
             ("`python -m bench.llm.synth_acceptance` (the real `evolve evalset synthesize` on sampled passages, "
             f"probe recorded, synthesis forced); labels: `{summary['labels']}`. Acceptable: a question a person at "
             "the company would ask, whose answer is right and in the passage. Interval: 95% Wilson. "
             "'After checks': the kept items that pass today's `evalsets.question_checks`, re-applied."), "",
             ("| model | prompt | source | lang | probe | kept / sampled | invalid | unanswerable | dropped by checks | "
             "acceptable [95%] | after checks: kept, acceptable [95%] | s / passage (mean, median) |"),
             "| --- | --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for row in summary["rows"]:
        drops = ", ".join(f"{count} {name}" for name, count in row["failed"].items() if count) or "none"
        lines.append(f"| {row['model']} | {row['prompt']} | {row['source']} | {row['language']} | "
                     f"{'passed' if row['probe_passed'] else 'failed'} | {row['kept']}/{row['sampled']} | "
                     f"{row['invalid']} | {row['unanswerable']} | {drops} | {pct(row['kept_items'])} | "
                     f"{row['after_checks']['kept']}, {pct(row['after_checks'])} | "
                     f"{row['mean_s_per_passage']}, {row['median_s_per_passage']} |")
    if summary.get("paired"):
        lines += ["", "## The writer prompts on the same passages", "",
                  ("Each row: one prompt on the passages a seed samples (the same for every prompt); 'all' pools a "
                   "prompt's rows of one language."), "",
                  "| model | prompt | source | lang | seeds | kept / sampled | acceptable [95%] |",
                  "| --- | --- | --- | --- | --- | ---: | ---: |"]
        lines += [f"| {row['model']} | {row['prompt']} | {row['source']} | {row['language']} | "
                  f"{', '.join(map(str, row.get('seeds', []))) or 'paired'} | {row['kept']}/{row['sampled']} | "
                  f"{pct(row['kept_items'])} |" for row in summary["paired"]]
    lines += ["", f"{len(summary['rejected'])} kept items labelled not acceptable:", ""]
    lines += [f"- {r['model']} / {r['source']}: {r['query']!r} -> {r['answer'][:80]!r}: {r['reason']}"
              for r in summary["rejected"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--source", choices=sorted(SOURCES), help="the passages to synthesize from")
    parser.add_argument("--n", type=int, default=100, help="passages to sample (one question each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default=DEFAULT_PROMPT, help="the writer prompt")
    parser.add_argument("--cache", type=Path, help="keep the LLM calls in this file (a killed run resumes)")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/synth_acceptance-MODEL-SOURCE"
                                                 ".json; with --summarize: the stem of the .md and .json)")
    parser.add_argument("--summarize", action="store_true", help="no LLM: the labelled shares of every result file")
    parser.add_argument("--labels", type=Path, default=LABELS)
    args = parser.parse_args()
    if args.summarize:
        print(markdown(summarize(args.labels, args.out or RESULTS / "synth_acceptance")))
    elif args.source:
        run(args)
    else:
        parser.error("--source (a run) or --summarize")


if __name__ == "__main__":
    main()
