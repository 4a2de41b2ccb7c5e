"""The feedback store in-process: one strict feedback model, event ids, a batch as one transaction, snapshots
read without splicing paths into SQL, and which sources of a failure set gate promotion."""

import re

import duckdb
import pytest

from evalsets import load_evalset
from evalsets.failures import gating_subset
from evalsets.feedback import (FeedbackEvent, FeedbackRefused, FeedbackStore, UnknownRequest, parse_event,
                               read_snapshot)
from guardrails.policy import Policy
from helpers import write_evalset


@pytest.mark.parametrize("row, message", [
    ({"rating": "bad", "query": "q", "request_id": True}, "request_id: Input should be a valid string"),
    ({"rating": "bad", "query": 5}, "query: Input should be a valid string"),
    ({"rating": "BAD", "query": "q"}, "rating: Input should be 'good' or 'bad'"),
    ({"rating": "bad"}, "needs a non-empty 'query' or the 'request_id'"),
    ({"rating": "bad", "query": "   "}, "needs a non-empty 'query'"),
    ({"rating": "bad", "query": "x" * 4001}, "query: String should have at most 4000 characters"),
    ({"rating": "bad", "query": "q", "correct_doc_id": "d" * 201}, "correct_doc_id: String should have at most 200"),
    ({"rating": "bad", "query": "q", "event_id": ""}, "event_id: String should have at least 1 character"),
    ({"rating": "bad", "query": "q", "source": "api"}, "source: Extra inputs are not permitted"),
    (["bad", "q"], "Input should be a valid dictionary"),
])
def test_the_one_feedback_model_is_strict(row, message):
    with pytest.raises(FeedbackRefused, match=re.escape(message)):
        parse_event(row)


def test_event_ids_make_the_same_event_one_event():
    one = parse_event({"rating": "bad", "query": "q", "comment": "c"})
    same = parse_event({"comment": "c", "query": "q", "rating": "bad"})
    other = parse_event({"rating": "bad", "query": "q", "comment": "d"})
    assert one.event_id == same.event_id != other.event_id and len(one.event_id) == 64
    assert parse_event({"rating": "bad", "query": "q", "event_id": "helpdesk-7"}).event_id == "helpdesk-7"
    assert parse_event(one.model_dump(exclude_none=True)) == one  # what the CLI sends, the server reads back


def test_a_batch_is_one_transaction_stored_once_and_vouched_for(tmp_path):
    store = FeedbackStore(tmp_path / "it's a project" / "feedback.duckdb")  # a quote in the path is just a name
    events = [parse_event({"rating": "bad", "query": f"q{i}"}) for i in range(3)]
    broken = FeedbackEvent.model_construct(rating="meh", query="x", event_id="e-broken", request_id=None,
                                           comment=None, correct_doc_id=None, config_version=None)
    with pytest.raises(duckdb.ConstraintException):
        store.record_feedback([*events, broken], source="import")
    assert store.count("feedback") == 0  # the three good ones were rolled back with it
    assert store.record_feedback(events, source="import") == [True] * 3
    again = store.record_feedback([*events, parse_event({"rating": "good", "query": "new"})], source="import")
    assert again == [False, False, False, True] and store.count("feedback") == 4
    with pytest.raises(ValueError, match="source"):
        store.record_feedback(events, source="anything")

    request_id = store.record_request("search", "What is X?", [], "v1", "cfg", 1.0)
    with pytest.raises(UnknownRequest, match="unknown request_id 'nope'"):
        store.vouch(parse_event({"rating": "bad", "request_id": "nope"}))
    vouched = store.vouch(parse_event({"rating": "bad", "request_id": request_id, "query": " what is  x? "}), {"d1"})
    assert (vouched.query, vouched.config_version) == ("What is X?", "v1")
    for row, message in [({"query": "something else"}, "is not the query of request"),
                         ({"config_version": "v2"}, "is not the one that served"),
                         ({"correct_doc_id": "zzz"}, "'zzz' is not a document of this corpus")]:
        with pytest.raises(FeedbackRefused, match=message):
            store.vouch(parse_event({"rating": "bad", "request_id": request_id, **row}), {"d1"})
    ok, refused = store.vouch_all([{"rating": "bad", "request_id": request_id}, {"rating": "bad", "k": True},
                                   {"rating": "bad", "request_id": "nope"}], {"d1"})
    assert len(ok) == 1 and [i for i, _ in refused] == [1, 2]

    folder = store.export_snapshot()
    assert read_snapshot(folder, "SELECT count(*) AS n FROM feedback") == [{"n": 4}]
    store.close()


def test_read_snapshot_never_splices_a_path_into_sql(tmp_path, monkeypatch):
    """A folder name crafted to close the quoted path and run COPY ... TO: read as a plain name, nothing written."""
    monkeypatch.chdir(tmp_path)
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT 7 AS n")
    crafted = tmp_path / "x'); COPY (SELECT 42 AS x) TO 'pwned.csv'; CREATE VIEW z AS SELECT * FROM read_parquet('x"
    crafted.mkdir()
    for target in (crafted / "requests.parquet", crafted / "feedback.parquet", tmp_path / "x"):
        connection.table("t").write_parquet(str(target))  # every file the spliced statements would need
    connection.close()
    assert read_snapshot(crafted, "SELECT n FROM feedback") == [{"n": 7}]
    assert not (tmp_path / "pwned.csv").exists()


def test_only_the_sources_the_policy_lists_gate_promotion(tmp_path, capsys):
    from agent.project import gating_failure_set

    docs = [{"doc_id": f"d{i}", "text": f"document {i}"} for i in range(3)]
    queries = [{"query_id": "f0", "text": "a", "sources": ["api"], "request_ids": ["r1"]},
               {"query_id": "f1", "text": "b", "sources": ["import"], "request_ids": []},
               {"query_id": "f2", "text": "c", "sources": ["api", "import"], "request_ids": ["r2"]},
               {"query_id": "f3", "text": "d"}]  # written before provenance existed
    folder = write_evalset(tmp_path / "failures", docs, queries, [(q["query_id"], "d0", 1) for q in queries])
    full = load_evalset(folder)
    assert full.queries[0].extra == {"sources": ["api"], "request_ids": ["r1"]} and full.queries[3].extra == {}
    assert [q.query_id for q in gating_subset(full, ["api"]).queries] == ["f0", "f2"]
    assert [q.query_id for q in gating_subset(full, ["import"]).queries] == ["f1", "f2"]
    assert [q.query_id for q in gating_subset(full, ["unknown"]).queries] == ["f3"]

    assert Policy().failure_set_sources == ["api"]
    gating = gating_failure_set(folder, Policy())
    assert [q.query_id for q in gating.queries] == ["f0", "f2"]
    said = capsys.readouterr().out
    assert "2 of 4 queries gate promotion, 2 left out by the policy (failure_set_sources: api)" in said
    assert gating_failure_set(folder, Policy(failure_set_sources=[])) is None
    assert gating_failure_set(None, Policy()) is None
    with pytest.raises(ValueError):
        Policy(failure_set_sources=["imports"])
