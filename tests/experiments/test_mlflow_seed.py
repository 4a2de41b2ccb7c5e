"""A new project's MLflow store is a copy of a migrated empty store: the same as MLflow's own, without migrating."""

import os
import sqlite3

from mlflow import MlflowClient

from experiments import sqlite_tracking_uri
from experiments.mlflow_seed import TEMPLATE_ENV, seed_sqlite_store


def rows(db, query):
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def schema(db):
    """Every table and index with its definition's lines as a set (MLflow's migrations order constraints at will)."""
    return {(kind, name, frozenset(line.strip().rstrip(",") for line in (sql or "").splitlines()))
            for kind, name, sql in rows(db, "SELECT type, name, sql FROM sqlite_master")}


def test_a_seeded_store_is_what_mlflow_makes_and_takes_runs(tmp_path, monkeypatch):
    monkeypatch.setenv(TEMPLATE_ENV, str(tmp_path / "templates"))
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "own" / "mlflow.db"
    own.parent.mkdir()
    MlflowClient(f"sqlite:///{own}").search_experiments()  # MLflow migrates a store itself
    seeded = sqlite_tracking_uri(tmp_path / "project" / "mlruns")
    db = tmp_path / "project" / "mlruns" / "mlflow.db"
    assert next((tmp_path / "templates").iterdir()).name.startswith("empty-")
    assert schema(db) == schema(own) and rows(db, "SELECT * FROM alembic_version") == \
        rows(own, "SELECT * FROM alembic_version")
    assert rows(db, "SELECT experiment_id, name, artifact_location FROM experiments") == \
        rows(own, "SELECT experiment_id, name, artifact_location FROM experiments") == \
        [(0, "Default", str(tmp_path / "mlruns" / "0"))]
    assert os.stat(db).st_mode == os.stat(own).st_mode

    client = MlflowClient(seeded)
    experiment = client.create_experiment("evolve-test", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "ndcg_at_10", 0.5)
    assert MlflowClient(seeded).get_run(run.info.run_id).data.metrics == {"ndcg_at_10": 0.5}


def test_an_existing_store_is_never_replaced_and_no_cache_folder_falls_back_to_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv(TEMPLATE_ENV, str(tmp_path / "templates"))
    uri = sqlite_tracking_uri(tmp_path / "mlruns")
    client = MlflowClient(uri)
    kept = client.create_experiment("kept")
    assert seed_sqlite_store(tmp_path / "mlruns" / "mlflow.db") is False  # another process made it first
    assert sqlite_tracking_uri(tmp_path / "mlruns") == uri and MlflowClient(uri).get_experiment(kept).name == "kept"
    assert not [p for p in (tmp_path / "mlruns").iterdir() if p.name != "mlflow.db"]  # no staged copy left behind

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv(TEMPLATE_ENV, str(blocked / "templates"))
    assert seed_sqlite_store(tmp_path / "other.db") is False and not (tmp_path / "other.db").exists()
    fallback = sqlite_tracking_uri(tmp_path / "fallback")  # MLflow creates and migrates it on first use, as before
    assert fallback.endswith("fallback/mlflow.db") and not (tmp_path / "fallback" / "mlflow.db").exists()
