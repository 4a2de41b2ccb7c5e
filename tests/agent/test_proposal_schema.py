"""The structured-output schema the LLM proposer decodes by: what it allows, validation accepts.

Spaces are drawn at random from the schema itself (every branch of an anyOf, every enum value, numbers at the
ends of their ranges) and must pass ``validate_proposal``; what the schema leaves out (other models, other keys)
must be refused by it.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from agent.loop.proposers import models_for, proposal_json_schema, validate_proposal


def draw(schema: dict[str, Any], rng: random.Random) -> Any:
    """One instance of a JSON schema of the shapes proposal_json_schema uses."""
    if "anyOf" in schema:
        return draw(rng.choice(schema["anyOf"]), rng)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        keys = [k for k in schema["properties"] if k in schema.get("required", []) or rng.random() < 0.5]
        value = {k: draw(schema["properties"][k], rng) for k in keys}
        if {"low", "high"} <= set(value):
            value["low"], value["high"] = sorted((value["low"], value["high"]))
        return value
    if kind == "array":
        count = rng.randint(schema.get("minItems", 0), min(schema.get("maxItems", 3), 3))
        prefix = schema.get("prefixItems", [])
        items = [draw(prefix[i] if i < len(prefix) else schema["items"], rng) for i in range(count)]
        kinds = [i.get("kind") for i in items if isinstance(i, dict)]
        if items and all(isinstance(i, dict) for i in items) and len(set(kinds)) < len(kinds):
            items = list({i["kind"]: i for i in items}.values())  # a kind at most once (chunkers)
        return items if all(isinstance(i, dict) for i in items) else list(dict.fromkeys(items))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if kind == "integer" else 1e-3))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 1000) - (1 if kind == "integer" else 1e-3))
        return rng.choice([low, high]) if kind == "integer" else rng.choice([low, high, (low + high) / 2])
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "string":
        return "drawn"
    raise AssertionError(f"unexpected schema {schema}")


@pytest.mark.parametrize("language", ["en", "ko"])
def test_every_space_the_schema_allows_is_valid(language):
    schema = proposal_json_schema(language, {"kinds": ["adapter"]})
    rng = random.Random(7)
    for _ in range(300):
        proposal = draw(schema, rng)
        assert set(proposal["train"]) <= {"adapter"}
        validate_proposal(proposal["space"], "drawn")


def test_the_schema_names_only_the_projects_models_and_kinds():
    space = proposal_json_schema("ko")["properties"]["space"]
    assert space["properties"]["dense_models"]["items"]["enum"] == [*models_for("ko"), "none"]
    assert space["properties"]["dense_models"]["prefixItems"] == [{"enum": models_for("ko")}]
    assert space["additionalProperties"] is False
    rerankers = space["properties"]["rerankers"]["items"]["anyOf"]
    assert {r["properties"]["kind"]["enum"][0] for r in rerankers} == {"none", "embedding"}  # no weights: no cross-encoder
    assert proposal_json_schema("en")["properties"]["train"] == {"type": "array", "maxItems": 0}  # nothing offered


def test_a_real_llama_cpp_server_decodes_by_the_schema_and_its_proposal_is_valid(tmp_path):
    """SmolLM2 behind llama.cpp: the server turns the schema into a grammar (prefixItems, anyOf, enums), and what it
    decodes passes validation on the first reply, without the correction round."""
    from agent.loop.proposers import LLMProposal, llm_messages
    from pipelines.llm import LLMCache, LLMClient, LocalLLMServer

    with LocalLLMServer("smollm2-135m", threads=2) as settings:
        client = LLMClient(settings, LLMCache(tmp_path / "llm.duckdb"))
        messages = llm_messages("- queries about rate limits return the pricing page first", "en", "- none yet")
        reply = client.structured(messages, LLMProposal, max_tokens=900, json_schema=proposal_json_schema("en"))
    space = validate_proposal(reply.space, "llm-1")
    assert space["dense_models"][0] in models_for("en") and reply.train == []
