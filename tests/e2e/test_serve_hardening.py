"""`evolve serve` against hostile or careless clients: a real server process with a token and small limits."""

import json
import socket
import time

import httpx
import pytest

from helpers import Server, evolve, jsonl

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMITS = ("--max-body-bytes", "2000", "--max-import-bytes", "6000", "--max-query-chars", "300")


@pytest.fixture(scope="module")
def guarded(tiny_scifact, tmp_path_factory):
    project = tmp_path_factory.mktemp("guarded")
    running = Server(tiny_scifact, project, *LIMITS, token=TOKEN)
    running.project = project
    yield running
    if running.process.poll() is None:
        running.stop()


def post(server, path, body=None, *, content=None, headers=None, client=None):
    send = client.post if client is not None else httpx.post
    url = path if client is not None else server.url + path
    extra = {"content-type": "application/json"} if content is not None else {}
    return send(url, json=body, content=content, headers={**AUTH, **extra, **(headers or {})})


def test_a_lone_surrogate_is_a_422_and_the_connection_stays_usable(guarded):
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        for body in (b'{"query": "\\ud800 rate"}', b'{"query": "x", "k": "\\udfff"}',
                     b'{"query": "caf\xff"}'):  # the last: not UTF-8 at all
            refused = post(guarded, "/search", content=body, client=client)
            assert refused.status_code == 422, refused.text
            assert len(refused.json()["detail"]) < 200
            after = post(guarded, "/search", {"query": "cancer cells"}, client=client)  # same connection
            assert after.status_code == 200, after.text
        feedback = post(guarded, "/feedback", content=b'{"rating": "bad", "request_id": "r", "comment": "\\udc00"}',
                        client=client)
        assert feedback.status_code == 422 and "surrogate" in feedback.text
        paired = post(guarded, "/search", content=b'{"query": "\\ud83d\\ude00 cancer"}', client=client)
        assert paired.status_code == 200  # a proper pair is just an emoji


def test_the_token_is_bytes_compared_and_checked_before_the_body_is_read(guarded):
    latin1 = "Bearer caf\u00e9".encode("latin-1")
    non_ascii = post(guarded, "/search", {"query": "cancer"}, headers={"Authorization": latin1})
    assert non_ascii.status_code == 401
    huge = httpx.post(guarded.url + "/search", content=b"x" * 100_000, headers={"content-type": "application/json"})
    assert huge.status_code == 401  # refused on its headers: no token, so its size does not matter


def test_bodies_over_the_limits_are_refused_before_they_are_read(guarded):
    declared = post(guarded, "/search", content=b'{"query": "' + b"x" * 3000 + b'"}')
    assert declared.status_code == 413 and "--max-body-bytes" in declared.json()["detail"]

    def chunks():  # no Content-Length: the server counts what arrives
        for _ in range(10):
            yield b" " * 1000

    streamed = post(guarded, "/search", content=chunks())
    assert streamed.status_code == 413 and streamed.request.headers.get("transfer-encoding") == "chunked"
    rows = [{"rating": "bad", "query": f"question number {i}", "comment": "c" * 40} for i in range(60)]
    assert len(json.dumps(rows)) > 2000  # over the body limit, under the import limit
    assert post(guarded, "/feedback/import", rows).status_code == 200
    too_many = post(guarded, "/feedback/import", rows * 3)
    assert too_many.status_code == 413 and "--max-import-bytes" in too_many.json()["detail"]
    long_query = post(guarded, "/search", {"query": "cancer " * 50})
    assert long_query.status_code == 422 and "at most 300 characters" in long_query.json()["detail"]


def test_validation_errors_are_short_and_do_not_echo_the_input(guarded):
    secret = "PRIVATE-" * 100
    for body in ({"query": secret, "k": "five"}, {"query": 7, "note": secret}, [secret]):
        response = post(guarded, "/search", body)
        assert response.status_code == 422
        assert "PRIVATE" not in response.text and len(response.text) < 400, response.text
    response = post(guarded, "/search", {"query": "x", "k": secret})
    assert response.json() == {"detail": "k: Input should be a valid integer"}


@pytest.mark.parametrize("k", [True, "5", 5.0])
def test_k_is_a_strict_integer(guarded, k):
    response = post(guarded, "/search", {"query": "cancer", "k": k})
    assert response.status_code == 422 and response.json()["detail"].startswith("k: ")


@pytest.mark.parametrize("query", ["!!!", "the of and", "  ?  "])
def test_a_query_without_searchable_words_gets_no_arbitrary_hits(guarded, query):
    response = post(guarded, "/search", {"query": query})
    assert response.status_code == 422 and "no searchable words" in response.json()["detail"]


def test_only_a_bare_health_answers_without_the_token(guarded):
    nonce = json.loads((guarded.project / ".evolve" / "server.json").read_text())["nonce"]
    bare = httpx.get(guarded.url + "/health")
    assert bare.status_code == 200 and bare.json() == {"status": "ok", "nonce": nonce}
    full = httpx.get(guarded.url + "/health", headers=AUTH).json()
    assert full["config"] == "bm25-english" and full["snapshot"]["ok"] and full["nonce"] == nonce
    for path in ("/docs", "/openapi.json", "/redoc", "/no-such-path"):
        assert httpx.get(guarded.url + path).status_code == 401, path
    assert httpx.get(guarded.url + "/openapi.json", headers=AUTH).status_code == 200


