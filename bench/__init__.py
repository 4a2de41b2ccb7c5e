"""Benchmarks of evolve, by topic; each script runs from the repository root as a module
(``python -m bench.search.efficiency``). bench/README.md lists every script, what it measures and what it writes."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: configs, data and caches are found from here
RESULTS = ROOT / "bench" / "results"  # every script's result files, in one folder so the docs' links hold
