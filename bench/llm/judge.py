"""Issue-6 acceptance: does the local judge separate right answers from wrong ones? Is a repeat run free?

    .venv/bin/python -m bench.llm.judge [--model qwen2.5-coder-1.5b] [--n 30] [--base-url URL --served-model NAME]

On n claude-docs-qa questions, judges (a) the reference answer and (b) a deliberately wrong answer (the
reference answer of another question), with the correctness rubric; then runs the same judging again
to time the cache. Writes bench/results/judge.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from bench import RESULTS, ROOT
from bench.llm.args import add_llm_arguments, bench_client
from evalsets import load_evalset
from experiments import Judge, mean_score
from pipelines.llm import LLMClient


def run(client: LLMClient, n: int) -> dict:
    data = load_evalset(ROOT / "evalsets" / "data" / "claude-docs-qa").sample(n, seed=0)
    questions = [(q.text, q.answers[0]) for q in data.queries]
    wrong = [questions[(i + 7) % len(questions)][1] for i in range(len(questions))]
    judge = Judge(client)
    items_right = [(q, a, a) for q, a in questions]
    items_wrong = [(q, w, a) for (q, a), w in zip(questions, wrong)]
    started = time.perf_counter()
    right = judge.correctness_many(items_right)
    wrong_scores = judge.correctness_many(items_wrong)
    cold = time.perf_counter() - started
    calls = client.calls
    started = time.perf_counter()
    judge.correctness_many(items_right + items_wrong)
    warm = time.perf_counter() - started
    return {"judge_model": client.model, "queries": len(questions),
            "reference_answers": mean_score(right), "wrong_answers": mean_score(wrong_scores),
            "first_run_seconds": round(cold, 1), "repeat_run_seconds": round(warm, 3),
            "llm_calls_first_run": calls, "llm_calls_repeat_run": client.calls - calls,
            "examples": [{"question": q, "wrong_answer": w[:120], "verdict": s.value, "reason": s.reason}
                         for (q, w, _), s in list(zip(items_wrong, wrong_scores))[:3]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--n", type=int, default=30)
    args = parser.parse_args()
    with bench_client(args) as client:  # a cold cache: the first run pays
        result = run(client, args.n)
    random.seed(0)
    out = RESULTS / "judge.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=2))


if __name__ == "__main__":
    main()
