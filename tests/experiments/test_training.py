"""Training evolve's own models on real data: SciFact train queries, the packaged MiniLM, a real embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalsets import load_evalset
from experiments import evaluate
from experiments.training import (LeakError, LeakGuard, TrainingExample, TrainSettings, assemble, from_feedback,
                                  from_split, mine_negatives, train_model)
from helpers import shared_set, write_evalset
from pipelines import Components, ModelCatalog, PipelineConfig, Retriever, TrainedModelError, TrainedModelStore

BASE = "all-MiniLM-L6-v2"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _qrels(path: Path, ids: set[str]) -> list[tuple[str, str, int]]:
    rows = [line.split("\t") for line in path.read_text("utf-8").splitlines()[1:]]
    return [(q, d, int(r)) for q, d, r in rows if q in ids]


@pytest.fixture(scope="module")
def scifact_with_train(tmp_path_factory) -> Path:
    """30 SciFact train queries and 8 test queries, their documents and 30 others; one train query repeats a test
    query's text under another id, one reuses a test query's id: both must be kept out of training."""
    source = shared_set("scifact")
    train, test = _rows(source / "queries.train.jsonl")[:30], _rows(source / "queries.jsonl")[:8]
    train_qrels = _qrels(source / "qrels.train.tsv", {q["query_id"] for q in train})
    test_qrels = _qrels(source / "qrels.tsv", {q["query_id"] for q in test})
    needed = {d for _, d, _ in train_qrels + test_qrels}
    docs, others = [], 0
    for doc in _rows(source / "corpus.jsonl"):
        if doc["doc_id"] in needed or others < 30:
            others += doc["doc_id"] not in needed
            docs.append(doc)
    folder = write_evalset(tmp_path_factory.mktemp("sets") / "scifact-mini", docs, test, test_qrels)
    copied_text = {"query_id": "train-copy", "text": "  " + test[0]["text"].upper() + " "}
    reused_id = {"query_id": test[1]["query_id"], "text": "a different question about " + test[1]["text"][:20]}
    leaks = [(copied_text["query_id"], test_qrels[0][1], 1), (reused_id["query_id"], test_qrels[1][1], 1)]
    (folder / "queries.train.jsonl").write_text("".join(json.dumps(q) + "\n" for q in train + [copied_text, reused_id]))
    (folder / "qrels.train.tsv").write_text("query_id\tdoc_id\trelevance\n"
                                            + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in train_qrels + leaks))
    return folder


@pytest.fixture(scope="module")
def components(tmp_path_factory) -> Components:
    return Components(tmp_path_factory.mktemp("cache") / "embeddings.sqlite")


@pytest.fixture(scope="module")
def data(scifact_with_train, components):
    guard = LeakGuard.for_evalsets([scifact_with_train])
    data = assemble([from_split(scifact_with_train, "train")], guard)
    base = PipelineConfig.model_validate({"name": "base", "dense": {"model": BASE}, "fusion": {"kind": "none"}})
    data.examples = mine_negatives(data.examples, Retriever(base, components).build(list(data.documents.values())), 3)
    return data


def test_evaluation_queries_never_train(scifact_with_train, data):
    """Dropped by id and by normalised text; what is left shares neither with any test query."""
    test = load_evalset(scifact_with_train, "default")
    test_ids, test_texts = {q.query_id for q in test.queries}, {" ".join(q.text.lower().split()) for q in test.queries}
    assert data.dropped_leaks == 2
    assert len(data.examples) == 30
    for example in data.examples:
        assert example.query_id.split(":", 1)[1] not in test_ids
        assert " ".join(example.query.lower().split()) not in test_texts
    guard = LeakGuard.for_evalsets([scifact_with_train])
    leaked = TrainingExample("feedback:x", test.queries[2].text.replace(" ", "  "), ("d",), source="feedback")
    with pytest.raises(LeakError, match="evaluation queries"):
        guard.check([*data.examples, leaked])
    kept, dropped = guard.filter([leaked])
    assert (kept, dropped) == ([], 1)


def test_validation_holds_out_only_examples_whose_documents_no_other_example_has():
    from experiments.training import validation_split

    shared = [TrainingExample(f"s{i}", f"shared {i}", ("popular", f"own-s{i}")) for i in range(10)]
    own = [TrainingExample(f"o{i}", f"own {i}", (f"d{i}",)) for i in range(30)]
    fit, held = validation_split(shared + own, 0.25, seed=1, minimum=5)
    assert len(held) == 10 and len(fit) == 30
    assert not {d for e in held for d in e.positives} & {d for e in fit for d in e.positives}
    assert all(e.query_id.startswith("o") for e in held)
    assert validation_split(shared + own, 0.25, seed=1, minimum=5) == (fit, held)  # the seed fixes it
    assert validation_split(shared + own, 0.25, seed=1, minimum=11) == (shared + own, [])  # too few: none


def test_adapter_chooses_its_epochs_on_held_out_documents(data, components, tmp_path, monkeypatch):
    import experiments.training.run as run

    monkeypatch.setattr(run, "MIN_VALIDATION_EXAMPLES", 5)
    settings = TrainSettings(epochs=6, batch_size=8, validation_share=0.3, learning_rate=3e-3)
    outcome = train_model("adapter", BASE, data, settings, components, TrainedModelStore(tmp_path / "m"))
    chosen = outcome.report["validation"]
    assert chosen["examples"] == 9 and [e for e, _ in chosen["curve"]] == [0, 1, 2, 3, 4, 5, 6]
    assert chosen["before"] == chosen["curve"][0][1]
    assert chosen["epochs"] == max(chosen["curve"][1:], key=lambda point: point[1])[0]
    manifest = outcome.model.manifest
    assert manifest["settings"]["epochs"] == chosen["epochs"]  # the final model: every example, that long
    assert manifest["data"]["examples"] == 30 and outcome.report["steps"] == 4 * chosen["epochs"]
    assert manifest["training"]["validation"] == chosen
    off = train_model("adapter", BASE, data, settings.model_copy(update={"validation_share": 0.0}), components,
                      TrainedModelStore(tmp_path / "m"))
    assert "validation" not in off.report and off.model.manifest["settings"]["epochs"] == 6


def test_feedback_gives_positives_and_hard_negatives():
    rows = [{"feedback_id": "f1", "rating": "bad", "query": "q one", "correct_doc_id": "d2",
             "results": json.dumps([{"doc_id": "d1"}, {"doc_id": "d2"}, {"doc_id": "d3"}])},
            {"feedback_id": "f2", "rating": "good", "query": "q two", "correct_doc_id": None,
             "results": [{"doc_id": "d3"}]},
            {"feedback_id": "f3", "rating": "bad", "query": "q three", "correct_doc_id": None, "results": None},
            {"feedback_id": "f4", "rating": "bad", "query": "q four", "correct_doc_id": "gone", "results": None}]
    examples, unusable = from_feedback(rows, {"d1", "d2", "d3"})
    assert unusable == 2
    assert [(e.query, e.positives, e.negatives) for e in examples] == [("q one", ("d2",), ("d1", "d3")),
                                                                       ("q two", ("d3",), ())]


def _mrr(config: PipelineConfig, evalset, components) -> float:
    return evaluate(evalset, config, components).means["mrr@10"]


def test_adapter_learns_resumes_to_the_same_model_and_is_verified(scifact_with_train, data, components, tmp_path):
    settings = TrainSettings(epochs=10, batch_size=8, checkpoint_every=3, seed=3)
    store = TrainedModelStore(tmp_path / "a")
    whole = train_model("adapter", BASE, data, settings, components, store)
    assert whole.model is not None and whole.model.model_id.startswith("trained:adapter-")
    assert whole.model.manifest["data"]["per_source"] == {"train-split": 30}
    assert whole.model.licence == "Apache-2.0" and whole.model.base == BASE

    class Crash(Exception):
        pass

    def crash_at_step_8(done: int, total: int) -> None:
        if done == 8:
            raise Crash

    interrupted = TrainedModelStore(tmp_path / "b")
    with pytest.raises(Crash):
        train_model("adapter", BASE, data, settings, components, interrupted, progress=crash_at_step_8)
    steps_seen = []
    resumed = train_model("adapter", BASE, data, settings, components, interrupted,
                          progress=lambda done, total: steps_seen.append(done))
    assert steps_seen[0] == 7  # the checkpoint after step 6, then step 7 onwards: the same batches, the same model
    assert resumed.model.model_id == whole.model.model_id  # the id leaves out when and how long each trained

    from experiments.training._adapter import AdapterTrainer

    original, calls = AdapterTrainer.save_checkpoint, []

    def dies_after_writing_the_second_checkpoint(self, path):
        original(self, path)
        calls.append(path)
        if len(calls) == 2:
            raise Crash  # the checkpoint of step 6 is written, the state naming it is not

    torn = TrainedModelStore(tmp_path / "c")
    AdapterTrainer.save_checkpoint = dies_after_writing_the_second_checkpoint
    try:
        with pytest.raises(Crash):
            train_model("adapter", BASE, data, settings, components, torn)
    finally:
        AdapterTrainer.save_checkpoint = original
    steps_seen.clear()
    assert train_model("adapter", BASE, data, settings, components, torn, progress=lambda done, total:
                       steps_seen.append(done)).model.manifest["weights_sha256"] == whole.model.manifest["weights_sha256"]
    assert steps_seen[0] == 4  # from the state's own checkpoint (step 3), not the newer weights beside it
    again = train_model("adapter", BASE, data, settings, components, store)
    assert again.report.get("reused") and again.model.model_id == whole.model.model_id

    train = load_evalset(scifact_with_train, "train")
    base = PipelineConfig.model_validate({"name": "base", "dense": {"model": BASE}, "fusion": {"kind": "none"}})
    monkey_root = str(store.root)
    import os

    os.environ["EVOLVE_TRAINED_MODELS"] = monkey_root
    try:
        adapted = base.model_copy(update={"dense": base.dense.model_copy(update={"model": whole.model.model_id})})
        assert _mrr(adapted, train, components) > _mrr(base, train, components)
        assert components.store.count(f"{whole.model.model_id}|{whole.model.sha256}") == 0  # passages: the base's
        matrix = whole.model.weights / "matrix.npy"
        values = np.load(matrix)
        values[0, 0] += 1.0
        np.save(matrix, values)
        TrainedModelStore._verified.clear()
        with pytest.raises(TrainedModelError, match="changed since it was trained"):
            TrainedModelStore(store.root).get(whole.model.model_id)
    finally:
        del os.environ["EVOLVE_TRAINED_MODELS"]


class WritesMarker:
    """Pickled, it runs code when unpickled: ``exec`` writing ``path``."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('ran')",))


