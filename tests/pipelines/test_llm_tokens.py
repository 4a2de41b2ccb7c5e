"""Token counts and context sizes asked of a real llama.cpp server (xllamacpp, SmolLM2-135M from PyPI), the safe
estimate where a server cannot say, and a local server started with the context its model was trained for."""

from __future__ import annotations

import json

import httpx
import pytest

from helpers import korean_observation
from pipelines.llm import LLMClient, LLMSettings, resolve_gguf
from pipelines.llm.models import LOCAL_MODELS, trained_context
from pipelines.llm.tokens import estimate_chat_tokens, server_root


@pytest.fixture
def server(smollm2_small_context):
    """Two slots of 4,096 tokens: llama.cpp's context is 8,192, a request's 4,096."""
    return smollm2_small_context


def test_the_count_is_the_servers_own(server):
    """What the counter says is what the server bills for the same request, and /tokenize's tokens."""
    client = LLMClient(server)
    messages = [{"role": "system", "content": "You answer in Korean."},
                {"role": "user", "content": korean_observation(examples=1)}]
    counted = client.count_tokens(messages)
    root = server_root(server.base_url)
    prompt = httpx.post(f"{root}/apply-template", json={"messages": messages}).json()["prompt"]
    tokens = httpx.post(f"{root}/tokenize", json={"content": prompt, "add_special": True}).json()["tokens"]
    billed = httpx.post(f"{server.base_url}/chat/completions", timeout=120,
                        json={"model": server.model, "messages": messages, "max_tokens": 1}).json()["usage"]
    assert counted == len(tokens) == billed["prompt_tokens"] and counted > 1000


def test_the_estimate_is_never_below_the_servers_count(server):
    """On Korean pages (SmolLM2 spends ~3 tokens a syllable, close to the byte-level bound) and on English and
    JSON like the proposer's system prompt (SmolLM2 splits every digit)."""
    client = LLMClient(server)
    space = {"dense_models": ["multilingual-e5-small", "none"], "chunkers": [
        {"kind": "sentence", "size": [300, 600, 1000], "overlap": [0, 1]}, {"kind": "paragraph", "size": 1200}],
        "lexical": {"tokenizers": ["kiwi", "regex"], "k1": {"low": 0.6, "high": 2.0}, "b": {"low": 0.3, "high": 0.95}},
        "fusion": {"kinds": ["rrf", "weighted"], "rrf_k": [20, 60], "dense_weight": {"low": 0.1, "high": 0.9}}}
    system = ("You tune a retrieval pipeline. Reply with JSON only, for example: " + json.dumps(space)) * 8
    for observation in (korean_observation(), korean_observation(sentences=12), "- nothing yet"):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": observation}]
        counted = client.count_tokens(messages)
        assert counted <= estimate_chat_tokens(messages) <= 1.6 * counted


def test_the_context_is_the_servers_per_slot_size(server):
    """/props says 4,096 per slot (llama.cpp holds 8,192 for two): it wins over the configured fallback."""
    client = LLMClient(server.model_copy(update={"context_tokens": 1000}))
    assert client.context_tokens() == 4096


def test_a_server_that_cannot_say_falls_back_without_raising():
    client = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="none", context_tokens=3000))
    messages = [{"role": "user", "content": "안녕하세요"}]
    assert client.count_tokens(messages) == estimate_chat_tokens(messages)
    assert client.context_tokens() == 3000


def test_a_local_server_gets_the_context_its_model_was_trained_for(smollm2_server):
    """No ctx given: SmolLM2's 8,192 (its GGUF header's llama.context_length) per slot, read back from the server."""
    props = httpx.get(f"{server_root(smollm2_server.base_url)}/props").json()
    assert props["default_generation_settings"]["n_ctx"] == smollm2_server.context_tokens == 8192
    assert LLMClient(smollm2_server).context_tokens() == 8192
    header = trained_context("smollm2-135m", resolve_gguf("smollm2-135m"))
    assert LOCAL_MODELS["smollm2-135m"].context == header == 8192
