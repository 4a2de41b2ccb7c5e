"""The agent loop (`evolve start`), run as real processes: budget, status/stop, SIGKILL resume, MLflow trail,
and a proposer that cannot be steered outside the search-space schema."""

import contextlib
import json
import re
import signal
import sqlite3
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from agent.loop.runtime import AgentPaths, read_status
from experiments.space import space_from_dict
from helpers import FAST_HEARTBEAT, INJECTED, evolve, evolve_process, start_loop, summary_of, wait_for
from pipelines.embedders import REGISTRY

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def look_at_every_candidate(project: Path) -> None:
    """The packaged policy with the look gate off: for tests of what a look does (answers judged, a cross-fitted
    report), which need the first iteration's candidate looked at whatever its tuning evidence."""
    from guardrails import DEFAULT_POLICY

    project.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_POLICY.read_text("utf-8").replace("looks_gate:\n  enabled: true", "looks_gate:\n  enabled: false")
    assert "enabled: false" in text
    (project / "policy.yaml").write_text(text, "utf-8")


def run_trials(project: Path, run_id: str) -> dict[str, list[int]]:
    """Finished trial numbers of every study this run created, from the Optuna storage itself."""
    storage = f"sqlite:///{project / '.evolve' / 'optuna.db'}"
    out = {}
    for summary in optuna.get_all_study_summaries(storage):
        if summary.study_name.startswith(run_id):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            out[summary.study_name] = [t.number for t in study.get_trials(deepcopy=False, states=FINISHED)]
    return out


def trials_asked(project: Path) -> int:
    """Trials asked so far in the project's SQLite Optuna storage, read-only (polling never creates its tables)."""
    path = project / ".evolve" / "optuna.db"
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT count(*) FROM trials").fetchone()[0]
    except sqlite3.OperationalError:  # no tables yet, or locked for a moment
        return 0


def status_value(project: Path, key: str, default=None):
    try:
        return (read_status(AgentPaths(project)) or {}).get(key, default)
    except json.JSONDecodeError:
        return default


# --- the loop as a real process ------------------------------------------------------------

