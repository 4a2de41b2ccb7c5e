"""A retriever brought to a new corpus version is updated, not rebuilt, and ranks exactly as one built afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from evalsets import load_evalset
from pipelines import Retriever, load_config

DEMO = Path(__file__).resolve().parents[2] / "evalsets" / "data" / "claude-docs-qa"
CONFIG = Path(__file__).resolve().parents[2] / "pipelines" / "configs" / "demo.yaml"


def rankings(retriever: Retriever, queries: list[str]) -> list[dict[str, float]]:
    return [{doc: round(score, 5) for doc, score in row[:10]} for row in retriever.search(queries)]


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_refreshed_retriever_matches_a_fresh_build(warm_components, index: str) -> None:
    evalset = load_evalset(DEMO)
    docs = evalset.corpus[:80]  # enough chunks for the index kinds, quick to embed
    before = docs[:-6]
    changed = [replace(d, text=d.text + "\n\nAppendix: the quota resets every Monday at 09:00 UTC.") for d in docs[3:5]]
    after = [d for d in before[:3]] + changed + before[8:] + docs[-6:]  # 3 removed (5..7), 2 changed, 6 added
    config = load_config(CONFIG)
    config = config.model_copy(update={"dense": config.dense.model_copy(update={"index": index})})
    components = warm_components()
    old = Retriever(config, components).build(before)
    embedder = components.embedder(config.dense.model)
    looked_up, computed = embedder.stats.misses + embedder.stats.hits, embedder.stats.misses
    new = old.refreshed(after)
    fresh = Retriever(config, warm_components()).build(after)

    counts = new.build_log.counts
    changed_ids = {d.doc_id for d in changed} | {d.doc_id for d in docs[-6:]}
    assert counts["chunks_added"] == sum(c.doc_id in changed_ids for c in fresh.chunks)
    assert counts["chunks_kept"] + counts["chunks_added"] == len(fresh.chunks)
    assert counts["chunks_removed"] == len(old.chunks) - counts["chunks_kept"]
    # only the new and changed chunks were embedded; a flat index does not even look the kept ones up, HNSW (no
    # deletes) is built again with the kept chunks' vectors from the cache
    assert embedder.stats.misses - computed <= counts["chunks_added"]
    if index == "flat":
        assert embedder.stats.misses + embedder.stats.hits - looked_up == counts["chunks_added"]
    assert new.build_log.reused["dense_index_updated"] is (index == "flat")
    assert sorted(c.chunk_id for c in new.chunks) == sorted(c.chunk_id for c in fresh.chunks)
    queries = [q.text for q in evalset.queries[:40]] + ["when does the quota reset"]
    if index == "flat":  # exact search: the same documents with the same scores
        assert rankings(new, queries) == rankings(fresh, queries)
    else:  # HNSW is approximate, and its graph depends on insertion order: the same top documents
        same = [len(set(a) & set(b)) / 10 for a, b in zip(rankings(new, queries), rankings(fresh, queries))]
        assert sum(same) / len(same) > 0.9
    assert next(iter(new.search(["when does the quota reset on Monday"])[0]))[0] in {d.doc_id for d in changed}
    # the old retriever is untouched: it still ranks over the old corpus
    assert {d for row in old.search(queries) for d, _ in row} <= {d.doc_id for d in before}