def _stopped_run(data, components, root: Path) -> tuple[TrainSettings, TrainedModelStore, Path]:
    """An adapter run stopped after step 3: its work directory holds ``checkpoint-2`` and the state naming it."""
    settings = TrainSettings(epochs=2, batch_size=8, checkpoint_every=2, validation_share=0.0, seed=5)
    store = TrainedModelStore(root)

    class Stop(Exception):
        pass

    def stop_at_step_3(done: int, total: int) -> None:
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        train_model("adapter", BASE, data, settings, components, store, progress=stop_at_step_3)
    [state] = list((root / ".work").glob("*/state.json"))
    assert json.loads(state.read_text())["checkpoint"] == "checkpoint-2"
    return settings, store, state.parent


def test_a_checkpoint_outside_its_work_directory_is_refused(data, components, tmp_path):
    import os

    from experiments.training.base import CheckpointError

    settings, store, workdir = _stopped_run(data, components, tmp_path / "models")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "checkpoint-2").write_bytes((workdir / "checkpoint-2").read_bytes())
    (workdir / "checkpoint-link").symlink_to(outside / "checkpoint-2")
    state = json.loads((workdir / "state.json").read_text())
    for name in (str(outside / "checkpoint-2"), os.path.relpath(outside / "checkpoint-2", workdir),
                 "checkpoint-link"):
        (workdir / "state.json").write_text(json.dumps({**state, "checkpoint": name}))
        with pytest.raises(CheckpointError, match=f"names checkpoint '{name}', which is "
                                                  f"{outside / 'checkpoint-2'}, outside the run's work directory"):
            train_model("adapter", BASE, data, settings, components, store)
    (workdir / "checkpoint-link").unlink()
    (workdir / "state.json").write_text(json.dumps(state))
    steps = []
    resumed = train_model("adapter", BASE, data, settings, components, store, progress=lambda d, t: steps.append(d))
    assert resumed.model is not None and steps[0] == 3  # its own checkpoint loads (weights_only) and the run goes on


