import numpy as np
import pytest

from evalsets import load_evalset
from experiments import evaluate
from helpers import shared_set
from pipelines import Components, PipelineConfig
from pipelines.dense_index import DenseIndex
from pipelines.fusion import reciprocal_rank_fusion, weighted_score_fusion
from pipelines.lexical import BM25Index, get_tokenizer
from pipelines.scored import ScoredLists, top_k_rows


def test_kiwi_reduces_korean_inflections_to_one_token():
    kiwi, regex = get_tokenizer("kiwi"), get_tokenizer("regex")
    texts = ["서울은 한국의 수도이다", "서울에서 열린 회의", "Claude API를 사용했다"]
    tokens = kiwi.tokenize(texts)
    assert "서울" in tokens[0] and "서울" in tokens[1]
    assert "은" not in tokens[0] and "에서" not in tokens[1]  # particles dropped
    assert {"claude", "api", "사용"} <= set(tokens[2])
    assert "서울" not in regex.tokenize(texts)[0]  # regex keeps '서울은' whole


def test_english_tokenizer_stems_and_drops_stopwords():
    assert get_tokenizer("english").tokenize(["The cats are running"]) == [["cat", "run"]]
    with pytest.raises(KeyError, match="unknown BM25 tokenizer"):
        get_tokenizer("mecab")


def test_bm25_ranks_the_matching_chunk_first_and_handles_unknown_words():
    tokenizer = get_tokenizer("kiwi")
    texts = ["서울은 한국의 수도이다", "부산은 항구 도시이다", "제주도는 섬이다"]
    index = BM25Index(tokenizer).build(tokenizer.tokenize(texts))
    result = index.search(["부산에 있는 항구", "전혀없는단어"], k=2)
    assert result.ids[0][0] == 1
    assert np.all(result.scores[1] == 0)


def test_bm25_on_scifact_matches_the_published_stemmed_number():
    """Metrics + BM25 end to end: the README's 0.686 (bm25s lucene, stemmed, title + text)."""
    scifact = load_evalset(shared_set("scifact"))
    config = PipelineConfig.model_validate({"lexical": {"tokenizer": "english"}, "fusion": {"kind": "none"}})
    result = evaluate(scifact, config, Components(":memory:"))
    assert result.means["ndcg@10"] == pytest.approx(0.686, abs=0.02)


def test_reciprocal_rank_fusion_hand_computed():
    a = ScoredLists(np.array([[0, 1, 2]]), np.array([[3.0, 2.0, 1.0]]))
    b = ScoredLists(np.array([[2, 0, -1]]), np.array([[9.0, 1.0, -np.inf]]))
    fused = reciprocal_rank_fusion([a, b], k=60)
    scores = dict(fused.row(0))
    assert scores[0] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[2] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[1] == pytest.approx(1 / 62)
    assert [i for i, _ in fused.row(0)] == [0, 2, 1]


def test_weighted_fusion_normalises_each_list():
    a = ScoredLists(np.array([[0, 1]]), np.array([[10.0, 0.0]]))
    b = ScoredLists(np.array([[1, 0]]), np.array([[0.5, 0.1]]))
    row = dict(weighted_score_fusion([a, b], [0.7, 0.3]).row(0))
    assert row == {0: pytest.approx(0.7), 1: pytest.approx(0.3)}


def test_flat_and_hnsw_agree_with_brute_force():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(50, 32)).astype(np.float32)  # fresh points, not copies of indexed ones
    truth = top_k_rows(queries @ vectors.T, 5)
    flat = DenseIndex("flat").build(vectors).search(queries, 5)
    hnsw = DenseIndex("hnsw", hnsw_m=16, ef_search=64).build(vectors).search(queries, 5)
    assert np.array_equal(flat.ids, truth.ids)
    overlap = np.mean([len(set(h) & set(t)) / 5 for h, t in zip(hnsw.ids, truth.ids)])
    assert overlap >= 0.9
