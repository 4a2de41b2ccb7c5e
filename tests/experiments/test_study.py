"""Optuna studies on real storage (SQLite) logging to a real MLflow store."""

import json

import optuna
import pytest
from mlflow import MlflowClient

from experiments.study import StudyRunner, StudySpec
from experiments.tracking import ROLE_TAG

SPACE = {
    "name": "tiny",
    "dense_models": ["all-MiniLM-L6-v2", "none"],
    "chunkers": [{"kind": "whole"}, {"kind": "sentence", "size": [300, 600]}],
    "lexical": {"tokenizers": ["english", "regex"], "k1": {"low": 0.8, "high": 2.0}},
    "fusion": {"kinds": ["rrf", "weighted"]},
}


@pytest.fixture
def runner(tiny_scifact, tmp_path):
    spec = StudySpec(study_name="tiny-study", evalset=str(tiny_scifact), space=SPACE, n_trials=10, seed=3)
    return StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)


def test_study_runs_logs_every_trial_and_reports_held_out(runner, tmp_path):
    runner.run()
    assert runner.finished_count() == 10
    summary = runner.finish()
    assert summary["trials_finished"] == 10
    assert summary["heldout_queries"] == 4 and summary["tune_queries"] == 8  # seeded 70/30 split of 12
    assert 0 < summary["heldout"]["ndcg@10"] <= 1
    # compute once: every dense trial after the first of its (model, chunker) pair found its embeddings
    seen: set[str] = set()
    for t in sorted(runner.study.trials, key=lambda t: t.number):
        config = t.user_attrs.get("config", {})
        if not config.get("dense") or "counts" not in t.user_attrs:
            continue
        pair = json.dumps([config["dense"]["model"], config["chunking"]], sort_keys=True)
        computed = t.user_attrs["counts"].get("chunk_embeddings_computed", 0)
        if pair in seen:  # compute once: a repeat of a (model, chunker) pair embeds nothing
            assert computed == 0, (t.number, pair, t.user_attrs["counts"])
        elif not seen:  # the very first dense trial embedded the corpus (the cache was empty)
            assert computed > 0, (t.number, t.user_attrs["counts"])
        seen.add(pair)
    assert seen  # the seeded space drew dense trials
    client = MlflowClient(runner.tracking_uri)
    experiment = client.get_experiment_by_name("evolve-studies")
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags[ROLE_TAG] == "trial"]
    parent = next(r for r in runs if r.data.tags[ROLE_TAG] == "study")
    assert len(trials) == 10 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    complete = next(r for r in trials if r.data.tags["evolve.trial_state"] == "COMPLETE")
    assert "ndcg_at_10" in complete.data.metrics and "chunking.kind" in complete.data.params
    assert any(k.startswith("seconds.build.") for k in complete.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(complete.info.run_id)}
    assert artifacts == {"config.yaml", "per_query.jsonl"}
    assert not list(runner.folder.glob("trial-*"))  # once MLflow holds a trial's files, the local copy is gone
    study_files = {a.path for a in client.list_artifacts(parent.info.run_id, "study")}
    assert {"study/best_config.yaml", "study/optimization_history.png", "study/summary.json"} <= study_files
    assert parent.data.metrics["heldout.ndcg_at_10"] == pytest.approx(summary["heldout"]["ndcg@10"])


