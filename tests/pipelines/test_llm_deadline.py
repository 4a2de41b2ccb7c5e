"""An LLM call is bounded whole: a server that trickles its reply ends the call at its deadline (httpx's timeout
bounds each read only), so a slow LLM cannot hold a client's slot (and serve's /answer threads) for ever."""

import time

import pytest

from misbehaving_server import MisbehavingServer
from pipelines.llm import LLMClient, LLMError, LLMSettings


@pytest.fixture(scope="module")
def server():
    with MisbehavingServer(trickle_s=0.2) as running:
        yield running


def test_a_healthy_reply_comes_back(server):
    client = LLMClient(LLMSettings(base_url=server.url("ok"), model="m", max_retries=0, timeout_s=5))
    assert client.chat([{"role": "user", "content": "hi"}], use_cache=False) == "ok"


@pytest.mark.parametrize("mode", ["trickle", "trickle-body"])
def test_a_trickled_reply_ends_at_the_deadline(server, mode):
    client = LLMClient(LLMSettings(base_url=server.url(mode), model="m", max_retries=0, timeout_s=2))
    started = time.monotonic()
    with pytest.raises(LLMError):
        client.chat([{"role": "user", "content": "hi"}], use_cache=False)
    assert time.monotonic() - started < 2 + 1.5  # a byte every 0.2 s would have taken the whole reply ~60 s
    started = time.monotonic()
    with pytest.raises(LLMError, match="no reply within the 1 s"):  # a caller's own budget is a deadline too
        client.chat([{"role": "user", "content": "hi"}], use_cache=False, timeout=1)
    assert time.monotonic() - started < 1 + 1.5
