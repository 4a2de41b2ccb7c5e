"""End to end on small slices of the real sets, with real models."""

import pytest

from evalsets import load_evalset
from experiments import evaluate
from pipelines import Components, PipelineConfig, Retriever


def config(**parts):
    return PipelineConfig.model_validate(parts)


def test_hybrid_korean_pipeline_finds_the_paragraphs(tiny_korquad, tmp_path):
    data = load_evalset(tiny_korquad)
    components = Components(tmp_path / "cache.sqlite")
    bm25 = evaluate(data, config(lexical={"tokenizer": "kiwi"}, fusion={"kind": "none"}), components)
    hybrid_config = config(chunking={"kind": "sentence", "size": 300}, dense={"model": "multilingual-e5-small"},
                           lexical={"tokenizer": "kiwi"}, fusion={"kind": "rrf"})
    hybrid = evaluate(data, hybrid_config, components)
    assert bm25.means["ndcg@10"] > 0.7 and hybrid.means["ndcg@10"] > 0.7
    assert hybrid.build.counts["chunk_embeddings_computed"] > 0
    # every ranked document is a real document, ranked once (chunks were mapped back by max score)
    for row in hybrid.per_query:
        assert len(row["top10"]) == len(set(row["top10"]))
        assert set(row["top10"]) <= {d.doc_id for d in data.corpus}
    # same config again in a fresh process-like state: everything from the disk cache
    again = evaluate(data, hybrid_config, Components(tmp_path / "cache.sqlite"))
    assert again.build.counts == {"chunk_embeddings_cached": hybrid.build.counts["chunk_embeddings_computed"]
                                  + hybrid.build.counts.get("chunk_embeddings_cached", 0),
                                  "chunk_embeddings_computed": 0}
    assert again.means == hybrid.means


def test_reuse_within_a_process_only_pays_for_what_changed(tiny_scifact, warm_components):
    data = load_evalset(tiny_scifact)
    components = warm_components()
    base = dict(chunking={"kind": "whole"}, dense={"model": "all-MiniLM-L6-v2"}, lexical={"tokenizer": "english"})
    first = evaluate(data, config(**base, fusion={"kind": "rrf"}), components)
    second = evaluate(data, config(**base, fusion={"kind": "weighted", "dense_weight": 0.3}), components)
    assert not first.build.reused["dense_index"] and second.build.reused["dense_index"]
    assert second.build.reused["bm25_index"] and "embed_chunks" not in second.build.seconds
    changed_k1 = evaluate(data, config(**{**base, "lexical": {"tokenizer": "english", "k1": 0.9}},
                                       fusion={"kind": "rrf"}), components)
    assert not changed_k1.build.reused["bm25_index"] and "tokenize_chunks" not in changed_k1.build.seconds


def test_reranked_pipeline_returns_documents_in_reranker_order(tiny_scifact, warm_components):
    data = load_evalset(tiny_scifact)
    components = warm_components()
    cfg = config(lexical={"tokenizer": "english"}, fusion={"kind": "none"},
                 reranker={"kind": "embedding", "model": "all-MiniLM-L6-v2", "top_n": 5}, k=20)
    retriever = Retriever(cfg, components).build(data.corpus)
    first_stage = Retriever(config(lexical={"tokenizer": "english"}, fusion={"kind": "none"}, k=20),
                            components).build(data.corpus)
    for query in (q.text for q in data.queries[:4]):
        chunks = retriever.search_chunks([query])[0]
        before = first_stage.search_chunks([query])[0]
        # the head is the first stage's top 5, ordered by MiniLM cosine; the tail keeps the first stage's order
        model = components.embedder("all-MiniLM-L6-v2")
        cosine = {c.chunk_id: float(model.embed([c.text], "passage")[0] @ model.embed([query], "query")[0])
                  for c in before[:5]}
        assert [c.chunk_id for c in chunks[:5]] == sorted(cosine, key=cosine.get, reverse=True)
        assert [c.score for c in chunks[:5]] == pytest.approx(sorted(cosine.values(), reverse=True), abs=1e-5)
        assert [c.chunk_id for c in chunks[5:]] == [c.chunk_id for c in before[5:len(chunks)]]
    result = evaluate(data, cfg, components)
    assert result.search.seconds["rerank"] > 0


def test_unknown_model_in_config_is_a_clear_error(tiny_scifact, warm_components):
    data = load_evalset(tiny_scifact)
    with pytest.raises(KeyError, match="unknown embedding model"):
        evaluate(data, config(dense={"model": "nope"}), warm_components())


def test_a_process_keeps_the_recent_configs_parts_only_and_rebuilds_the_rest_without_embedding(tiny_scifact,
                                                                                               warm_components):
    """A 48-hour loop tries hundreds of configs: built parts are kept for the most recent few (here two of each),
    and a forgotten one is rebuilt from the chunks and the embedding store, with the same results."""
    from pipelines import Components

    data = load_evalset(tiny_scifact)
    components = Components(warm_components().store, kept={"chunks": 2, "tokens": 2, "bm25": 2, "dense": 2})
    sizes = [100, 200, 300]
    configs = [config(chunking={"kind": "sentence", "size": size}, dense={"model": "all-MiniLM-L6-v2"},
                      lexical={"tokenizer": "english"}, fusion={"kind": "rrf"}) for size in sizes]
    first = [evaluate(data, c, components) for c in configs]
    assert len(components._chunks) == len(components._dense) == len(components._bm25) == 2
    again = evaluate(data, configs[0], components)  # the least recently used: forgotten, rebuilt
    assert not again.build.reused["chunks"] and not again.build.reused["dense_index"]
    assert again.build.counts["chunk_embeddings_computed"] == 0  # from the store, never embedded again
    assert again.means == first[0].means
    recent = evaluate(data, configs[2], components)  # still kept after that rebuild pushed out the second
    assert recent.build.reused["chunks"] and recent.build.reused["dense_index"] and recent.build.reused["bm25_index"]
