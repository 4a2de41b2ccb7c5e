"""The one way LLM settings are made (``LLMSettings.from_env``: URL, model, key from a variable or a file) and the
redaction every LLM error text goes through
(``LLMClient.said``). No server: the key reaching one is tests/e2e/test_llm_keys.py."""

import pytest

from pipelines.llm import LLMClient, LLMConfigError, LLMSettings

URL = "http://gpu1:8000/v1"


def test_the_key_comes_from_the_variable_or_the_file_and_is_never_shown(tmp_path):
    assert LLMSettings.from_env(None, None, environ={}) is None  # no endpoint: the local server
    plain = LLMSettings.from_env(None, None, environ={"EVOLVE_LLM_BASE_URL": URL, "EVOLVE_LLM_MODEL": "qwen"})
    assert (plain.base_url, plain.model, plain.key) == (URL, "qwen", None)
    given = LLMSettings.from_env(URL, "m", environ={"EVOLVE_LLM_API_KEY": "sk-abc123", "EVOLVE_LLM_MODEL": "x"},
                                 max_retries=1)
    assert (given.model, given.key, given.max_retries) == ("m", "sk-abc123", 1)  # options win over the variables
    assert "sk-abc123" not in repr(given) + str(given.model_dump())
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n")
    assert LLMSettings.from_env(URL, "m", environ={"EVOLVE_LLM_API_KEY_FILE": str(key_file)}).key == "sk-from-file"


@pytest.mark.parametrize("environ, said", [
    ({"EVOLVE_LLM_API_KEY": "a", "EVOLVE_LLM_API_KEY_FILE": "/k"}, "both EVOLVE_LLM_API_KEY and"),
    ({"EVOLVE_LLM_API_KEY_FILE": "/nonexistent/key"}, "cannot read /nonexistent/key"),
    ({"EVOLVE_LLM_API_KEY": "sk-one\nX-Injected: 1"}, "one key on one line"),
])
def test_a_key_that_cannot_be_used_is_one_line(environ, said):
    with pytest.raises(LLMConfigError, match=said) as refused:
        LLMSettings.from_env(URL, "m", environ=environ)
    assert "\n" not in str(refused.value) and "Injected" not in str(refused.value)


@pytest.mark.parametrize("url, said", [
    ("http://evolve:hunter2@gpu1:8000/v1", "http://***@gpu1:8000/v1 has credentials in it"),
    ("https://token-only@gpu1/v1", "https://***@gpu1/v1 has credentials in it"),
    ("gpu1:8000/v1", "is not an http(s) URL"),
])
def test_a_base_url_with_credentials_or_no_scheme_is_refused(url, said):
    with pytest.raises(LLMConfigError) as refused:
        LLMSettings.from_env(url, "m", environ={})
    assert said in str(refused.value) and "hunter2" not in str(refused.value)
    assert "token-only" not in str(refused.value)
    with pytest.raises(ValueError) as direct:  # built without from_env: refused too, the input not repeated
        LLMSettings(base_url=url, model="m")
    assert "hunter2" not in str(direct.value) and "token-only" not in str(direct.value)


def test_error_text_is_one_short_line_without_the_key_or_anything_like_a_secret():
    """``LLMClient.said``, what every LLM error goes through: the configured key masked wherever it stands, and
    what ``pipelines.remote.redact`` masks (tokens after their scheme, named secrets, URL credentials)."""
    client = LLMClient(LLMSettings(base_url=URL, model="m", api_key="my-own-key-42"))
    body = ('{"error": {"message": "bad key\nAuthorization: Bearer sk-live-0123456789abcdef", "api_key": "k-99x",'
            ' "url": "http://bob:pw@gpu1/v1", "echo": "my-own-key-42", "b": "Bearer abcdefgh"}}' + " pad" * 200)
    said = client.said(body)
    for secret in ("sk-live-0123456789abcdef", "k-99x", "bob:pw", "my-own-key-42", "abcdefgh"):
        assert secret not in said
    assert "Bearer ***" in said and '"api_key": "***"' in said and "http://***@gpu1/v1" in said
    assert "\n" not in said and len(said) <= 300 and said.endswith("…")
    assert client.said("request (7154 tokens) exceeds the available context size") == \
        "request (7154 tokens) exceeds the available context size"  # nothing secret: the text as it was