def test_a_second_runner_resumes_and_sync_never_logs_twice(runner, tiny_scifact, tmp_path):
    runner.run(n_trials=4)
    again = StudyRunner(runner.spec, runner.storage_url, tmp_path)
    assert again.sync_mlflow() == 0  # all 4 were logged by the callback
    again.run(n_trials=7)
    numbers = [t.number for t in again.study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(numbers) == 7 == len(set(numbers))
    # the second process is not the first one's random start-up draws again (one seed for both did that)
    drawn = [tuple(sorted(t.params.items())) for t in again.study.trials]
    assert len(set(drawn)) == len(drawn)
    assert again.tracker.logged_trials("tiny-study") == set(numbers)
    client = MlflowClient(again.tracking_uri)  # a set would hide a trial logged twice: count the runs
    runs = client.search_runs([client.get_experiment_by_name("evolve-studies").experiment_id],
                              f"tags.`{ROLE_TAG}` = 'trial'")
    assert sorted(int(r.data.tags["evolve.trial_number"]) for r in runs) == sorted(numbers)


def test_pruning_reports_growing_query_subsets(tiny_scifact, tmp_path):
    spec = StudySpec(study_name="pruned", evalset=str(tiny_scifact), space={**SPACE, "dense_models": ["none"]},
                     n_trials=12, prune_fractions=[0.25, 0.5, 1.0])
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    runner.run()
    steps = [sorted(t.intermediate_values) for t in runner.study.trials]
    assert all(s and s[0] == 0 for s in steps)
    assert any(s == [0, 1, 2] for s in steps)
    pruned = [t for t in runner.study.trials if t.state.name == "PRUNED"]
    assert pruned and all(max(t.intermediate_values) < 2 for t in pruned)  # stopped before the whole query set
    complete = [t for t in runner.study.trials if t.state.name == "COMPLETE"]
    assert all(sorted(t.intermediate_values) == [0, 1, 2] for t in complete)


def test_multi_objective_returns_quality_and_latency(tiny_scifact, tmp_path):
    spec = StudySpec(study_name="pareto", evalset=str(tiny_scifact), space={**SPACE, "dense_models": ["none"]},
                     n_trials=4, multi_objective=True)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    runner.run()
    assert len(runner.study.directions) == 2 and runner.study.best_trials
    for t in runner.study.best_trials:  # the second objective is the trial's measured search latency
        assert t.values[1] == pytest.approx(t.user_attrs["metrics"]["search_ms_per_query"])
    summary = runner.finish()
    assert (runner.folder / "plots" / "pareto_front.png").exists()
    assert json.loads((runner.folder / "summary.json").read_text())["study"] == "pareto"
    assert summary["trials_finished"] == 4
    assert optuna.load_study(study_name="pareto", storage=runner.storage_url).user_attrs["evolve.spec"]["multi_objective"]


def test_dense_none_with_bm25_none_never_fails_a_trial(tiny_scifact, tmp_path):
    """Multivariate TPE needs the same choices every trial: 'no dense + no BM25' is remapped, not re-listed."""
    space = {"name": "both-optional", "dense_models": ["use-multilingual-v3", "none"],
             "chunkers": [{"kind": "whole"}], "lexical": {"tokenizers": ["english", "none"]},
             "fusion": {"kinds": ["rrf"]}}
    spec = StudySpec(study_name="optional", evalset=str(tiny_scifact), space=space, n_trials=25, prune=False)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    runner.run()
    states = [t.state for t in runner.study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 25 and optuna.trial.TrialState.FAIL not in states
    drawn = {(t.params.get("dense_model"), t.params.get("bm25_tokenizer")) for t in runner.study.trials}
    assert ("none", "none") in drawn  # drawn, and run as BM25 only
    assert all(t.user_attrs["config"]["lexical"] for t in runner.study.trials if t.params.get("dense_model") == "none")


def test_a_cold_embedding_shows_as_a_stage_bar_under_the_study(tiny_scifact, tmp_path):
    from agent.commands.tune import StudyDisplay

    space = {**SPACE, "dense_models": ["all-MiniLM-L6-v2"], "chunkers": [{"kind": "whole"}]}
    spec = StudySpec(study_name="staged", evalset=str(tiny_scifact), space=space, n_trials=2)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    seen = []
    runner.stage_progress = lambda stage, done, total: seen.append((stage, done, total))
    runner.run()
    assert {stage for stage, _, _ in seen} == {"embedding chunks (all-MiniLM-L6-v2)"}
    totals = {total for _, _, total in seen if total}
    assert totals == {len(runner.tune.corpus)}  # cold cache: every document (whole chunks) embedded once
    assert seen[-1][1] == seen[-1][2]

    with StudyDisplay(runner, 2, None) as display:
        assert runner.stage_progress == display.stage
        display.stage("embedding chunks (m)", 0, 0)  # nothing to compute: no bar
        assert len(display.progress.tasks) == 1
        display.stage("embedding chunks (m)", 64, 200)
        assert [t.completed for t in display.progress.tasks] == [2, 64]
        display.stage("embedding chunks (m)", 200, 200)
        assert len(display.progress.tasks) == 1
    assert runner.stage_progress is None


def test_stage_lines_say_a_line_per_tenth_of_a_stage():
    from agent.progress import stage_lines

    lines = []
    report = stage_lines(lines.append, "  ")
    report("embedding chunks (m)", 0, 0)  # nothing to compute: silent
    for done in range(0, 201, 8):
        report("embedding chunks (m)", done, 200)
    report("embedding chunks (m)", 200, 200)
    assert lines[0] == "  embedding chunks (m): 0/200" and lines[-1] == "  embedding chunks (m): 200/200"
    assert len(lines) == 11


def test_a_trial_whose_process_died_before_its_first_heartbeat_is_failed(tiny_scifact, tmp_path, monkeypatch):
    """Optuna's stale check skips trials without a heartbeat; a kill right after ask() left one RUNNING."""
    import time

    monkeypatch.setenv("EVOLVE_OPTUNA_HEARTBEAT", "1")
    monkeypatch.setenv("EVOLVE_OPTUNA_GRACE", "2")
    spec = StudySpec(study_name="orphan", evalset=str(tiny_scifact), space={**SPACE, "dense_models": ["none"]},
                     n_trials=3)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    orphan = runner.study.ask()  # what a process killed inside Optuna's ask leaves behind
    assert runner.storage.orphaned_trial_ids(runner.study._study_id) == []  # younger than the grace period
    time.sleep(2.5)
    assert runner.storage.orphaned_trial_ids(runner.study._study_id) == [orphan._trial_id]
    runner.run()
    states = {t.number: t.state for t in runner.study.trials}
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.RUNNING not in states.values()
    assert runner.finished_count() == 3


def test_trials_of_a_model_server_that_is_down_fail_and_the_study_goes_on(tiny_scifact, tmp_path, monkeypatch):
    """A served model whose server is gone: its trials fail with the endpoint named (after the first, at once), the
    others complete, and the summary says why trials failed."""
    import yaml

    from pipelines.llm.local_server import free_port
    from pipelines.remote import REGISTRY_ENV

    registry = tmp_path / "models.yaml"
    registry.write_text(yaml.safe_dump({"models": [{
        "name": "bge-m3@down", "kind": "embedder", "protocol": "openai", "model": "bge-m3", "retries": 1,
        "backoff_s": 0.05, "base_url": f"http://127.0.0.1:{free_port()}/v1"}]}))
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    space = {**SPACE, "dense_models": ["bge-m3@down", "none"], "chunkers": [{"kind": "whole"}]}
    spec = StudySpec(study_name="down", evalset=str(tiny_scifact), space=space, n_trials=8, seed=1, prune=False)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    runner.run()
    failed = [t for t in runner.study.trials if t.state == optuna.trial.TrialState.FAIL]
    complete = [t for t in runner.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert failed and complete and all(t.params["dense_model"] == "bge-m3@down" for t in failed)
    assert all(t.params["dense_model"] == "none" for t in complete)
    assert all("bge-m3@down (bge-m3 at http://127.0.0.1:" in t.user_attrs["fail_reason"] for t in failed)
    assert all(not t.user_attrs.get("metrics") for t in failed)  # nothing scored from part of the corpus
    summary = runner.finish()
    assert summary["trials_failed"] == len(failed)
    assert sum(summary["failures"].values()) == len(failed)
    assert any("failed 2 times" in reason for reason in summary["failures"])
    assert len(failed) == 1 or any("still down" in reason for reason in summary["failures"])