def test_a_checkpoint_holding_a_pickled_object_is_refused_and_nothing_of_it_runs(data, components, tmp_path):
    import torch

    from experiments.training.base import CheckpointError

    settings, store, workdir = _stopped_run(data, components, tmp_path / "models")
    marker, control = tmp_path / "payload-ran", tmp_path / "control-ran"
    torch.save({"left": torch.zeros(2), "optimizer": WritesMarker(marker)}, workdir / "checkpoint-2")
    with pytest.raises(CheckpointError, match=r"holds more than weights \(it names exec\): refusing to unpickle it"):
        train_model("adapter", BASE, data, settings, components, store)
    assert not marker.exists()
    torch.save(WritesMarker(control), tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)  # the payload is live: unpickled, it runs
    assert control.read_text() == "ran"


def test_embedder_and_reranker_train_on_cpu_and_load_as_pipeline_parts(scifact_with_train, data, components,
                                                                       tmp_path, monkeypatch):
    from guardrails import Evidence  # noqa: F401  (the guard's licence lookup below)
    from guardrails.evidence import models_of

    monkeypatch.setenv("EVOLVE_TRAINED_MODELS", str(tmp_path / "models"))
    short = TrainSettings(max_steps=2, batch_size=4, max_seq_length=64)
    embedder = train_model("embedder", BASE, data, short, components).model
    reranker = train_model("reranker", embedder.model_id, data, short.model_copy(update={"negatives": 3}),
                           components).model
    assert embedder.model_id.startswith("trained:embedder-") and reranker.model_id.startswith("trained:reranker-")
    assert reranker.licence == "Apache-2.0"  # the base's, through the trained embedder it started from
    test = load_evalset(scifact_with_train, "default")
    config = PipelineConfig.model_validate({
        "name": "own-models", "dense": {"model": embedder.model_id}, "fusion": {"kind": "none"},
        "reranker": {"kind": "cross-encoder", "model": reranker.model_id, "top_n": 10, "blend": 0.5}})
    result = evaluate(test, config, components)
    assert 0.0 <= result.means["ndcg@10"] <= 1.0
    assert components.store.count(f"{embedder.model_id}|{embedder.sha256}") >= len(test.corpus)
    assert models_of(config) == {embedder.model_id: "Apache-2.0", reranker.model_id: "Apache-2.0"}
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(embedder.weights), device="cpu").max_seq_length == 64


