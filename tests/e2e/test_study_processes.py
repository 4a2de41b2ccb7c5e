"""Studies across real processes: SIGKILL and resume (SQLite), two workers on one study (PostgreSQL)."""

import contextlib
import os
import signal
import sqlite3
import time

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from experiments.tracking import ROLE_TAG, TRIAL_TAG
from helpers import FAST_HEARTBEAT, evolve_process

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
SPACE = {"name": "proc", "dense_models": ["none"], "chunkers": [{"kind": "whole"}, {"kind": "paragraph", "size": [600, 1200]}],
         "lexical": {"tokenizers": ["english", "regex"], "k1": {"low": 0.5, "high": 2.5}, "b": {"low": 0.3, "high": 0.9}}}


def finished_trials(storage, name):
    if storage.startswith("sqlite:///") and not os.path.exists(storage[len("sqlite:///"):]):
        return []
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False, states=FINISHED)
    except KeyError:
        return []


def finished_count_read_only(path, name):
    """Finished trials of a study in a SQLite file a running process writes: read-only, so polling never creates
    the storage's tables itself (Optuna would, and race the process that is creating them)."""
    if not os.path.exists(path):
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT count(*) FROM trials JOIN studies USING (study_id) WHERE study_name = ? "
                              "AND state IN ('COMPLETE', 'PRUNED')", (name,)).fetchone()[0]
    except sqlite3.OperationalError:  # no tables yet, or locked for a moment
        return 0


def mlflow_trial_numbers(project, name):
    client = MlflowClient(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("evolve-studies")
    runs = client.search_runs([experiment.experiment_id], f"tags.`evolve.study` = '{name}'", max_results=1000)
    return [int(r.data.tags[TRIAL_TAG]) for r in runs if r.data.tags[ROLE_TAG] == "trial"]


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    return path


def test_sigkill_mid_study_then_the_same_command_finishes_it(tiny_scifact, space_file, tmp_path):
    storage = f"sqlite:///{tmp_path / '.evolve' / 'optuna.db'}"
    args = ["tune", "--evalset", str(tiny_scifact), "--space", str(space_file), "--trials", "40",
            "--study", "killed", "--project-dir", str(tmp_path)]
    first = evolve_process(*args, cwd=tmp_path, env=FAST_HEARTBEAT)
    deadline = time.time() + 300
    while finished_count_read_only(tmp_path / ".evolve" / "optuna.db", "killed") < 5:
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = {t.number: t.params for t in finished_trials(storage, "killed")}
    assert 5 <= len(before) < 40

    second = evolve_process(*args, cwd=tmp_path, env=FAST_HEARTBEAT)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    study = optuna.load_study(study_name="killed", storage=storage)
    after = {t.number: t.params for t in study.get_trials(deepcopy=False, states=FINISHED)}
    assert len(after) == 40
    assert all(after[n] == params for n, params in before.items())  # nothing lost, nothing re-run
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    logged = mlflow_trial_numbers(tmp_path, "killed")
    assert sorted(logged) == sorted(after)  # every finished trial in MLflow exactly once


def test_two_workers_share_one_postgresql_study(tiny_scifact, space_file, tmp_path, postgres_url):
    url = postgres_url
    project = tmp_path / "project"
    project.mkdir()
    # the worker starts first and waits for the study, as a systemd unit on a GPU node would
    worker = evolve_process("worker", "--study", "shared", "--storage", url, "--wait", "2m", "--project-dir",
                            str(project), cwd=project, env=FAST_HEARTBEAT)
    tune = evolve_process("tune", "--evalset", str(tiny_scifact), "--space", str(space_file), "--trials", "60",
                          "--study", "shared", "--storage", url, "--project-dir", str(project), cwd=project,
                          env=FAST_HEARTBEAT)
    worker_out, _ = worker.communicate(timeout=600)
    tune_out, _ = tune.communicate(timeout=600)
    assert worker.returncode == 0, worker_out
    assert tune.returncode == 0, tune_out
    trials = finished_trials(url, "shared")
    assert 60 <= len(trials) <= 61  # the last two trials may finish together
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes pulled trials
    logged = mlflow_trial_numbers(project, "shared")
    every = optuna.load_study(study_name="shared", storage=url).trials
    assert sorted(logged) == sorted(numbers), (len(trials), sorted(numbers)[-5:], sorted(logged)[-6:],
                                               [(t.number, t.state.name) for t in every[55:]])
