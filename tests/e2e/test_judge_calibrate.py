"""`evolve judge calibrate` as a process against a real llama.cpp server (SmolLM2-135M): labels files and users'
ratings of served answers are judged, the agreement is printed and stored for the judge model. SmolLM2 judges
poorly, so these tests assert the mechanics (every item is judged or counted invalid, the row stored is the one
printed, the judge saw the right texts), not its accuracy."""

import json

import duckdb
import pytest

from evalsets.feedback import FeedbackStore, parse_event
from experiments import CalibrationStore
from helpers import BM25, Server, evolve, llm_env, write_evalset

MODEL = "smollm2-135m"
DOCS = [{"doc_id": "rate", "title": "Rate limits", "text": "Each API key may send 50 requests per minute."},
        {"doc_id": "keys", "title": "API keys", "text": "Create an API key in the console under Settings."}]
LABELS = [
    {"id": "right", "question": "How many requests per minute may a key send?", "answer": "50 a minute.",
     "reference": "50 requests per minute", "label": 1},
    {"id": "wrong", "question": "How many requests per minute may a key send?", "answer": "Settings.",
     "reference": "50 requests per minute", "label": 0},
    {"id": "served", "question": "Where do I create a key?", "answer": "In the console under Settings.",
     "contexts": ["Create an API key in the console under Settings."], "label": 1, "source": "helpdesk"},
]


@pytest.fixture(scope="module")
def llm(smollm2_server):
    return llm_env(smollm2_server)


def calibrate(project, *args, env=None):
    return evolve("judge", "calibrate", "--project-dir", str(project), *args, cwd=project, env=env)


