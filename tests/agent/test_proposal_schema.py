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
        count = rng.randint(schema.get("minItems", 0), min(schema.get("maxItems", 4), 4))  # repeats included
        prefix = schema.get("prefixItems", [])
        return [draw(prefix[i] if i < len(prefix) else schema["items"], rng) for i in range(count)]
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
    """Repeated entries included: a schema cannot ask for unique items, so the proposer reads them as one."""
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


def test_a_real_llama_cpp_server_decodes_by_the_schema_and_its_proposal_is_valid(smollm2_server, tmp_path):
    """SmolLM2 behind llama.cpp: the server turns the schema into a grammar (prefixItems, anyOf, enums), and what it
    decodes passes validation on the first reply, without the correction round."""
    from agent.loop.proposers import LLMProposal, llm_messages
    from pipelines.llm import LLMCache, LLMClient

    client = LLMClient(smollm2_server, LLMCache(tmp_path / "llm.duckdb"))
    messages = llm_messages("- queries about rate limits return the pricing page first", "en", "- none yet")
    reply = client.structured(messages, LLMProposal, max_tokens=900, json_schema=proposal_json_schema("en"))
    space = validate_proposal(reply.space, "llm-1")
    assert space["dense_models"][0] in models_for("en") and reply.train == []


def test_a_repeated_entry_is_read_once():
    """What SmolLM2 sent in the demo loop: a model twice and a chunker kind twice."""
    repeated = {"dense_models": ["all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "none"],
                "chunkers": [{"kind": "paragraph", "size": 800}, {"kind": "paragraph", "size": 1200}],
                "lexical": {"tokenizers": ["english", "english"]}, "fusion": {"kinds": ["rrf", "rrf"]},
                "rerankers": [{"kind": "none"}, {"kind": "none"}]}
    space = validate_proposal(repeated, "llm-1")
    assert space["dense_models"] == ["all-MiniLM-L6-v2", "none"]
    assert [(c["kind"], c["size"]) for c in space["chunkers"]] == [("paragraph", 800)]
    assert space["lexical"]["tokenizers"] == ["english"] and space["fusion"]["kinds"] == ["rrf"]
    assert len(space["rerankers"]) == 1