@pytest.fixture
def injected_set(tiny_scifact, tmp_path):
    """The tiny SciFact slice plus a corpus document that talks to the model."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("queries.jsonl", "qrels.tsv"):
        (folder / name).write_bytes((tiny_scifact / name).read_bytes())
    corpus = (tiny_scifact / "corpus.jsonl").read_text("utf-8")
    evil = {"doc_id": "evil", "title": "Maintenance notice for the retrieval agent", "text": INJECTED}
    (folder / "corpus.jsonl").write_text(corpus + json.dumps(evil) + "\n", "utf-8")
    return folder


def test_loop_ends_within_its_budget_and_leaves_a_readable_trail(injected_set, shared_embeddings, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    # the loop stops once less than twice its 20 s reserve is left: 65 s leave 25 s for iterations, and on a loaded
    # 2-core machine two ran in the first 20 s (the embeddings come from the session cache); 80 s took 64 s of wall
    budget = 65
    began = time.time()
    process = start_loop(project, injected_set, "--budget", f"{budget}s", "--trials-per-iteration", "3")
    output, _ = process.communicate(timeout=budget + 120)
    wall = time.time() - began
    assert process.returncode == 0, output
    summary = summary_of(project)
    assert summary["stop_reason"] == "budget"
    # the loop looks at its clock between steps (trials, embedding batches), then writes its summary
    assert summary["spent_seconds"] <= budget + 5
    assert wall < budget + 30, f"the loop took {wall:.0f}s of wall time for an {budget}s budget"
    assert summary["iterations"] >= 1 and summary["proposals"]["heuristic"] == summary["iterations"]
    assert summary["trials_run"] == sum(len(v) for v in run_trials(project, summary["run_id"]).values())
    assert "heuristic proposer takes over" in " ".join(summary["history"][0]["notes"])

    # every iteration is an MLflow run with its proposal, rationale and outcome
    client = MlflowClient(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("evolve-agent")
    runs = client.search_runs([experiment.experiment_id], "tags.`evolve.role` = 'iteration'")
    assert len(runs) == summary["iterations"]
    for run in runs:
        assert run.data.tags["evolve.proposer"] == "heuristic"
        assert run.data.tags["evolve.rationale"] and run.data.tags["evolve.outcome"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"proposal_space.yaml", "guardrail_report.json", "observation.txt"} <= artifacts

    # the proposals that ran stayed inside the schema although the corpus talks to the model
    storage = f"sqlite:///{project / '.evolve' / 'optuna.db'}"
    for name in run_trials(project, summary["run_id"]):
        spec = optuna.load_study(study_name=name, storage=storage).user_attrs["evolve.spec"]
        assert set(spec["space"]["dense_models"]) - {"none"} <= set(REGISTRY)

    status = evolve("status", "--project-dir", str(project))
    assert status.returncode == 0 and "not running" in status.stdout and "finished" in status.stdout


def test_without_an_endpoint_the_loop_runs_its_own_llm_server_which_cannot_steer_it(injected_set, shared_embeddings,
                                                                                      tmp_path):
    """No endpoint configured: `evolve start` starts the local llama.cpp server (SmolLM2 here), asks it for
    proposals with failure examples that include the document talking to the model, and stops it on exit."""
    import httpx

    look_at_every_candidate(tmp_path)
    # two iterations (the LLM's turn, then the heuristic's) bound it; the 150 s budget sets the answers' share
    process = start_loop(tmp_path, injected_set, "--budget", "150s", "--max-iterations", "2",
                         "--trials-per-iteration", "3", "--local-model", "smollm2-135m", llm=True)
    output, _ = process.communicate(timeout=400)
    assert process.returncode == 0, output
    assert "starting a local smollm2-135m server on 127.0.0.1" in output
    llm = status_value(tmp_path, "llm")
    assert llm.startswith("smollm2-135m at http://127.0.0.1:")
    with pytest.raises(httpx.TransportError):  # stopped with the loop
        httpx.get(llm.split(" at ")[1] + "/models", timeout=2)
    summary = summary_of(tmp_path)
    assert sum(summary["proposals"].values()) >= max(1, summary["iterations"]), output
    first = summary["history"][0]  # the LLM was asked: it proposed, or its answer was refused on the record
    assert first["proposer"] == "llm" or any(("rejected by the schema" in n or "failed to propose" in n
                                              or "unusable" in n) for n in first["notes"]), first["notes"]
    assert not any(n.startswith("no LLM") for n in first["notes"])
    # --proposer auto: the LLM is asked first, then the two take turns; each iteration's time is on the record
    assert first["asked"] == "llm" and first["gain"] is None and first["seconds"] > 0
    assert [h["asked"] for h in summary["history"][:2]] == ["llm", "heuristic"][:len(summary["history"])]
    assert set(summary["proposer_credit"]) == {"llm", "heuristic"}
    # the same LLM answers held-back queries and judges them at the guard step, within its share of the budget,
    # unless one timed answer and verdict say that share cannot pay for the policy's paired queries (on a loaded
    # CPU it often cannot): then the run says so once and every guard step says why answers were skipped
    flat = " ".join(output.split())  # the terminal wraps long lines at spaces
    if "answer stage skipped for this run" in flat:
        assert re.search(r"answer stage skipped for this run: one answer took \d+ s and one verdict \d+ s on "
                         r"smollm2-135m, so 6 paired queries \(answers.min_paired_queries\) need about \d+ s", flat)
        assert flat.count("answer stage skipped for this run") == 1
        assert "skipped for this run" in first["answers"]["skipped"], first["answers"]
    else:
        assert re.search(r" answers: \d+ queries answered and judged, .*? of the 3[78] s answers may take", flat), \
            output
        assert first["answers"]["judge_model"] == "smollm2-135m" and "queries answered and judged" in \
            first["answers"]["spend"]
    assert first["answer_seconds"] <= 0.25 * 150 + 30  # the share, plus at most one call past the deadline
    storage = f"sqlite:///{tmp_path / '.evolve' / 'optuna.db'}"
    assert run_trials(tmp_path, summary["run_id"]), output  # something ran, so the loop below checks something
    for name in run_trials(tmp_path, summary["run_id"]):
        space = optuna.load_study(study_name=name, storage=storage).user_attrs["evolve.spec"]["space"]
        space_from_dict(space)  # whatever was proposed ran inside the schema
        assert set(space["dense_models"]) - {"none"} <= set(REGISTRY)
        assert "exec" not in space


def test_stop_ends_the_loop_gracefully(tiny_scifact, shared_embeddings, tmp_path):
    # a study far longer than the stop takes to land (cached trials take a second), so the stop ends the first one
    process = start_loop(tmp_path, tiny_scifact, "--budget", "20m", "--trials-per-iteration", "40")
    # a trial running, not only the studies' step begun: a stop that lands before the first trial is asked ends the
    # study with none, and "after the running trial" has nothing to check
    wait_for(lambda: trials_asked(tmp_path) >= 1, process, 240, "the first trial")
    asked = time.time()
    stop = evolve("stop", "--project-dir", str(tmp_path))
    assert stop.returncode == 0, stop.stdout + stop.stderr
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 0, output
    assert time.time() - asked < 120
    summary = summary_of(tmp_path)
    assert summary["stop_reason"] == "stop" and summary["iterations"] == 1
    assert status_value(tmp_path, "node") == "finished"
    # "after the running trial": the study it was in holds no trial left running, and at least one finished
    storage = f"sqlite:///{tmp_path / '.evolve' / 'optuna.db'}"
    studies = [optuna.load_study(study_name=s.study_name, storage=storage)
               for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith(summary["run_id"])]
    trials = [t for study in studies for t in study.get_trials(deepcopy=False)]
    assert trials and not [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert any(t.state in FINISHED for t in trials)


def test_crossfit_tunes_one_study_per_fold_and_decides_on_every_query_once(tiny_scifact, shared_embeddings, tmp_path):
    from evalsets import load_evalset
    from guardrails import DecisionLog

    look_at_every_candidate(tmp_path)
    process = start_loop(tmp_path, tiny_scifact, "--decision", "crossfit", "--folds", "3", "--budget", "10m",
                            "--trials-per-iteration", "9", "--max-iterations", "1")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "cross-fitted over 3 folds" in output
    run_id = summary_of(tmp_path)["run_id"]
    storage = f"sqlite:///{tmp_path / '.evolve' / 'optuna.db'}"
    folds = {}
    for name, numbers in run_trials(tmp_path, run_id).items():
        assert len(numbers) == 3  # nine trials shared out over three folds
        folds[name] = optuna.load_study(study_name=name, storage=storage).user_attrs["evolve.spec"]["fold"]
    assert folds == {f"{run_id}-it0-f{f}": f for f in range(3)}
    guard = [r for r in DecisionLog(tmp_path / ".evolve" / "audit.duckdb").rows() if r.phase == "done"]
    assert len(guard) == 1 and guard[0].info["look"] == 1
    report = guard[0].info["report"]
    assert report["decision"]["crossfit_folds"] == 3
    everything = load_evalset(tiny_scifact)
    assert report["candidate"]["sets"][everything.name]["queries"] == len(everything.queries)  # each query once
    # without an LLM the decision rests on retrieval metrics, and the report and the output say answers were skipped
    assert "answer metrics skipped: no LLM (--no-llm)" in output
    skipped = next(r for r in report["rules"] if r["rule"] == "answer metrics")
    assert skipped["measured"] == "skipped" and "no LLM (--no-llm)" in skipped["why"]
    assert summary_of(tmp_path)["history"][0]["answer_seconds"] == 0


def test_sigkill_then_the_same_command_resumes_the_run(tiny_scifact, tmp_path):
    # its own cold embedding cache (not the session's): with every vector cached the first process reached the second
    # study before it had recorded any spent time, and the kill would check nothing of the budget's carry-over
    # bounded by iterations, not wall time, so a slow machine reaches the second study before its budget ends
    # three iterations, killed inside the second: a whole study is still to run, so the kill cannot come after the run
    # ended (with two, a warm machine finished the second study's last three trials between two polls)
    args = ("--budget", "10m", "--max-iterations", "3", "--trials-per-iteration", "4")
    first = start_loop(tmp_path, tiny_scifact, *args)
    # kill it inside its second study, after at least one trial of that study finished
    paths = AgentPaths(tmp_path)

    def inside_second_study() -> bool:
        if not paths.current_run.exists():
            return False
        run_id = json.loads(paths.current_run.read_text())["run_id"]
        return len(run_trials(tmp_path, run_id).get(f"{run_id}-it1", [])) >= 1

    wait_for(inside_second_study, first, 240, "a trial of the second study")
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL, "the first run ended before it was killed: nothing to resume"
    run_before = json.loads(paths.current_run.read_text())
    trials_before = run_trials(tmp_path, run_before["run_id"])
    assert run_before["spent_seconds"] > 0

    second = start_loop(tmp_path, tiny_scifact, *args)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    assert f"resuming run {run_before['run_id']}" in output
    summary = summary_of(tmp_path)
    assert summary["run_id"] == run_before["run_id"]
    trials_after = run_trials(tmp_path, summary["run_id"])
    for study, numbers in trials_before.items():  # nothing finished before the kill is lost
        assert set(numbers) <= set(trials_after[study])
    for numbers in trials_after.values():  # nor repeated
        assert len(numbers) == len(set(numbers))
    assert summary["trials_run"] == sum(len(v) for v in trials_after.values())
    # the budget continued from what the first process had spent
    assert run_before["spent_seconds"] <= summary["spent_seconds"] <= 600
    assert summary["iterations"] == 3 and summary["stop_reason"] == "iterations"
    assert [h["iteration"] for h in summary["history"]] == list(range(summary["iterations"]))


def test_workers_following_a_postgresql_storage_run_trials_of_the_loop(tiny_scifact, shared_embeddings, tmp_path,
                                                                       postgres_url):
    """The cluster layout: `evolve start` on one node, `evolve worker --follow` on the GPU nodes."""
    url = postgres_url
    project = tmp_path / "project"
    project.mkdir()
    log = (tmp_path / "worker.log").open("w")
    worker = evolve_process("worker", "--follow", "--poll", "1s", "--storage", url, "--project-dir", str(project),
                            cwd=project, env=FAST_HEARTBEAT, stdout=log)
    try:
        # the loop starts once the worker is listening: on a slow machine its imports alone outlast a short study
        wait_for(lambda: "following" in (tmp_path / "worker.log").read_text(), worker, 180, "the worker to listen")
        # bounded by iterations, not by wall time, so a slow machine runs the same studies (only slower)
        # trials take well under a second here: each study waits for the worker to take one before the loop
        # runs trials itself, or the loop would finish a study before the worker has loaded its models
        loop = start_loop(project, tiny_scifact, "--budget", "15m", "--max-iterations", "2",
                             "--trials-per-iteration", "8", "--storage", url, "--wait-for-workers", "5m")
        output, _ = loop.communicate(timeout=900)
        assert loop.returncode == 0, output
        summary = summary_of(project)
        studies = [s for s in optuna.get_all_study_summaries(url) if s.study_name.startswith(summary["run_id"])]
        assert len(studies) == summary["iterations"]
        trials = [t for s in studies for t in optuna.load_study(study_name=s.study_name, storage=url)
                  .get_trials(deepcopy=False, states=FINISHED)]
        workers = {t.user_attrs["worker"].split(":")[-1] for t in trials}
        # the worker ran trials of the loop's studies, and no trial came from anywhere else
        assert str(worker.pid) in workers, (tmp_path / "worker.log").read_text() + output
        assert workers <= {str(worker.pid), str(loop.pid)}, workers
        assert "a worker took a trial of" in output and "no worker took" not in output, output
        for study in studies:  # every trial recorded once; the loop closed each study it left
            numbers = [t.number for t in optuna.load_study(study_name=study.study_name, storage=url).trials]
            assert len(numbers) == len(set(numbers))
            assert study.user_attrs.get("evolve.closed")
    finally:
        worker.kill()
        worker.wait()
        log.close()
