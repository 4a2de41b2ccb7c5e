"""The LLM key reaches the server: `evolve llm check` (a real process) against a real llama.cpp server (SmolLM2-135M)
that demands a key, a header-echoing server that answers 401 with what it was sent, and a URL with credentials.
A refused key is one line naming the endpoint and what to set, never a traceback, never the key."""

import os
import secrets
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import evolve, send_json, smollm2
from pipelines.llm import LLMAuthError, LLMClient, LLMError, LLMSettings

KEY = "sk-live-" + secrets.token_hex(16)
SET = "EVOLVE_LLM_API_KEY or EVOLVE_LLM_API_KEY_FILE"


def llm_check(base_url, cwd, model="smollm2-135m", **env):
    """`evolve llm check` as a user runs it, with only the LLM variables given here."""
    llm_variables = [name for name in os.environ if name.startswith("EVOLVE_LLM_")]
    return evolve("llm", "check", "--llm-base-url", base_url, "--llm-model", model, "--project-dir", str(cwd),
                  cwd=cwd, timeout=300, env=env, drop=llm_variables)


def one_line_refusal(done, *needles):
    """rc 1, one line on stderr with every needle, no traceback, the key nowhere."""
    said = done.stderr.strip()
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in said and len(said.splitlines()) == 1, said
    assert all(needle in said for needle in needles), said
    assert KEY not in done.stdout + done.stderr and "sk-live" not in done.stdout + done.stderr
    return said


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """One SmolLM2 server for the module, refusing requests without KEY (llama.cpp's api_keys)."""
    with smollm2(threads=1, api_key=KEY, log=tmp_path_factory.mktemp("llm") / "server.log") as settings:
        yield settings


class Echo(BaseHTTPRequestHandler):
    """Answers every request with 401 and a body that repeats the Authorization header (and pads it out)."""

    def _echo(self):
        error = {"message": f"invalid key; you sent {self.headers.get('Authorization')} " + "x" * 5000,
                 "type": "authentication_error"}
        send_json(self, {"error": error}, int(self.path.split("/")[1]))  # /401/v1/...: the status to answer with

    do_GET = do_POST = _echo

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_key_from_the_environment_reaches_the_server(keyed, tmp_path):
    done = llm_check(keyed.base_url, tmp_path, EVOLVE_LLM_API_KEY=KEY)
    assert done.returncode == 0, done.stderr
    assert "smollm2-135m" in done.stdout and "chat_ms" in done.stdout
    assert KEY not in done.stdout + done.stderr


def test_the_key_file_works_as_the_nixos_module_sets_it(keyed, tmp_path):
    key_file = tmp_path / "llm-api-key"
    key_file.write_text(KEY + "\n")  # a secret file ends in a line break
    done = llm_check(keyed.base_url, tmp_path, EVOLVE_LLM_API_KEY_FILE=str(key_file))
    assert done.returncode == 0, done.stderr
    assert "smollm2-135m" in done.stdout
    missing = llm_check(keyed.base_url, tmp_path, EVOLVE_LLM_API_KEY_FILE=str(tmp_path / "absent"))
    one_line_refusal(missing, "EVOLVE_LLM_API_KEY_FILE", "absent")


@pytest.mark.parametrize("key, what", [("sk-live-wrong0000000000", "refused the key"),
                                       (None, "wants a key and none is set")])
def test_a_wrong_or_missing_key_is_one_line_naming_the_endpoint_and_the_variables(keyed, tmp_path, key, what):
    done = llm_check(keyed.base_url, tmp_path, **({"EVOLVE_LLM_API_KEY": key} if key else {}))
    said = one_line_refusal(done, keyed.base_url, what, "(401", SET)
    assert "sk-live-wrong" not in said


def test_a_base_url_with_credentials_is_refused_without_printing_the_password(keyed, tmp_path):
    with_password = keyed.base_url.replace("http://", "http://evolve:hunter2-secret@")
    done = llm_check(with_password, tmp_path, EVOLVE_LLM_API_KEY=KEY)
    said = one_line_refusal(done, "credentials", SET, "http://***@127.0.0.1")
    assert "hunter2" not in done.stdout + done.stderr and "evolve:" not in said


def test_a_header_echoing_401_is_trimmed_and_redacted(echo, tmp_path):
    base_url = f"{echo}/401/v1"
    done = llm_check(base_url, tmp_path, model="echo", EVOLVE_LLM_API_KEY=KEY)
    said = one_line_refusal(done, base_url, "refused the key (401", "Bearer ***", SET)
    assert len(said) < 400  # the 5,000 padding characters are cut
    # the same body on a request that is refused for another reason: an LLMError, as trimmed and redacted
    client = LLMClient(LLMSettings(base_url=f"{echo}/400/v1", model="echo", api_key=KEY, max_retries=0))
    with pytest.raises(LLMError) as refused:
        client.chat([{"role": "user", "content": "hi"}], use_cache=False)
    assert not isinstance(refused.value, LLMAuthError) and "refused (400)" in str(refused.value)
    assert KEY not in str(refused.value) and "Bearer ***" in str(refused.value) and len(str(refused.value)) < 400


def test_serve_and_start_go_on_without_the_llm_and_say_why(keyed, tmp_path, monkeypatch):
    """What `evolve serve` (answers off: /search served, /answer 503 with this reason) and `evolve start` (the
    heuristic proposer) do with a refused key."""
    from agent.commands.serve import answerer
    from agent.llm_session import try_connect_llm

    monkeypatch.setenv("EVOLVE_LLM_API_KEY", "sk-live-wrong0000000000")
    with ExitStack() as stack:
        generator, off = answerer(stack, tmp_path, None, keyed.base_url, "smollm2-135m", None, False)
        llm, reason = try_connect_llm(stack, tmp_path, keyed.base_url, "smollm2-135m", None)
    assert generator is None and llm is None
    for why in (off, reason):
        assert keyed.base_url in why and "refused the key (401" in why and SET in why and "wrong" not in why