def write_labels(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_labels_file_is_judged_printed_and_stored_for_the_judge_model(tmp_path, llm):
    labels = write_labels(tmp_path / "labels.jsonl", LABELS)
    result = calibrate(tmp_path, "--labels", str(labels), env=llm)
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout
    assert f"judge {MODEL} against human labels" in said
    for column in ("source", "metric", "accuracy", "kappa", "invalid", "confusion (tp fp fn tn)"):
        assert column in said
    store = CalibrationStore(tmp_path / ".evolve" / "judge_calibration.duckdb")
    latest = store.latest(MODEL)
    assert latest is not None and latest.judge_model == MODEL
    assert (latest.source, latest.metric) == ("labels.jsonl + helpdesk", "answer_quality+correctness")
    assert latest.n + latest.invalid == 3 and sum(latest.confusion.values()) == latest.n
    rows = {line.split("│")[1].strip(): line for line in said.splitlines() if line.count("│") >= 8}
    assert set(rows) >= {"labels.jsonl", "helpdesk", "all"}
    cells = [cell.strip() for cell in rows["all"].split("│")[1:-1]]
    confusion = latest.confusion
    assert cells[2:] == [str(latest.n), "n/a" if latest.accuracy is None else f"{latest.accuracy:.3f}",
                         "n/a (one class)" if latest.kappa is None else f"{latest.kappa:.3f}", str(latest.invalid),
                         f"{confusion['tp']} {confusion['fp']} {confusion['fn']} {confusion['tn']}"]
    assert f"stored as the latest calibration of {MODEL}" in said

    # --json: the same measurement (a rerun is answered from the request cache), stdout is the JSON alone
    again = calibrate(tmp_path, "--labels", str(labels), "--json", env=llm)
    assert again.returncode == 0, again.stderr
    reported = json.loads(again.stdout)
    assert reported["judge_model"] == MODEL and reported["store"] == str(store.path)
    assert reported["overall"] == {"source": latest.source, "metric": latest.metric, "n": latest.n,
                                   "accuracy": latest.accuracy, "kappa": latest.kappa, "invalid": latest.invalid,
                                   "confusion": latest.confusion}
    assert [s["source"] for s in reported["sources"]] == ["labels.jsonl", "helpdesk"]
    assert sum(s["n"] + s["invalid"] for s in reported["sources"]) == 3
    assert len(store.history(MODEL)) == 2 and store.latest(MODEL).created > latest.created


def feedback_project(tmp_path):
    """A real feedback store: two served answers rated good and bad, and a rated search (not an answer)."""
    write_evalset(tmp_path / "data", DOCS, [{"query_id": "q", "text": "q"}], [("q", "rate", 1)])
    (tmp_path / "bm25.yaml").write_text(BM25)
    store = FeedbackStore(tmp_path / ".evolve" / "feedback.duckdb")
    results = [{"rank": rank, "doc_id": doc["doc_id"], "chunk_id": doc["doc_id"] + "#0", "score": 1.0 / rank}
               for rank, doc in enumerate(DOCS, start=1)]
    good = store.record_request("answer", "How many requests per minute may a key send?", results, "v1",
                                "bm25-english", 5.0, answer="50 requests per minute.")
    bad = store.record_request("answer", "Where do I create a key?", results, "v1", "bm25-english", 5.0,
                               answer="Ask your manager.")
    search = store.record_request("search", "rate limits", results, "v1", "bm25-english", 1.0)
    store.record_feedback([parse_event({"rating": "good", "request_id": good}),
                           parse_event({"rating": "bad", "request_id": bad}),
                           parse_event({"rating": "bad", "request_id": search})], source="api")
    store.close()
    return tmp_path


def judged_prompts(project):
    with duckdb.connect(str(project / ".evolve" / "llm_cache.duckdb"), read_only=True) as db:
        return [json.loads(row[0]) for row in db.execute("SELECT request FROM llm_cache").fetchall()]


def test_rated_answers_are_judged_on_the_chunks_they_were_written_from(tmp_path, llm):
    project = feedback_project(tmp_path)
    result = calibrate(project, "--feedback", "--corpus", str(project / "data"), "--config", "bm25.yaml",
                       "--json", env=llm)
    assert result.returncode == 0, result.stdout + result.stderr
    reported = json.loads(result.stdout)
    overall = reported["overall"]
    assert (overall["source"], overall["metric"]) == ("feedback", "answer_quality")
    assert overall["n"] + overall["invalid"] == 2       # the rated search is no answer: not judged
    assert any("returned chunks of" in note for note in reported["notes"])
    latest = CalibrationStore(project / ".evolve" / "judge_calibration.duckdb").latest(MODEL)
    assert latest.source == "feedback" and latest.n == overall["n"]
    prompts = {next(m["content"] for m in request["messages"] if m["role"] == "user")  # a retry repeats it
               for request in judged_prompts(project)}
    assert len(prompts) == 2
    for prompt in prompts:  # the answer, its question and the texts of the chunks it was served with
        assert "Each API key may send 50 requests per minute." in prompt
        assert "Create an API key in the console under Settings." in prompt
    assert any("Answer: Ask your manager." in prompt for prompt in prompts)


def test_while_evolve_serve_holds_the_store_it_reads_the_snapshot_and_the_servers_corpus(tmp_path, llm):
    project = feedback_project(tmp_path)
    server = Server(project / "data", project)
    try:
        result = calibrate(project, "--feedback", "--config", "bm25.yaml", "--json", env=llm)
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    reported = json.loads(result.stdout)
    assert reported["overall"]["source"] == "feedback"
    assert reported["overall"]["n"] + reported["overall"]["invalid"] == 2
    assert any(f"returned chunks of {project / 'data'}" in note for note in reported["notes"])


def test_without_a_corpus_the_ratings_are_judged_on_what_the_store_holds_and_it_says_so(tmp_path, llm):
    project = feedback_project(tmp_path)
    labels = write_labels(tmp_path / "labels.jsonl", LABELS[:1])
    result = calibrate(project, "--feedback", "--labels", str(labels), env=llm)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "judged without the texts of the chunks" in result.stdout
    latest = CalibrationStore(project / ".evolve" / "judge_calibration.duckdb").latest(MODEL)
    assert latest.source == "labels.jsonl + feedback" and latest.n + latest.invalid == 3


def test_no_labels_a_bad_file_or_no_ratings_is_one_line_before_any_llm(tmp_path):
    nothing = calibrate(tmp_path)
    assert nothing.returncode == 2 and "give --labels FILE and/or --feedback" in nothing.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(LABELS[0]) + "\n" + json.dumps({**LABELS[1], "label": "no"}) + "\n")
    refused = calibrate(tmp_path, "--labels", str(bad))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"{bad}:2: label" in refused.stderr

    missing = calibrate(tmp_path, "--labels", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 2 and "labels file not found" in missing.stderr

    empty = calibrate(tmp_path, "--feedback")
    assert empty.returncode == 2 and "no rated answers" in empty.stderr
    assert not (tmp_path / ".evolve" / "judge_calibration.duckdb").exists()