def test_the_rerankers_new_head_trains_at_its_own_rate(data, components):
    """At the body's 3e-5 a random head left 100 CPU steps at chance loss (ln 8): the head gets 1e-3."""
    from experiments.training import TRAINERS

    trainer = TRAINERS.get("reranker")(BASE, data, TrainSettings(max_seq_length=64), components)
    trainer.prepare()
    groups = trainer.optimizer.param_groups
    assert trainer.fresh == {"classifier.weight", "classifier.bias"}
    assert [g["initial_lr"] for g in groups] == [3e-5, 1e-3]
    assert [p.shape for p in groups[1]["params"]] == [(1, 384), (1,)]


def test_a_trained_reranker_scores_texts_as_long_as_it_trained_on(data, components, tmp_path, monkeypatch):
    """MiniLM's tokenizer would take 512 tokens: 4x the cost of 128 and lengths the head never saw."""
    from pipelines.rerankers import CrossEncoderReranker

    monkeypatch.setenv("EVOLVE_TRAINED_MODELS", str(tmp_path / "models"))
    settings = TrainSettings(max_steps=1, batch_size=2, negatives=1, max_seq_length=48)
    reranker = train_model("reranker", BASE, data, settings, components).model
    assert CrossEncoderReranker(reranker.model_id).model.max_seq_length == 48
    assert CrossEncoderReranker(str(reranker.weights)).model.max_seq_length == 512  # a plain folder: its own


