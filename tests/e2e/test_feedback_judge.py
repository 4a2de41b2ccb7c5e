"""`evolve feedback failures` as a process against a real llama.cpp server (SmolLM2-135M): a bad rating without a
marked document goes to the LLM judge with the documents its request returned. SmolLM2 judges poorly, so these
tests assert the mechanics (the judge is asked, its model and verdict are recorded, every query is counted), not
which document it picks."""

import re

import duckdb
import pytest

from evalsets import load_evalset
from evalsets.feedback import FeedbackStore, parse_event
from helpers import evolve, free_port, llm_env, write_evalset

DOCS = [{"doc_id": "rate", "title": "Rate limits", "text": "Each API key may send 50 requests per minute."},
        {"doc_id": "keys", "title": "API keys", "text": "Create an API key in the console under Settings."},
        {"doc_id": "models", "title": "Models", "text": "The large model has a context window of 200k tokens."}]
UNMARKED = "How many requests per minute may one key send?"


@pytest.fixture(scope="module")
def llm(smollm2_server):
    return llm_env(smollm2_server)


@pytest.fixture
def project(tmp_path):
    """A real feedback store: two served searches rated bad, one with the document the user marked right."""
    write_evalset(tmp_path / "data", DOCS, [{"query_id": "q", "text": "q"}], [("q", "rate", 1)])
    store = FeedbackStore(tmp_path / ".evolve" / "feedback.duckdb")
    results = [{"rank": rank, "doc_id": doc["doc_id"], "chunk_id": doc["doc_id"] + "#0", "score": 1.0 / rank}
               for rank, doc in enumerate(reversed(DOCS), start=1)]
    unmarked = store.record_request("search", UNMARKED, results, "v1", "bm25-english", 3.0)
    marked = store.record_request("search", "Where do I create a key?", results, "v1", "bm25-english", 3.0)
    store.record_feedback([parse_event({"rating": "bad", "request_id": unmarked}),
                           parse_event({"rating": "bad", "request_id": marked, "correct_doc_id": "keys"})],
                          source="api")
    store.close()
    return tmp_path


def failures(project, *extra, env=None):
    result = evolve("feedback", "failures", "--corpus", str(project / "data"), "--out", str(project / "failures"),
                 "--project-dir", str(project), *extra, cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 bad ratings -> " in result.stdout and "1 with a user-marked document" in result.stdout
    return result.stdout, load_evalset(project / "failures")


def test_a_bad_rating_without_a_document_is_judged_and_recorded_or_counted(project, llm):
    said, built = failures(project, env=llm)
    assert "judge smollm2-135m" in said
    queries = int(re.search(r"-> (\d+) queries", said).group(1))
    left = int(re.search(r"(\d+) left out without a known right document", said).group(1))
    assert queries == len(built.queries) and queries + left == 2
    marked = next(q for q in built.queries if q.text != UNMARKED)
    assert built.qrels[marked.query_id] == {"keys": 1} and marked.metadata == {"relevant_by": "user"}
    judged = [q for q in built.queries if q.text == UNMARKED]
    if judged:  # the judge named a returned document: it is the qrel, with the judge's model and reason
        record = judged[0].metadata["judge"]
        assert judged[0].metadata["relevant_by"] == "judge" and record["model"] == "smollm2-135m"
        assert built.qrels[judged[0].query_id] == {record["doc_id"]: 1} and record["chunk_id"] == record["doc_id"] + "#0"
        assert 1 <= record["passage"] <= 3 and isinstance(record["reason"], str)
        assert "1 with the document the judge named" in said
        assert judged[0].extra == {"sources": ["api"], "request_ids": [judged[0].extra["request_ids"][0]]}
    else:  # none answers, or no valid verdict: left out, and said why
        assert left == 1
        assert ("1 the judge found no returned document answers" in said
                or "1 no valid verdict from the judge" in said), said

    # the judge's answers are cached: a rerun asks the server nothing new and writes the same set
    cache = project / ".evolve" / "llm_cache.duckdb"
    with duckdb.connect(str(cache), read_only=True) as db:
        cached = db.execute("SELECT count(*) FROM llm_cache").fetchone()[0]
    first = (project / "failures" / "queries.jsonl").read_text()
    failures(project, env=llm)
    with duckdb.connect(str(cache), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM llm_cache").fetchone()[0] == cached >= 1
    assert (project / "failures" / "queries.jsonl").read_text() == first


def test_no_judge_or_no_llm_leaves_such_ratings_out_counted(project):
    said, built = failures(project, "--no-judge")
    assert "1 not judged" in said and "--no-judge" in said and [q.metadata for q in built.queries] == [
        {"relevant_by": "user"}]

    dead = {"EVOLVE_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "EVOLVE_LLM_MODEL": "smollm2-135m"}
    result = evolve("feedback", "failures", "--corpus", str(project / "data"), "--out", str(project / "failures"),
                 "--project-dir", str(project), cwd=project, env=dead)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "no LLM judge:" in result.stderr and "1 not judged" in result.stdout
    assert "judge unavailable" in result.stdout and "1 queries" in result.stdout
