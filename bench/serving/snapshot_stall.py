"""How long does a feedback snapshot export hold up the requests the server records meanwhile?

    .venv/bin/python -m bench.serving.snapshot_stall [--requests 200000] [--seconds 10] [--every 0.5]

A FeedbackStore is filled with N served requests (ten hits each, like POST /search records them) and N/10
ratings. Then, for each way of exporting, a writer thread records a request every millisecond (as the
server's handlers do, through ``record_request``) while an exporter thread exports every ``--every``
seconds (the server's default is 5 s; shorter gives more exports to measure). Reported: the latency of
``record_request`` (p50, p99, max, how many took over 50 ms), the export time and how long each export
held the store lock.

- before: the export of evolve before incremental snapshots: both whole tables written to Parquet under
  the store lock (copied here, as it was);
- after: ``FeedbackStore.export_snapshot``: only the rows added since the last export, copied under the
  lock into a temporary table, written to a part file off the lock.

Writes bench/results/snapshot_stall.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import RESULTS
from evalsets import TABLES, FeedbackStore

HITS = [{"rank": r, "doc_id": f"doc-{r}", "chunk_id": f"doc-{r}#0", "score": 10.0 - r} for r in range(1, 11)]


def fill(store: FeedbackStore, n: int) -> None:
    """N requests and N/10 ratings in two statements (record_request one by one would take minutes)."""
    import json

    results = json.dumps(HITS)
    with store._lock:
        store._db.execute("INSERT INTO requests SELECT replace(uuid()::VARCHAR, '-', ''), now()::TIMESTAMP, "
                          "'search', 'what does query ' || i || ' ask about', 'v1', 'bm25-english', ?, NULL, 12.5 "
                          "FROM range(?) t(i)", [results, n])
        store._db.execute("INSERT INTO feedback SELECT md5(request_id), now()::TIMESTAMP, request_id, query, 'bad', "
                          "'wrong document', NULL, 'v1', 'api' FROM requests USING SAMPLE 10 PERCENT (bernoulli)")
        store.dirty = True


def export_whole_tables_under_the_lock(store: FeedbackStore) -> float:
    """The export as it was: every table, whole, written under the store lock; seconds the lock was held."""
    folder = store.snapshot_dir.with_name("feedback-snapshot-before")
    folder.mkdir(parents=True, exist_ok=True)
    with store._lock:
        started = time.perf_counter()
        reader = store._db.cursor()
        try:
            for table in TABLES:
                tmp = folder / f".{table}.{uuid.uuid4().hex}.parquet"
                reader.table(table).write_parquet(str(tmp))
                os.replace(tmp, folder / f"{table}.parquet")
        finally:
            reader.close()
        store.dirty = False
        return time.perf_counter() - started


def export_new_rows(store: FeedbackStore) -> float:
    store.export_snapshot()
    return store.export_status()["lock_ms"] / 1000


def measure(store: FeedbackStore, export, seconds: float, every: float) -> dict[str, float]:
    latencies, exports, locks = [], [], []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            store.record_request("search", f"live query {i}", HITS, "v1", "bm25-english", 12.5)
            latencies.append(time.perf_counter() - started)
            i += 1
            time.sleep(0.001)

    def exporter() -> None:
        while not stop.wait(every):
            started = time.perf_counter()
            locks.append(export(store))
            exports.append(time.perf_counter() - started)

    threads = [threading.Thread(target=writer), threading.Thread(target=exporter)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    ms = 1000
    return {"recorded": len(ordered), "p50_ms": ordered[len(ordered) // 2] * ms,
            "p99_ms": ordered[int(len(ordered) * 0.99)] * ms, "max_ms": ordered[-1] * ms,
            "over_50ms": sum(t > 0.05 for t in ordered), "exports": len(exports),
            "export_ms": statistics.median(exports) * ms if exports else float("nan"),
            "lock_ms": statistics.median(locks) * ms if locks else float("nan"),
            "lock_max_ms": max(locks) * ms if locks else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=0.5)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = FeedbackStore(Path(tmp) / "feedback.duckdb")
        started = time.perf_counter()
        fill(store, args.requests)
        filled = time.perf_counter() - started
        first = time.perf_counter()
        store.export_snapshot()  # the server's first export: the whole history once, at startup
        first = time.perf_counter() - first
        for name, export in (("before", export_whole_tables_under_the_lock), ("after", export_new_rows)):
            rows[name] = measure(store, export, args.seconds, args.every)
            print(name, rows[name], flush=True)
        counts = {t: store.count(t) for t in TABLES}
        store.close()
    lines = [f"# Snapshot export vs. request recording ({time.strftime('%Y-%m-%d', time.gmtime())})", "",
             f"{args.requests:,} requests and {counts['feedback']:,} ratings in the store (filled in {filled:.1f} s; "
             f"the first, whole export took {first:.2f} s); a request recorded every ms for {args.seconds:g} s "
             f"per mode, an export every {args.every:g} s; {os.cpu_count()} CPU cores (shared).", "",
             "| export | requests recorded | p50 ms | p99 ms | max ms | > 50 ms | exports | export ms (median) "
             "| lock held ms (median / max) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['recorded']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.1f} "
                     f"| {row['over_50ms']} | {row['exports']} | {row['export_ms']:.1f} | {row['lock_ms']:.1f} / "
                     f"{row['lock_max_ms']:.1f} |")
    lines += ["", "before: both whole tables written to Parquet under the store lock (the old export); after: the "
              "new rows copied under the lock, written to a part file off it (`FeedbackStore.export_snapshot`)."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "snapshot_stall.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
