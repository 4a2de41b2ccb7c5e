"""Does a long loop stay the same size? Disk and memory of `evolve start`, sampled while it iterates.

    .venv/bin/python -m bench.loop.soak [--project DIR] [--budget 20m] [--trials 3] [--every 10]

Runs `evolve start --no-llm --new` on the bundled demo set in ``--project`` (reuse one to start with warm
caches: the growth per iteration is what is measured, not the first embeddings) and samples, every ``--every``
seconds: the loop's checkpoint files, ``mlruns/``, ``.evolve/`` (caches, studies, logs) and the process's
resident memory, with the number of iterations printed so far. Writes ``bench/results/loop_soak.md``: per
quarter of the run, bytes per iteration for each, and what 48 hours at the measured rate would leave.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench import RESULTS

OUT = RESULTS / "loop_soak.md"
ITERATION = re.compile(r"^iteration \d+:", re.MULTILINE)


def size(path: Path, pattern: str = "**/*") -> int:
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file()) if path.exists() else 0


def rss_kb(pid: int) -> int:
    try:
        return int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith("VmRSS")))
    except (OSError, StopIteration):
        return 0


KINDS = {"checkpoints": "checkpoint files", "mlruns": "mlruns/", "cache": ".evolve/cache (embeddings, scores)",
         "rest": ".evolve/ besides (studies, Optuna, decision log)"}


def sample(project: Path, log: Path, pid: int, began: float) -> dict[str, float]:
    evolve = project / ".evolve"
    checkpoints, cache = size(evolve / "agent", "checkpoints.sqlite*"), size(evolve / "cache")
    return {"seconds": time.time() - began, "iterations": len(ITERATION.findall(log.read_text(errors="replace"))),
            "checkpoints": checkpoints, "mlruns": size(project / "mlruns"), "cache": cache,
            "rest": size(evolve) - cache - checkpoints, "rss": rss_kb(pid) * 1024}


def summary(samples: list[dict[str, float]], args: argparse.Namespace) -> str:
    done = [s for s in samples if s["iterations"] > 0]
    lines = ["# A long loop's disk and memory", "",
             f"`python -m bench.loop.soak --budget {args.budget} --trials {args.trials}` (demo set, no LLM, "
             f"{args.trials} trials an iteration): {samples[-1]['iterations']:.0f} iterations sampled in "
             f"{samples[-1]['seconds'] / 60:.1f} min. Growth per iteration between samples, per quarter of the "
             "iterations (MB per iteration; memory: resident MB at the quarter's end).", "",
             "| iterations | " + " | ".join(KINDS.values()) + " | resident memory MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    if len(done) < 2:
        return "\n".join(lines + ["", "too few iterations to measure"]) + "\n"
    last = done[-1]["iterations"]
    bounds = sorted({0, *(round(last * q / 4) for q in (1, 2, 3)), last})
    for low, high in zip(bounds, bounds[1:], strict=False):
        a = next(s for s in done if s["iterations"] >= low)
        b = next(s for s in done if s["iterations"] >= high)
        span = max(b["iterations"] - a["iterations"], 1)
        lines.append(f"| {a['iterations']:.0f}-{b['iterations']:.0f} | "
                     + " | ".join(f"{(b[k] - a[k]) / span / 1e6:.3f}" for k in KINDS)
                     + f" | {b['rss'] / 1e6:.0f} |")
    # the last quarter's rates: the write-ahead log fills once at the start, the embedding cache while new (model,
    # chunking) pairs are embedded; what still grows at the end is what a long run keeps adding
    first = next(s for s in done if s["iterations"] >= bounds[-2])
    end = done[-1]
    per_hour = (end["iterations"] - first["iterations"]) / max(end["seconds"] - first["seconds"], 1) * 3600
    iterations = max(end["iterations"] - first["iterations"], 1)
    growth = {k: (end[k] - first[k]) / iterations * per_hour * 48 / 1e9 for k in KINDS}
    lines += ["", f"At the last quarter's {per_hour:.0f} iterations an hour and growth per iteration, 48 hours would "
              "add " + ", ".join(f"{KINDS[k]} {gb:.1f} GB" for k, gb in growth.items()) + " (the embedding cache "
              "stops growing once the space's (model, chunking) pairs are all embedded)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path(".soak"), help="the loop's project folder (reused)")
    parser.add_argument("--budget", default="20m")
    parser.add_argument("--trials", type=int, default=3, help="trials per iteration")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    args.project.mkdir(parents=True, exist_ok=True)
    log = args.project / "soak.log"
    evolve = Path(sys.executable).with_name("evolve")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    began = time.time()
    with log.open("w") as out:
        process = subprocess.Popen([str(evolve), "start", "--no-llm", "--new", "--budget", args.budget,
                                    "--trials-per-iteration", str(args.trials), "--max-iterations", "100000"],
                                   cwd=args.project, stdout=out, stderr=subprocess.STDOUT, env=env)
        samples = []
        while process.poll() is None:
            samples.append(sample(args.project, log, process.pid, began))
            print(samples[-1], flush=True)
            time.sleep(args.every)
    write(samples, args)


def write(samples: list[dict[str, float]], args: argparse.Namespace) -> None:
    """The table from the samples of the running process (at exit SQLite folds its write-ahead log away)."""
    text = summary(samples, args)
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
