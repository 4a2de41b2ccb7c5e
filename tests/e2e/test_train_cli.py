"""`evolve train` as a user runs it: feedback from a real DuckDB store trains an adapter, evaluation queries are
kept out, the model is stored in the project, listed, and logged to the project's MLflow store."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from evalsets import FeedbackEvent, FeedbackStore, load_evalset
from experiments import sqlite_tracking_uri
from helpers import DEMO_SET, evolve
from pipelines import TrainedModelStore


def evolve_in(project, *args: str):
    """`evolve ARGS --project-dir PROJECT`, its trained models in the project (not $EVOLVE_TRAINED_MODELS)."""
    return evolve(*args, "--project-dir", str(project), cwd=project, timeout=900, drop=("EVOLVE_TRAINED_MODELS",))


def test_feedback_trains_an_adapter_without_the_evaluation_queries(tmp_path):
    demo = load_evalset(DEMO_SET)
    docs = [d.doc_id for d in demo.corpus]
    (tmp_path / ".evolve").mkdir()
    store = FeedbackStore(tmp_path / ".evolve" / "feedback.duckdb")
    events = []
    for i, doc in enumerate(demo.corpus[:12]):
        returned = [{"rank": r + 1, "doc_id": d, "chunk_id": f"{d}#0", "score": 1.0 / (r + 1)}
                    for r, d in enumerate(docs[20 + i:23 + i])]
        request = store.record_request("search", f"where does the guide explain {doc.title.lower()}?", returned,
                                       "default", "cfg", 5.0)
        events.append(FeedbackEvent(request_id=request, rating="bad", correct_doc_id=doc.doc_id))
    leaked = store.record_request("search", demo.queries[0].text, [], "default", "cfg", 5.0)
    events.append(FeedbackEvent(request_id=leaked, rating="bad", correct_doc_id=docs[0]))
    events.append(FeedbackEvent(rating="bad", query="a bad rating that marks no document"))
    store.record_feedback([store.vouch(e) if e.request_id else e for e in events], source="api")
    store.close()
    bm25 = tmp_path / "bm25.yaml"
    bm25.write_text("name: bm25\nlexical: {tokenizer: english}\nfusion: {kind: none}\n")

    result = evolve_in(tmp_path, "train", "--kind", "adapter", "--base", "use-multilingual-v3", "--feedback",
                    str(DEMO_SET), "--negatives-from", str(bm25))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training data: 12 examples {'feedback': 12}, 1 dropped as evaluation queries" in result.stdout
    assert "feedback: 14 ratings, 13 usable, 1 without a known document" in result.stdout
    [model] = TrainedModelStore(tmp_path / ".evolve" / "models").list()
    assert model.manifest["data"]["per_source"] == {"feedback": 12} and model.manifest["data"]["negatives"] >= 12
    assert model.licence == "Apache-2.0" and model.model_id in result.stdout

    listed = evolve_in(tmp_path, "models")
    assert model.model_id in listed.stdout
    client = MlflowClient(sqlite_tracking_uri(tmp_path / "mlruns"))
    [run] = client.search_runs([client.get_experiment_by_name("evolve-training").experiment_id])
    assert run.data.tags["evolve.trained_model"] == model.model_id
    assert run.data.metrics["examples.feedback"] == 12
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "trained_model")]
    assert artifacts == [f"trained_model/{TrainedModelStore.folder_name(model.model_id)}"]
    assert not (tmp_path / "mlruns" / "0").exists() and (tmp_path / "mlruns" / "artifacts").is_dir()
    assert json.loads((model.folder / "manifest.json").read_text())["id"] == model.model_id

    refused = evolve_in(tmp_path, "train", "--kind", "embedder", "--base", "multilingual-e5-small", "--feedback",
                     str(DEMO_SET), "--negatives", "0")
    assert refused.returncode == 2
    assert "cannot be fine-tuned" in refused.stderr and "Traceback" not in refused.stderr
