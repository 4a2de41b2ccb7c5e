"""The loop's train move in a real `evolve start` on SciFact train queries: trained inside the loop's budget, tried
in the study, kept in the trail."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from experiments import SPEC_ATTR
from experiments.space import space_from_dict
from helpers import shared_set, start_loop, summary_of, write_evalset
from pipelines import TrainedModelStore


@pytest.fixture(scope="module")
def scifact_train_set(tmp_path_factory) -> Path:
    """60 SciFact train queries (the train split), 40 test queries (held back), their documents and 20 others."""
    source = shared_set("scifact")

    def rows(name):
        return [json.loads(line) for line in (source / name).read_text("utf-8").splitlines()]

    def qrels(name, ids):
        lines = [line.split("\t") for line in (source / name).read_text("utf-8").splitlines()[1:]]
        return [(q, d, int(r)) for q, d, r in lines if q in ids]

    train, test = rows("queries.train.jsonl")[:60], rows("queries.jsonl")[:40]
    train_qrels, test_qrels = qrels("qrels.train.tsv", {q["query_id"] for q in train}), \
        qrels("qrels.tsv", {q["query_id"] for q in test})
    needed = {d for _, d, _ in train_qrels + test_qrels}
    docs, others = [], 0
    for doc in rows("corpus.jsonl"):
        if doc["doc_id"] in needed or others < 20:
            others += doc["doc_id"] not in needed
            docs.append(doc)
    folder = write_evalset(tmp_path_factory.mktemp("sets") / "scifact-train", docs, test, test_qrels)
    (folder / "queries.train.jsonl").write_text("".join(json.dumps(q) + "\n" for q in train))
    (folder / "qrels.train.tsv").write_text("query_id\tdoc_id\trelevance\n"
                                            + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in train_qrels))
    return folder


def test_a_loop_with_a_train_split_trains_an_adapter_and_a_memory_and_tries_them(scifact_train_set, shared_embeddings,
                                                                                tmp_path, monkeypatch):
    default = tmp_path / "default.yaml"
    default.write_text("name: minilm\ndense: {model: all-MiniLM-L6-v2}\nfusion: {kind: none}\n")
    process = start_loop(tmp_path, scifact_train_set, "--budget", "6m", "--max-iterations", "1",
                            "--trials-per-iteration", "6")
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    assert "training data for the train move: train split of scifact-train, feedback" in output
    assert "train move: 60 examples {'train-split': 60}" in output
    summary = summary_of(tmp_path)
    entry = summary["history"][0]
    assert entry["notes"][-1] == "move: train" and len(entry["trained"]) == 2
    model_id, memory_id = entry["trained"]
    assert model_id.startswith("trained:adapter-") and f"trained {model_id}" in output
    assert memory_id.startswith("trained:memory-") and f"trained {memory_id}" in output
    manifest = TrainedModelStore(tmp_path / ".evolve" / "models").get(model_id).manifest
    assert manifest["data"]["per_source"] == {"train-split": 60} and manifest["base_model"] == "all-MiniLM-L6-v2"
    monkeypatch.setenv("EVOLVE_TRAINED_MODELS", str(tmp_path / ".evolve" / "models"))
    storage = f"sqlite:///{tmp_path / '.evolve' / 'optuna.db'}"
    [summary_row] = optuna.get_all_study_summaries(storage)
    spec = optuna.load_study(study_name=summary_row.study_name, storage=storage).user_attrs[SPEC_ATTR]
    spec = json.loads(spec) if isinstance(spec, str) else spec
    space = space_from_dict(spec["space"])
    assert model_id in space.dense_models  # the study's space offered the adapter, and the memory as a reranker
    assert [r.label for r in space.rerankers if r.kind == "memory"] == [f"memory:{memory_id}"]
