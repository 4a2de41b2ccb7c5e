"""agent.online.CandidateTraffic with real BM25 retrievers and a real feedback store: what an interleaved request
may show, and a candidate that fails."""

from agent.online import CandidateTraffic
from evalsets import load_evalset
from evalsets.feedback import FeedbackStore
from pipelines import Components, PipelineConfig, Retriever, best_chunk_per_doc


def bm25(name, **lexical):
    return PipelineConfig.model_validate({"name": name, "lexical": lexical, "fusion": {"kind": "none"}})


def test_interleaving_never_shows_a_document_the_champion_does_not_serve(tiny_scifact, tmp_path):
    data = load_evalset(tiny_scifact)
    components = Components(tmp_path / "cache.sqlite")
    served_docs = data.corpus[::2]  # the champion serves half the corpus (an access filter, an older version)
    champion = Retriever(bm25("champ", tokenizer="english"), components).build(served_docs)
    candidate = Retriever(bm25("cand", tokenizer="regex", k1=0.3, b=0.1), components).build(data.corpus)
    allowed = {d.doc_id for d in served_docs}
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    try:
        traffic = CandidateTraffic("interleave", "4", "cand", candidate, store, lambda: allowed, share=1.0, seed=1)
        from_candidate = 0
        for query in data.queries:
            hits = best_chunk_per_doc(champion.search_chunks([query.text])[0], 6)
            shown, part = traffic.arrange(query.text, 6, hits)
            assert {h["doc_id"] for h in shown} <= allowed
            assert [h["rank"] for h in shown] == list(range(1, len(shown) + 1))
            assert {s["doc_id"] for s in part.shown} == {h["doc_id"] for h in shown}
            from_candidate += sum(s["side"] == "candidate" for s in part.shown)
            request_id = store.record_request("search", query.text, [], "champ", "champ", 1.0)
            traffic.served(request_id, part, citations=[shown[0]["chunk_id"]])
        assert from_candidate >= len(data.queries) * 2  # the candidate did contribute (about half of each list)
        rows = store.rows("SELECT candidate, cited, status FROM traffic")
        assert len(rows) == len(data.queries) and all(r["status"] == "ok" for r in rows)
        assert traffic.health()["interleaved"] == len(data.queries)
    finally:
        store.close()


def test_a_candidate_that_fails_leaves_the_champions_hits_and_is_counted(tiny_scifact, tmp_path):
    data = load_evalset(tiny_scifact)
    components = Components(tmp_path / "cache.sqlite")
    champion = Retriever(bm25("champ", tokenizer="english"), components).build(data.corpus)
    broken = Retriever(bm25("cand", tokenizer="english"), components)  # never built: searching it raises
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    try:
        traffic = CandidateTraffic("interleave", "4", "cand", broken, store, lambda: {d.doc_id for d in data.corpus},
                                   share=1.0, seed=0)
        hits = best_chunk_per_doc(champion.search_chunks([data.queries[0].text])[0], 5)
        shown, part = traffic.arrange(data.queries[0].text, 5, hits)
        assert shown == hits and part.status == "candidate_unavailable"
        traffic.served(store.record_request("search", "q", [], "c", "c", 1.0), part)
        health = traffic.health()
        assert (health["unavailable"], health["interleaved"]) == (1, 0) and health["last_error"]
        assert store.rows("SELECT status FROM traffic") == [{"status": "candidate_unavailable"}]
    finally:
        store.close()


def test_a_new_corpus_version_reaches_the_candidate_too(tiny_scifact, tmp_path):
    data = load_evalset(tiny_scifact)
    components = Components(tmp_path / "cache.sqlite")
    old, new = data.corpus[:20], data.corpus
    candidate = Retriever(bm25("cand", tokenizer="english"), components).build(old)
    everything = {d.doc_id for d in new}
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    try:
        traffic = CandidateTraffic("shadow", "4", "cand", candidate, store, lambda: everything)
        assert traffic.refresh(new) == "candidate version 4 brought to the new corpus version"
        assert {c.doc_id for c in traffic.retriever.chunks} == everything
        late = next(d for d in new[20:])
        found = traffic._candidate_hits(late.text[:200], 3)
        assert found and found[0]["doc_id"] == late.doc_id  # a document only the new version has
        traffic.stop()
    finally:
        store.close()