def test_a_node_without_the_model_fetches_it_from_its_mlflow_training_run(data, components, tmp_path):
    from experiments import sqlite_tracking_uri
    from experiments.training import fetch_trained_models, log_trained_model, trained_ids

    uri = sqlite_tracking_uri(tmp_path / "mlruns")
    here = TrainedModelStore(tmp_path / "trainer-node")
    model = train_model("adapter", BASE, data, TrainSettings(epochs=1, batch_size=16), components, here).model
    log_trained_model(model, uri, tmp_path / "mlruns" / "artifacts")
    spec = {"space": {"dense_models": ["none", model.model_id], "rerankers": [{"kind": "none"}]}, "metric": "x"}
    assert trained_ids(spec) == [model.model_id]

    elsewhere = TrainedModelStore(tmp_path / "worker-node")
    assert fetch_trained_models([model.model_id], uri, elsewhere) == [model.model_id]
    assert elsewhere.get(model.model_id).sha256 == model.sha256
    assert fetch_trained_models([model.model_id], uri, elsewhere) == []  # there now: nothing to fetch
    with pytest.raises(TrainedModelError, match="no MLflow training run"):
        fetch_trained_models(["trained:embedder-0123456789ab"], uri, elsewhere)


def test_a_memory_lifts_what_answered_a_close_question_and_moves_nothing_else(scifact_with_train, data, components,
                                                                              tmp_path, monkeypatch):
    """A remembered question asked again finds its answer first; a question like none remembered keeps the first
    stage's order exactly; the memory holds the guarded training questions only, and the same data gives the same
    weights."""
    from pipelines.rerankers import MemoryReranker

    monkeypatch.setenv("EVOLVE_TRAINED_MODELS", str(tmp_path / "models"))
    outcome = train_model("memory", BASE, data, TrainSettings(), components)
    model = outcome.model
    assert model.model_id.startswith("trained:memory-") and model.licence == "Apache-2.0"
    again = train_model("memory", BASE, data, TrainSettings(batch_size=7), components).model
    assert again.manifest["weights_sha256"] == model.manifest["weights_sha256"]
    remembered = MemoryReranker(model.model_id, components.embedder(BASE))
    assert len(remembered.vectors) == len({e.query for e in data.examples}) == len(remembered.answers)

    corpus = list(data.documents.values())
    hybrid = {"name": "hybrid", "dense": {"model": BASE}, "lexical": {"tokenizer": "english"},
              "fusion": {"kind": "weighted", "dense_weight": 0.5}}
    bm25 = {"name": "bm25", "lexical": {"tokenizer": "english"}, "fusion": {"kind": "none"}}
    # re-scoring the first stage's top 100; then BM25's top 1 only: the answers it ranks lower come from the memory
    for first_stage, top_n in ((hybrid, 100), (bm25, 1)):
        plain = PipelineConfig.model_validate(first_stage)
        with_memory = PipelineConfig.model_validate({**first_stage, "reranker": {"kind": "memory", "top_n": top_n,
                                                                                 "model": model.model_id}})
        assert with_memory.reranker.threshold is None and with_memory.reranker.blend == 0.3  # 30 questions: 0.8
        before, after = Retriever(plain, components).build(corpus), Retriever(with_memory, components).build(corpus)
        again = [e.query.lower() + "?" for e in data.examples]  # the same questions, asked a little differently
        missed = [(e, q, [d for d, _ in row]) for e, q, row in zip(data.examples, again, before.search(again))
                  if row[0][0] not in e.positives]
        assert len(missed) >= 5, "the first stage ranks most training questions' answers first: nothing to lift"
        for (example, _, ranking), ranked in zip(missed, after.search([q for _, q, _ in missed])):
            assert ranked[0][0] in example.positives

        unlike = ["quarterly bakery revenue in Seoul", "how do I reset my VPN password"]
        assert [[d for d, _ in row] for row in after.search(unlike)] == \
            [[d for d, _ in row] for row in before.search(unlike)]
    test = load_evalset(scifact_with_train, "default")
    test_vectors = components.embedder(BASE).embed([q.text for q in test.queries], "query")
    test_vectors /= np.linalg.norm(test_vectors, axis=1, keepdims=True)
    assert (test_vectors @ remembered.vectors.T).max() < 0.999  # no test question is remembered


