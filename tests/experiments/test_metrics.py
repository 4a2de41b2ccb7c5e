import math
import random

import pytest

from experiments.metrics import mean_scores, mrr_at_k, ndcg_at_k, parse_metric, recall_at_k, score_query


def test_hand_computed_cases():
    relevant = {"a": 1, "c": 1}
    ranking = ["b", "a", "d", "c"]
    # DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranking, relevant, 10) == pytest.approx(expected)
    assert ndcg_at_k(ranking, relevant, 1) == 0.0
    assert mrr_at_k(ranking, relevant, 10) == 0.5
    assert mrr_at_k(ranking, relevant, 1) == 0.0
    assert recall_at_k(ranking, relevant, 2) == 0.5
    assert recall_at_k(ranking, relevant, 4) == 1.0
    assert ndcg_at_k(["a", "c"], relevant) == pytest.approx(1.0)
    # graded relevance: linear gain, ideal order by grade
    graded = {"x": 2, "y": 1}
    assert ndcg_at_k(["y", "x"], graded) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["z"], {}) == 0.0


def test_parse_metric_rejects_unknown_names():
    assert parse_metric("nDCG@10") == ("ndcg", 10)
    for bad in ("ndcg", "map@10", "recall@0", "mrr@x"):
        with pytest.raises(ValueError, match="unknown metric"):
            parse_metric(bad)


def test_agrees_with_ranx_on_a_random_fixture():
    ranx = pytest.importorskip("ranx")
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 6))}
        scores = {d: rng.random() for d in rng.sample(docs, 30)}
        run[qid] = scores
    ours = mean_scores(score_query(sorted(run[q], key=lambda d: -run[q][d]), qrels[q],
                                   ("ndcg@10", "mrr@10", "recall@10", "recall@20")) for q in qrels)
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ["ndcg@10", "mrr@10", "recall@10", "recall@20"])
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name
