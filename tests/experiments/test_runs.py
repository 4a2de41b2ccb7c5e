"""A run (what was retrieved) is kept apart from its scores: retrieving once and scoring twice gives what
`evaluate` gives, and scoring is a pure function of the run and the qrels."""

from __future__ import annotations

import pytest

from evalsets import load_evalset
from experiments import Run, evaluate, retrieve, score, search_run
from pipelines import Components, PipelineConfig, Retriever, StageLog

BM25 = {"name": "bm25-only", "lexical": {"tokenizer": "english"}, "fusion": {"kind": "none"}}


def test_score_is_a_pure_function_of_the_run_and_the_qrels():
    run = Run({"q1": [("b", 3.0), ("a", 2.0), ("c", 1.0)], "q2": [("x", 1.0)]})
    qrels = {"q1": {"a": 1, "c": 0}, "q2": {"y": 1}}
    rows = score(run, qrels, ("recall@1", "mrr@10"))
    assert rows == [
        {"query_id": "q1", "recall@1": 0.0, "mrr@10": 0.5, "top10": ["b", "a", "c"], "relevant": ["a"]},
        {"query_id": "q2", "recall@1": 0.0, "mrr@10": 0.0, "top10": ["x"], "relevant": ["y"]},
    ]
    assert score(run, qrels, ("recall@1", "mrr@10")) == rows  # the run is not consumed or changed
    assert run.doc_ids("q1") == ["b", "a", "c"] and run.query_ids == ["q1", "q2"]


def test_retrieve_then_score_is_what_evaluate_reports(tiny_scifact, tmp_path):
    evalset = load_evalset(tiny_scifact)
    config = PipelineConfig.model_validate(BM25)
    components = Components(tmp_path / "cache")
    run = retrieve(evalset, config, components)
    assert run.query_ids == [q.query_id for q in evalset.queries]
    assert run.build is not None and run.seconds > 0
    result = evaluate(evalset, config, components)
    assert score(run, evalset.qrels) == result.per_query
    # a built retriever asked again gives the same run (the objective and the guard reuse built retrievers)
    retriever = Retriever(config, components).build(evalset.corpus)
    again = search_run(retriever, evalset.queries, StageLog(), batch_size=3)
    assert again.hits == run.hits
    assert result.means["ndcg@10"] == pytest.approx(
        sum(r["ndcg@10"] for r in score(again, evalset.qrels)) / len(evalset.queries))
