"""Served models that misbehave (issue 32): a real OpenAI-protocol server on 127.0.0.1 (tests/misbehaving_server.py)
answers with NaN, strings, ragged rows, a wrong dimension, 300 MB, a 1-byte-per-second trickle or a 401 that echoes
the key; evolve refuses each with one RemoteError naming the endpoint, caches nothing that is not finite, repairs a
cache that holds some, ends every call at its deadline and never prints the key. Local embedders are held to the
same check: what they return is finite, numeric and of the right shape before it is cached or used."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import evolve, write_evalset
from misbehaving_server import PROBE_MARKERS, MisbehavingServer, vector
from pipelines import Components
from pipelines.embedders import AdaptedEmbedder, CachedEmbedder, EmbeddingStore, save_adapter, text_key
from pipelines.embedders.base import Embedder, EmbeddingError, l2_normalize
from pipelines.embedders.registry import ModelSpec
from pipelines.remote import (PROBE_TEXTS, REGISTRY_ENV, RemoteClient, RemoteError, RemoteModel, RemoteModelChanged,
                              check, identity, redact)
from pipelines.rerankers import RemoteRerankerConfig

DIM = 8
KEY = "sk-live-7f3a9c2e51d04b8a"
SLACK_S = 1.5
"""What a deadline may be overrun by on this (busy, 2-core) machine: the trickle's next byte and the teardown."""


def _entry(name: str, url: str, kind: str = "embedder", **extra) -> dict:
    return {"name": name, "kind": kind, "protocol": "openai" if kind == "embedder" else "rerank", "base_url": url,
            "model": name.split("@")[0], "licence": "MIT", "dim": DIM if kind == "embedder" else None,
            "batch_size": 4, "retries": 0, "backoff_s": 0.05, "timeout_s": 5, **extra}