def test_feedback_commands_without_the_token_say_how_to_give_it(guarded, tmp_path):
    rows = jsonl(tmp_path / "rows.jsonl", [{"rating": "bad", "query": "from the helpdesk"}])
    for args in (("feedback", "import", str(rows)), ("feedback", "failures", "--out", str(tmp_path / "f"))):
        result = evolve(*args, "--project-dir", str(guarded.project), cwd=tmp_path, env={"EVOLVE_API_TOKEN": ""})
        assert result.returncode == 2, result.stderr
        assert "401" in result.stderr and "--token" in result.stderr and "EVOLVE_API_TOKEN" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    wrong = evolve("feedback", "failures", "--out", str(tmp_path / "f"), "--project-dir", str(guarded.project),
                cwd=tmp_path, env={"EVOLVE_API_TOKEN": "wrong"})
    assert wrong.returncode == 2 and "does not take the token given" in wrong.stderr
    big = jsonl(tmp_path / "big.jsonl", [{"rating": "bad", "query": f"q{i}", "comment": "c" * 100} for i in range(60)])
    refused = evolve("feedback", "import", str(big), "--project-dir", str(guarded.project), cwd=tmp_path,
                  env={"EVOLVE_API_TOKEN": TOKEN})
    assert refused.returncode == 2 and "(413)" in refused.stderr and "--max-import-bytes" in refused.stderr


def wait_for_health(server, wanted):
    deadline = time.time() + 30
    while True:
        health = httpx.get(server.url + "/health", headers=AUTH).json()
        if health["status"] == wanted or time.time() > deadline:
            return health
        time.sleep(0.2)


def test_a_failing_snapshot_export_shows_in_health_and_recovers(guarded):
    folder = guarded.project / ".evolve" / "feedback-snapshot"
    aside = folder.with_name("snapshot-aside")
    folder.rename(aside)
    folder.write_text("not a folder")  # the exporter cannot write there any more
    try:
        assert post(guarded, "/search", {"query": "cancer"}).status_code == 200  # something new to export
        broken = wait_for_health(guarded, "degraded")
        assert broken["status"] == "degraded" and not broken["snapshot"]["ok"] and broken["snapshot"]["last_error"]
        assert httpx.get(guarded.url + "/health").json()["status"] == "degraded"  # a load balancer sees it too
        assert post(guarded, "/snapshot").status_code == 503
    finally:
        folder.unlink()
        aside.rename(folder)
    healed = wait_for_health(guarded, "ok")
    assert healed["snapshot"]["ok"] and healed["snapshot"]["last_success"] >= broken["snapshot"]["last_error_at"]


def test_listening_is_said_only_once_bound_and_a_busy_port_is_one_line(tiny_scifact, tmp_path):
    (tmp_path / "bm25.yaml").write_text("name: bm25-english\nlexical: {tokenizer: english}\nfusion: {kind: none}\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = evolve("serve", "--corpus", str(tiny_scifact), "--config", "bm25.yaml", "--port", str(port),
                     "--project-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
    assert "listening on" not in result.stdout and not (tmp_path / ".evolve" / "server.json").exists()


@pytest.mark.parametrize("args, message", [
    (("--snapshot-every", "0"), "--snapshot-every must be at least 0.5, not 0"),
    (("--port", "70000"), "--port must be between 1 and 65535"),
    (("--max-body-bytes", "0"), "--max-body-bytes must be at least 1"),
    (("--max-query-chars", "5000"), "--max-query-chars can be at most 4000"),
    (("--head-timeout", "0"), "--head-timeout must be at least 0.5, not 0"),
    (("--limit-concurrency", "0"), "--limit-concurrency must be at least 1, not 0"),
    (("--answer-wait", "0"), "--answer-wait must be at least 0.1, not 0"),
    (("--answer-slots", "0"), "--answer-slots must be at least 1, not 0"),
])
def test_bad_serve_settings_are_one_line(tmp_path, args, message):
    result = evolve("serve", "--corpus", str(tmp_path), *args, "--project-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_help_documents_the_limits(tmp_path):
    from pipelines.serving import ServeLimits

    result = evolve("serve", "--help", cwd=tmp_path)
    text = " ".join(word for word in result.stdout.split() if word != "│")  # the words, out of rich's box
    for option in ("--max-body-bytes", "--max-import-bytes", "--max-import-batch", "--max-query-chars"):
        assert option in text
    for value in (ServeLimits.max_body_bytes, ServeLimits.max_import_bytes, ServeLimits.max_import_batch,
                  ServeLimits.max_query_chars):
        assert f"default {value}" in text or f"default and most {value}" in text


def test_serve_with_an_unknown_model_is_one_line(tiny_scifact, tmp_path):
    (tmp_path / "dense.yaml").write_text("name: d\ndense: {model: no-such-model}\n")
    result = evolve("serve", "--corpus", str(tiny_scifact), "--config", "dense.yaml", "--project-dir", str(tmp_path),
                 cwd=tmp_path)
    assert result.returncode == 2 and "unknown embedding model 'no-such-model'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
