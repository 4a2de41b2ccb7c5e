"""The generation part of a config: what the generator is given, and that adding it kept old addresses."""

from __future__ import annotations

import pytest

from pipelines import GenerationConfig, PipelineConfig
from pipelines.generator import Generator, estimate_tokens


class Echo:
    """A client that records the request and answers with a citation of the first and an invented chunk."""

    model = "echo"

    def __init__(self) -> None:
        self.requests: list[dict] = []

    def chat(self, messages, **params):
        self.requests.append({"messages": messages, **params})
        return "It is so [a#0] [zz#9]."


def chunks(text: str, n: int) -> list[dict]:
    return [{"chunk_id": f"{letter}#0", "text": text} for letter in "abcdefghij"[:n]]


def test_the_budget_counts_hangul_syllables_as_tokens_so_korean_gets_as_much_context_as_english():
    english, korean = "word " * 120, "대한민국의 수도는 서울이다 " * 40  # 600 characters each
    assert len(english) == len(korean) == 600  # a character budget would treat both alike
    assert (estimate_tokens(english), estimate_tokens(korean)) == (150, 480 + 30)
    generator = Generator(Echo(), GenerationConfig(contexts=5, context_tokens=1400))
    assert len(generator.contexts(chunks(english, 10))) == 5  # the count limit
    assert len(generator.contexts(chunks(korean, 10))) == 2  # the budget limit: 2 x 510 tokens fit in 1400, not 3


def test_the_first_context_is_cut_to_the_budget_rather_than_dropped():
    generator = Generator(Echo(), GenerationConfig(contexts=3, context_tokens=100))
    given = generator.contexts(chunks("가" * 500, 3))
    assert len(given) == 1 and len(given[0]["text"]) == 100


def test_the_answer_cites_only_chunks_it_was_given_and_uses_the_configured_answer_length():
    client = Echo()
    generator = Generator(client, GenerationConfig(contexts=1, max_answer_tokens=64))
    answer = generator.answer("What is it?", chunks("text", 3))
    assert answer.citations == ["a#0"] and [c["chunk_id"] for c in answer.contexts] == ["a#0"]
    assert client.requests[0]["max_tokens"] == 64
    assert "[b#0]" not in client.requests[0]["messages"][1]["content"]


def test_a_config_at_the_default_generation_keeps_the_address_it_had_before_generation_existed():
    config = PipelineConfig(lexical={"tokenizer": "regex"})
    # the address of this config before the generation part was added (pipelines/config.py LATER_FIELDS)
    assert config.sha256() == "deb4bb462e9652f6f16d398fb45c78e1dbd057b0bdb801181d21870c80645b92"
    changed = config.model_copy(update={"generation": GenerationConfig(contexts=3)})
    assert changed.sha256() != config.sha256()
    with pytest.raises(ValueError):
        GenerationConfig(contexts=0)