def _registry(path: Path, *entries: dict) -> Path:
    path.write_text(yaml.safe_dump({"models": [{k: v for k, v in e.items() if v is not None} for e in entries]},
                                   sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server():
    with MisbehavingServer(dim=DIM, trickle_s=1.0) as running:
        yield running


@pytest.fixture
def served(server, tmp_path, monkeypatch):
    """use(entry, ...): makes those entries this process's model registry."""
    def use(*entries: dict) -> None:
        monkeypatch.setenv(REGISTRY_ENV, str(_registry(tmp_path / f"models-{time.monotonic_ns()}.yaml", *entries)))
    return use


def _rows(cache: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT model, vector FROM embeddings").fetchall()


def test_the_servers_probe_texts_are_evolves():
    assert PROBE_MARKERS == PROBE_TEXTS


def test_nan_vectors_are_refused_and_nothing_non_finite_is_cached(server, served, tmp_path):
    served(_entry("poisoned@bad", server.url("nan-texts")), _entry("inf@bad", server.url("inf")))
    cache = tmp_path / "cache.sqlite"
    embedder = Components(cache).embedder("poisoned@bad")
    with pytest.raises(RemoteError, match=r"poisoned@bad \(poisoned at http://127\.0\.0\.1:\d+/nan-texts/v1\): the "
                                          r"server returned non-finite values"):
        embedder.embed(["a passage", "another passage"], "passage")
    with pytest.raises(RemoteError, match="non-finite values"):
        Components(cache).embedder("inf@bad").embed(["a passage"], "query")
    assert _rows(cache) == []  # the probe passed, no vector did
    with pytest.raises(EmbeddingError, match="refusing to cache non-finite"):  # and the store refuses them itself
        EmbeddingStore(cache).put_many("m", "passage", [b"k"], np.array([[np.nan, 1.0]], dtype=np.float32))


def test_a_cache_holding_non_finite_or_short_rows_is_repaired_and_they_are_computed_again(server, served, tmp_path,
                                                                                         caplog):
    served(_entry("good@bad", server.url("ok")))
    cache = tmp_path / "cache.sqlite"
    model = Components(cache).embedder("good@bad").cache_model  # the probe, through the healthy server
    with sqlite3.connect(cache) as db:  # what an older version (or a damaged file) left behind
        db.executemany("INSERT INTO embeddings VALUES (?, 'passage', ?, ?)",
                       [(model, text_key("alpha"), np.full(DIM, np.nan, dtype=np.float32).tobytes()),
                        (model, text_key("beta"), np.ones(DIM - 3, dtype=np.float32).tobytes()),
                        (model, text_key("gamma"), l2_normalize(np.array([vector("gamma", DIM)]))[0].tobytes())])
    embedder = Components(cache).embedder("good@bad")
    with caplog.at_level(logging.WARNING, logger="evolve.cache"):
        got = embedder.embed(["alpha", "beta", "gamma"], "passage")
    assert "dropped 2 passage vector(s)" in caplog.text and "computed again" in caplog.text
    assert np.allclose(got, l2_normalize(np.array([vector(t, DIM) for t in ("alpha", "beta", "gamma")])), atol=1e-6)
    assert (embedder.stats.misses, embedder.stats.hits) == (2, 1)
    assert all(np.isfinite(np.frombuffer(blob, dtype=np.float32)).all() and len(blob) == 4 * DIM
               for _, blob in _rows(cache))
    caplog.clear()
    again = Components(cache).embedder("good@bad")
    assert np.allclose(again.embed(["alpha", "beta", "gamma"], "passage"), got)
    assert again.stats.misses == 0 and "dropped" not in caplog.text


def test_a_nan_probe_fails_the_fingerprint_check_and_a_stored_nan_probe_is_replaced(server, served, tmp_path, caplog):
    entry = RemoteModel.model_validate(_entry("probe@bad", server.url("ok")))
    stored = np.array([vector(t, DIM) for t in PROBE_TEXTS], dtype=np.float64)
    poisoned = stored.copy()
    poisoned[1, 3] = np.nan
    with pytest.raises(RemoteError, match="the server returned non-finite values"):
        check(entry, stored, poisoned)  # difference() is NaN here and NaN > tolerance is False: never a pass
    with pytest.raises(RemoteModelChanged):
        check(entry, poisoned, stored)  # a NaN difference is a difference, not a match
    check(entry, stored, stored)

    served(_entry("probe@bad", server.url("nan-probe")))
    cache = tmp_path / "cache.sqlite"
    with pytest.raises(RemoteError, match=r"probe@bad \(.*/nan-probe/v1\): the server returned non-finite"):
        Components(cache).embedder("probe@bad").embed(["a passage"], "passage")
    assert EmbeddingStore(cache).probe(identity(entry)) is None and _rows(cache) == []

    served(_entry("probe@bad", server.url("ok")))  # a NaN probe stored by a version that did not check
    store = EmbeddingStore(cache)
    store.put_probe(identity(entry), "0123456789abcdef", poisoned)
    with caplog.at_level(logging.WARNING, logger="evolve.remote"):
        model = Components(store).embedder("probe@bad").cache_model
    assert "holds non-finite values; dropped" in caplog.text
    assert not model.endswith("0123456789abcdef") and np.isfinite(store.probe(identity(entry))[1]).all()


def test_served_reranker_scores_must_be_finite_numbers_one_per_document(server, served, tmp_path):
    served(*(_entry(f"{mode}@rerank", server.url(mode), kind="reranker")
             for mode in ("nan-texts", "inf", "strings", "bad-index", "nan-probe", "ok")))
    components = Components(tmp_path / "cache.sqlite")
    documents = ["first document", "second document", "third document"]
    expected = {"nan-texts": "non-finite values", "inf": "non-finite values", "strings": "not a number",
                "bad-index": r"each of 0\.\.2 once", "nan-probe": "non-finite values"}
    for mode, message in expected.items():
        reranker = components.reranker(RemoteRerankerConfig(model=f"{mode}@rerank"))
        with pytest.raises(RemoteError, match=rf"{mode}@rerank \(.*/{mode}/v1\).*{message}"):
            reranker.score(["a query"], [documents])
    ok = components.reranker(RemoteRerankerConfig(model="ok@rerank")).score(["a query"], [documents])[0]
    assert np.isfinite(ok).all() and len(ok) == 3
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        assert db.execute("SELECT count(*) FROM scores").fetchone()[0] == 3  # the healthy server's only


@pytest.mark.parametrize("mode, message", [
    ("strings", "a vector that is not a list of numbers"),
    ("ragged", "rows of different lengths"),
    ("wrong-dim", f"serves {DIM - 1}-dimensional vectors; its registry entry says dim {DIM}"),
    ("not-json", "answered with something not JSON"),
    ("wrong-json", "the answer has no 'data' field"),
    ("bad-index", r"vectors for indices .* \(each of 0\.\.2 once\)"),
])
def test_answers_of_the_wrong_shape_are_a_remote_error_naming_the_endpoint(server, mode, message):
    entry = _entry(mode, server.url(mode), dim=None if mode == "ragged" else DIM)
    client = RemoteClient(RemoteModel.model_validate({k: v for k, v in entry.items() if v is not None}))
    with pytest.raises(RemoteError, match=rf"^{mode} \({mode} at http://127\.0\.0\.1:\d+/{mode}/v1\).*{message}"):
        client.embed(["one", "two", "three"])  # never a ValueError or KeyError traceback


@pytest.mark.parametrize("mode", ["trickle", "trickle-body"])
def test_a_trickling_server_is_cut_off_at_the_deadline(server, mode):
    """1 byte a second, the head too ('trickle') or only the body: each read returns in time, so only a deadline
    on the whole request ends it."""
    client = RemoteClient(RemoteModel.model_validate(_entry(mode, server.url(mode), timeout_s=2)))
    started = time.monotonic()
    with pytest.raises(RemoteError, match=rf"^{mode} \(.*/{mode}/v1\).*no whole reply within timeout_s 2 s"):
        client.embed(["one"])
    assert time.monotonic() - started < 2 + SLACK_S
    assert server.sent[mode] >= 1  # it was trickling, not silent

    twice = RemoteClient(RemoteModel.model_validate(_entry(mode, server.url(mode), timeout_s=1, retries=1)))
    started = time.monotonic()
    with pytest.raises(RemoteError, match="failed 2 times"):
        twice.embed(["one"])
    assert time.monotonic() - started < 2 * 1 + 0.05 * 1.25 + SLACK_S  # (retries + 1) x timeout_s + the backoff
    assert twice.requests == 2


def test_a_huge_reply_is_cut_at_the_cap(server):
    entry = RemoteModel.model_validate(_entry("huge", server.url("huge"), batch_size=2))
    assert entry.reply_limit == 2 * DIM * 64 + 2 ** 20  # room for a full batch, with a generous margin
    assert RemoteModel.model_validate(_entry("big", server.url("ok"), dim=1024, batch_size=32)).reply_limit \
        == 32 * 1024 * 64 + 2 ** 20
    started = time.monotonic()
    with pytest.raises(RemoteError, match=rf"^huge \(.*/huge/v1\): /embeddings answered with more than "
                                          rf"{entry.reply_limit:,} bytes \(cut off there\)"):
        RemoteClient(entry).embed(["one", "two"])
    assert time.monotonic() - started < 5
    time.sleep(0.3)  # the server notices the hang-up at its next write
    assert server.sent["huge"] < 16 * 2 ** 20  # the cap plus what the sockets' buffers held: not 300 MB

    declared = RemoteModel.model_validate(_entry("declared", server.url("huge-declared"), max_reply_mb=0.5))
    assert declared.reply_limit == 2 ** 19
    with pytest.raises(RemoteError, match=r"announced a reply of 314,572,800 bytes; this entry reads at most 524,288"):
        RemoteClient(declared).embed(["one"])


def test_a_401_that_echoes_the_key_never_shows_it(server, monkeypatch, tmp_path):
    monkeypatch.setenv("MISBEHAVING_KEY", KEY)
    client = RemoteClient(RemoteModel.model_validate(_entry("auth", server.url("echo-401"),
                                                            api_key_env="MISBEHAVING_KEY")))
    with pytest.raises(RemoteError) as raised:
        client.embed(["one"])
    message = str(raised.value)
    assert message.startswith("auth (auth at http://127.0.0.1:") and "refused the request (HTTP 401: invalid " \
        "credentials" in message
    assert "sk-live" not in message and KEY[8:] not in message and "\n" not in message and len(message) < 600
    assert any(h.get("Authorization") == f"Bearer {KEY}" for m, _, h in server.requests if m == "echo-401")
    # a key of no known shape, echoed anywhere, goes too: the key sent is itself redacted
    (tmp_path / "key").write_text("plain-words-key-42\n")
    odd = RemoteClient(RemoteModel.model_validate(_entry("auth2", server.url("echo-401"),
                                                         api_key_file=tmp_path / "key")))
    with pytest.raises(RemoteError) as raised:
        odd.embed(["one"])
    assert "plain-words-key-42" not in str(raised.value)
    assert redact(f'{{"you_sent": "{KEY}"}} token=abc123 http://user:pw@host/x') == \
        '{"you_sent": "***"} token=*** http://***@host/x'


def test_local_embedders_are_checked_before_anything_is_cached(tmp_path):
    """A local model (here one whose output is broken on purpose) is held to what served ones are."""
    outputs = {"nan": lambda n: np.full((n, 4), np.nan, dtype=np.float32),
               "strings": lambda n: np.array([["0.1"] * 4] * n),
               "short": lambda n: np.ones((n - 1, 4), dtype=np.float32),
               "wide": lambda n: np.ones((n, 5), dtype=np.float32),
               "overflow": lambda n: np.full((n, 4), 1e300, dtype=np.float64)}

    class Broken(Embedder):
        def encode(self, texts: list[str], kind: str) -> np.ndarray:
            return outputs[self.spec.name](len(texts))

    store = EmbeddingStore(tmp_path / "cache.sqlite")
    messages = {"nan": "returned non-finite values", "strings": "not numbers", "short": r"shape \(1, 4\) for 2 texts",
                "wide": r"shape \(2, 5\) for 2 texts of dimension 4", "overflow": "returned non-finite values"}
    for name, message in messages.items():
        spec = ModelSpec(name=name, loader="test", package=None, dim=4, max_length=None, licence="MIT", languages="-")
        with pytest.raises(EmbeddingError, match=rf"^{name}: .*{message}"):
            CachedEmbedder(spec, store, loader=Broken).embed(["one", "two"], "passage")
    assert store.count() == 0

    class Healthy(Embedder):
        def encode(self, texts: list[str], kind: str) -> np.ndarray:
            return l2_normalize(np.array([vector(t, 4) for t in texts]))

    base = CachedEmbedder(ModelSpec(name="healthy", loader="test", package=None, dim=4, max_length=None,
                                    licence="MIT", languages="-"), store, loader=Healthy)
    matrix = np.eye(4, dtype=np.float32)
    matrix[2, 1] = np.nan  # a trained adapter whose weights went non-finite
    adapter = AdaptedEmbedder(ModelSpec(name="trained:broken", loader="adapter", package=None, dim=4,
                                        max_length=None, licence="MIT", languages="-",
                                        location=str(save_adapter(tmp_path / "adapter", matrix))), base)
    with pytest.raises(EmbeddingError, match="^trained:broken: returned non-finite values"):
        adapter.embed(["a query"], "query")
    with pytest.raises(EmbeddingError, match="^trained:broken: returned non-finite values"):
        adapter.embedder.encode(["a query"], "query")  # serving's uncached path is checked too
    assert np.isfinite(adapter.embed(["a passage"], "passage")).all()  # passages are the base model's


def _run(*args: str, project: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return evolve(*args, "--project-dir", str(project), timeout=timeout, columns=500, env={"MISBEHAVING_KEY": KEY},
                  drop=(REGISTRY_ENV, "EVOLVE_EMBEDDING_CACHE"))


def test_evolve_models_check_ends_in_time_with_one_line_per_failure_and_no_key(server, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    _registry(project / "models.yaml", _entry("ok@bad", server.url("ok")),
              _entry("nan@bad", server.url("nan-probe")),
              _entry("trickle@bad", server.url("trickle-body"), timeout_s=3, retries=1),
              _entry("auth@bad", server.url("echo-401"), api_key_env="MISBEHAVING_KEY"),
              _entry("strings@bad", server.url("strings")),
              _entry("ragged@bad", server.url("ragged"), dim=None),
              _entry("nanscores@bad", server.url("nan-probe"), kind="reranker"))
    started = time.monotonic()
    result = _run("models", "--check", project=project)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "sk-live" not in result.stdout + result.stderr and KEY[8:] not in result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.count("│") > 5]
    served_rows = [row for row in rows if "@bad" in row or not row.split("│")[1].strip()]
    table = {row.split("│")[1].strip(): row for row in served_rows}
    assert len(served_rows) == len(table) == 7  # a row each, on one line
    assert "up, weights" in table["ok@bad"]
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed: ")]
    lines = {line.split()[1]: line for line in failed}
    assert len(failed) == len(lines) == 6 and "ok@bad" not in lines  # one line per failure, the whole message
    assert "the server returned non-finite values" in lines["nan@bad"] + lines["nanscores@bad"]
    assert "non-finite values" in table["nan@bad"] and "non-finite values" in table["nanscores@bad"]
    assert "/embeddings failed 2 times; last: no whole reply within timeout_s 3 s" in lines["trickle@bad"]
    assert "HTTP 401" in lines["auth@bad"] and "Authorization: ***" in lines["auth@bad"]
    assert "not a list of numbers" in lines["strings@bad"] and "different lengths" in lines["ragged@bad"]
    assert all(line.startswith(f"failed: {name} ({name.split('@')[0]} at http://127.0.0.1:")
               for name, line in lines.items())
    # the trickle took (1 + 1 retry) x 3 s, the rest are quick; the process starts in a few seconds
    assert took < 2 * 3 + 60, took


def test_evolve_eval_with_a_poisoned_server_fails_in_one_line_and_caches_nothing(server, tmp_path):
    from agent.paths import ProjectPaths

    project = tmp_path / "project"
    project.mkdir()
    _registry(project / "models.yaml", _entry("poisoned@bad", server.url("nan-texts")))
    data = write_evalset(tmp_path / "set", [{"doc_id": f"d{i}", "text": f"document number {i} about topic {i}"}
                                            for i in range(4)],
                         [{"query_id": "q1", "text": "topic 1"}, {"query_id": "q2", "text": "topic 2"}],
                         [("q1", "d1", 1), ("q2", "d2", 1)])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"name": "served", "dense": {"model": "poisoned@bad"},
                                      "fusion": {"kind": "none"}}), encoding="utf-8")
    result = _run("eval", "--evalset", str(data), "--config", str(config), project=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "poisoned@bad" in error[0] and "the server returned non-finite values" in error[0]
    assert "ndcg" not in result.stdout.lower()  # no score of 0.0000 from NaN vectors
    cache = ProjectPaths.of(project).embedding_cache
    assert not cache.exists() or _rows(cache) == []


def test_a_base_url_with_credentials_is_refused_without_echoing_them(tmp_path):
    from pipelines.remote import RegistryError, load_registry

    path = _registry(tmp_path / "models.yaml", _entry("creds@bad", "http://evolve:hunter2-pw@gpu1:8001/v1"))
    with pytest.raises(RegistryError, match="credentials never go in the registry file") as raised:
        load_registry(path)
    assert "hunter2" not in str(raised.value)