def test_a_memory_is_refused_as_an_embedding_model_with_where_it_goes(data, components, tmp_path, monkeypatch):
    monkeypatch.setenv("EVOLVE_TRAINED_MODELS", str(tmp_path / "models"))
    model = train_model("memory", BASE, data, TrainSettings(), components).model
    dense = PipelineConfig.model_validate({"name": "m", "dense": {"model": model.model_id}, "fusion": {"kind": "none"}})
    with pytest.raises(ValueError, match=r"reranker: \{kind: memory, model: trained:memory-"):
        Retriever(dense, components).build(list(data.documents.values()))


def test_a_memory_calibrates_its_threshold_to_where_close_questions_share_answers():
    """Twin questions (the same document) sit at cosine ~0.99, sibling questions (close, another document) at ~0.86:
    the threshold lands above the siblings and below the twins; with too few questions to hold out it stays at the
    default."""
    from experiments.training._memory import DEFAULT_THRESHOLD, PRECISION, calibrate

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 32))
    twins = centres + 0.15 * rng.normal(size=centres.shape)
    siblings = centres + 0.6 * rng.normal(size=centres.shape)
    vectors = np.vstack([centres, twins, siblings])
    answers = [[f"doc{i}"] for i in range(60)] * 2 + [[f"other{i}"] for i in range(60)]
    calibration = calibrate(vectors, answers, seed=1)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    twin_cosines = np.sum(unit[:60] * unit[60:120], axis=1)
    sibling_cosines = np.sum(unit[:60] * unit[120:], axis=1)
    assert calibration["precision"] >= PRECISION and calibration["held_out"] == 36
    assert np.median(sibling_cosines) < calibration["threshold"] < np.percentile(twin_cosines, 5)
    assert calibrate(vectors[:40], answers[:40])["threshold"] == DEFAULT_THRESHOLD  # 8 to hold out: too few


def test_a_memory_recalls_equally_lifted_answers_in_one_order_whatever_the_hash_seed(components, tmp_path):
    """Answers of one remembered question tie on lift; their order (which breaks ties in the final ranking) is by
    id, not by a string set's order, which changes with PYTHONHASHSEED from one process to the next."""
    from pipelines.rerankers import MemoryReranker, save_memory

    catalog = ModelCatalog(tmp_path / "models")
    question = "Which enzyme repairs DNA breaks?"
    vector = components.embedder(BASE).embed([question], "query")
    answers = ["doc-q", "doc-b", "doc-x", "doc-a", "doc-m", "doc-c"]
    save_memory(tmp_path / "w", vector, [answers], {"threshold": 0.5})
    model = catalog.trained().save("memory", tmp_path / "w", {"base_model": BASE}).model_id
    memory = MemoryReranker(model, components.embedder(BASE), catalog=catalog)
    assert memory.recalled([question]) == [sorted(answers)]
    assert np.allclose(memory.lifts([question], [answers])[0], 1.0, atol=1e-4)  # the question itself: full lift
