"""The feedback snapshot: append-only parts, consistent for readers, off the request path, failures on record."""

import json
import threading
import time

import pytest

from evalsets.feedback import MERGE_FANOUT, FeedbackStore, SnapshotExporter, parse_event, read_snapshot


def manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def record(store, n, start=0):
    for i in range(start, start + n):
        request_id = store.record_request("search", f"query {i}", [{"doc_id": "d"}], "v1", "cfg", 1.0)
        store.record_feedback([parse_event({"rating": "bad", "request_id": request_id, "query": f"query {i}"})],
                              source="api")


@pytest.fixture
def store(tmp_path):
    """The test's feedback store, closed after it."""
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    yield store
    store.close()


def snapshot_requests(store):
    """How many requests the store's snapshot holds, as a reader of the Parquet files counts them."""
    return read_snapshot(store.snapshot_dir, "SELECT count(*) AS n FROM requests")[0]["n"]


def test_each_export_writes_only_the_new_rows_and_readers_see_them_all(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    record(store, 50)
    folder = store.export_snapshot()
    record(store, 3, start=50)
    store.export_snapshot()
    parts = manifest(folder)["tables"]["requests"]["parts"]
    assert [p["rows"] for p in parts] == [50, 3]  # the second export wrote the 3 new rows, not 53
    store.export_snapshot()  # nothing new: no new part
    assert len(manifest(folder)["tables"]["requests"]["parts"]) == 2
    assert read_snapshot(folder, "SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM requests") == [
        {"n": 53, "d": 53}]
    joined = read_snapshot(folder, "SELECT count(*) AS n FROM feedback f JOIN requests r USING (request_id) "
                                   "WHERE r.query = f.query")
    assert joined == [{"n": 53}]
    store.close()

    reopened = FeedbackStore(tmp_path / "feedback.duckdb")  # a restart goes on from the manifest's watermark
    record(reopened, 1, start=53)
    reopened.export_snapshot()
    assert [p["rows"] for p in manifest(folder)["tables"]["requests"]["parts"]] == [50, 3, 1]
    assert read_snapshot(folder, "SELECT count(*) AS n FROM feedback") == [{"n": 54}]
    reopened.close()


def test_parts_are_merged_so_a_reader_opens_few_files(store):
    for i in range(MERGE_FANOUT * MERGE_FANOUT + 3):
        record(store, 1, start=i)
        store.export_snapshot()
    parts = manifest(store.snapshot_dir)["tables"]["feedback"]["parts"]
    assert len(parts) <= 2 * (MERGE_FANOUT - 1)
    assert sum(p["rows"] for p in parts) == MERGE_FANOUT * MERGE_FANOUT + 3
    assert read_snapshot(store.snapshot_dir, "SELECT count(DISTINCT feedback_id) AS n FROM feedback") == [
        {"n": MERGE_FANOUT * MERGE_FANOUT + 3}]


def test_a_manifest_that_does_not_match_the_database_is_rebuilt(tmp_path):
    store = FeedbackStore(tmp_path / "a" / "feedback.duckdb")
    record(store, 5)
    store.export_snapshot()
    store.close()
    other = FeedbackStore(tmp_path / "b" / "feedback.duckdb")  # a new database under the old snapshot
    (tmp_path / "b" / "feedback-snapshot").symlink_to(tmp_path / "a" / "feedback-snapshot")
    record(other, 2)
    other.export_snapshot()
    assert snapshot_requests(other) == 2
    other.close()


def test_the_parquet_write_does_not_hold_up_requests(store, monkeypatch):
    """The store lock is held to copy the new rows, not while the part files are written."""
    record(store, 10)
    writing, release = threading.Event(), threading.Event()
    original = store._write_part

    def slow_write(*args):
        writing.set()
        release.wait(30)
        return original(*args)

    monkeypatch.setattr(store, "_write_part", slow_write)
    exporter = threading.Thread(target=store.export_snapshot)
    exporter.start()
    assert writing.wait(30)
    started = time.perf_counter()
    store.record_request("search", "during the export", [], "v1", "cfg", 1.0)  # old code: blocked until release
    waited = time.perf_counter() - started
    release.set()
    exporter.join(30)
    assert waited < 1.0
    store.export_snapshot()
    assert snapshot_requests(store) == 11


def test_a_failed_export_is_on_record_and_the_exporter_lives_on(store, tmp_path, monkeypatch):
    record(store, 2)
    assert store.export_status()["ok"] and store.export_status()["last_success"] is None
    failures = []

    def broken(*args):
        failures.append(1)
        raise OSError(28, "No space left on device")

    original = store._write_part
    monkeypatch.setattr(store, "_write_part", broken)
    exporter = SnapshotExporter(store, interval=0.05)
    exporter.start()
    deadline = time.time() + 30
    while len(failures) < 2 and time.time() < deadline:  # it failed, and tried again at the next interval
        time.sleep(0.02)
    status = store.export_status()
    assert len(failures) >= 2 and exporter.is_alive()
    assert not status["ok"] and "No space left on device" in status["last_error"] and status["last_error_at"]
    monkeypatch.setattr(store, "_write_part", original)
    while not store.export_status()["ok"] and time.time() < deadline:
        time.sleep(0.02)
    exporter.stop()
    exporter.join(5)
    assert store.export_status()["ok"] and store.export_status()["last_success"]
    assert snapshot_requests(store) == 2  # nothing lost
    with pytest.raises(FileNotFoundError):
        read_snapshot(tmp_path / "nowhere", "SELECT 1")
