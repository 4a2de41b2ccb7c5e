"""The decision log on real components: a DuckDB log file, a SQLite MLflow store, `evolve` processes.

What was checked is what gets approved (content hashes), the log and not the MLflow alias decides the
champion, decisions survive a kill, a held lock and an unreachable MLflow, and tampering is named.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import httpx
import pytest
from mlflow import MlflowClient

from guardrails import ChainBroken, DecisionError, LogLocked, approve, mirror_differences, reject, rollback
from guardrails.ledger import first_bad_row
from helpers import DEMO_SET, bm25_config, evolve, evolve_process, free_port

REPO = DEMO_SET.parent.parent.parent


@pytest.fixture
def project(decision_project):
    """The decision-log project of tests/conftest.py: two guarded candidates, versions 1 and 2."""
    return decision_project


def cli(*args, cwd, env=None, timeout=300):
    """`evolve ARGS` on a 250-column terminal (the decision tables stay on one line)."""
    return evolve(*args, cwd=cwd, env=env, timeout=timeout, columns=250)


def alias(proj, name):
    return proj.registry.alias_version(name)


def test_what_was_evaluated_is_what_gets_approved(project):
    rows = project.log.rows()
    register = [r for r in rows if r.action == "register"]
    assert [r.version for r in register] == ["1", "2"]
    assert register[0].config_sha256 == bm25_config("english", tokenizer="english").sha256()
    tags = project.registry.version("1").tags
    assert tags["evolve.config_sha256"] == register[0].config_sha256
    assert tags["evolve.policy_sha256"] == register[0].policy_sha256

    # someone overwrites the candidate's config artifact after the guard step (MLflow has no auth on the cluster)
    client = MlflowClient(project.registry.tracking_uri)
    swapped = project.root / "swap" / "pipeline"
    swapped.mkdir(parents=True)
    (swapped / "config.yaml").write_text(bm25_config("english", tokenizer="english", k1=4.5).to_yaml())
    client.log_artifacts(project.registry.version("1").run_id, str(swapped.parent))
    assert project.registry.config_of("1").lexical.k1 == 4.5
    with pytest.raises(DecisionError) as refused:
        approve(project, "1", "looks good", actor="alice")
    assert register[0].config_sha256 in str(refused.value)
    assert project.registry.config_of("1").sha256() in str(refused.value)
    assert not project.champion_file.exists() and alias(project, "champion") is None
    assert [r.action for r in project.log.rows()] == ["register", "register"]  # nothing was decided

    # the untouched candidate is approved; champion.yaml carries version, hash and decision
    previous, problems = approve(project, "2", "fewer misses", actor="alice")
    assert previous is None and problems == []
    text = project.champion_file.read_text()
    config, record = project.champion()
    assert record.version == "2" and config.lexical.k1 == 1.5
    assert f"version 2, config sha256 {config.sha256()}, decision {record.decision}" in text
    assert alias(project, "champion") == "2" and project.registry.version("2").tags["evolve.status"] == "champion"

    # a hand-edited champion.yaml is refused by everything that reads the champion, and repair restores it
    project.champion_file.write_text(text.replace("k1: 1.5", "k1: 2.5"))
    with pytest.raises(DecisionError, match="audited champion"):
        project.champion()
    result = cli("serve", "--corpus", str(DEMO_SET), "--project-dir", str(project.root), cwd=project.root)
    assert result.returncode == 2 and "refusing to use it" in result.stderr and "Traceback" not in result.stderr
    assert cli("audit", "--repair", "--project-dir", str(project.root), cwd=project.root).returncode == 0
    assert project.champion()[0].lexical.k1 == 1.5


def test_the_alias_is_a_mirror_the_log_decides(project):
    approve(project, "1", "first", actor="alice")
    client = MlflowClient(project.registry.tracking_uri)
    client.set_registered_model_alias(project.registry.name, "champion", "2")  # the alias pencil in the UI

    assert project.champion()[1].version == "1"
    assert any("alias 'champion' points at version 2, the decision log says version 1" in p
               for p in mirror_differences(project, project.log.rows()))
    status = cli("status", "--project-dir", str(project.root), cwd=project.root)
    assert "version 1" in status.stdout and "registry mirror differs" in status.stdout
    review = cli("review", "--project-dir", str(project.root), cwd=project.root)
    assert "alias 'champion' points at version 2" in review.stdout

    # approve + rollback follow the log, not the moved alias: the unapproved version 2 never becomes champion
    with pytest.raises(DecisionError, match="not in the decision log|only candidates"):
        approve(project, "7", "typo", actor="bob")
    approve(project, "2", "now for real", actor="bob", accept_stale_champion=True)  # judged against the default
    assert rollback(project, "regressed", actor="carol")[0] == "1"
    assert project.champion()[1].version == "1" and alias(project, "champion") == "1"
    client.set_registered_model_alias(project.registry.name, "champion", "2")
    assert rollback(project, "back to the start", actor="carol")[0] is None
    assert not project.champion_file.exists() and project.champion_config().name == "regex-start"
    assert alias(project, "champion") is None  # the decision also put the mirror back
    with pytest.raises(DecisionError, match="no approved champion"):
        rollback(project, "nothing left")

    repaired = cli("audit", "--repair", "--project-dir", str(project.root), cwd=project.root)
    assert repaired.returncode == 0 and "follow the decision log" in repaired.stdout
    assert mirror_differences(project, project.log.rows()) == []


def test_the_chain_names_the_first_edited_deleted_or_backdated_row(project):
    approve(project, "1", "first", actor="alice")
    reject(project, "2", "duplicate", actor="bob")
    assert first_bad_row(project.log.rows()) is None
    verified = cli("audit", "--verify", "--project-dir", str(project.root), cwd=project.root)
    assert verified.returncode == 0 and "chain holds" in verified.stdout
    pristine = project.log.path.read_bytes()

    for statement, expected in [
        ("UPDATE decisions SET reason = 'nobody approved this' WHERE seq = 3", "row 3 .*edited"),
        ("DELETE FROM decisions WHERE seq = 4", "row 4: missing"),
        ("UPDATE decisions SET ts = '2020-01-01T00:00:00.000000Z' WHERE seq = 5", "row 5 .*edited"),
    ]:
        project.log.path.write_bytes(pristine)
        with duckdb.connect(str(project.log.path)) as connection:
            connection.execute(statement)
        result = cli("audit", "--verify", "--project-dir", str(project.root), cwd=project.root)
        assert result.returncode == 1 and "broken at" in result.stderr
        assert __import__("re").search(expected, result.stderr), result.stderr
        with pytest.raises(ChainBroken):
            project.champion()
        refused = cli("rollback", "--yes", "--reason", "x", "--project-dir", str(project.root), cwd=project.root)
        assert refused.returncode == 2 and "broken at" in refused.stderr and "Traceback" not in refused.stderr


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import guardrails.decisions as decisions
    from agent.project import open_project

    real = decisions.materialise
    def killed(*args, **kwargs):
        if sys.argv[2] == "after-files":
            real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    decisions.materialise = killed
    project = open_project(Path(sys.argv[1]), None, Path(sys.argv[1]) / "start.yaml")
    decisions.approve(project, "1", "killed mid-decision", actor="alice")
""")


@pytest.mark.parametrize("when", ["after-intent", "after-files"])
def test_a_decision_killed_midway_is_completed_by_the_next_command(project, when):
    script = project.root / "kill.py"
    script.write_text(KILLER)
    killed = subprocess.run([sys.executable, str(script), str(project.root), when], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    phases = [(r.action, r.phase) for r in project.log.rows()]
    assert phases[-1] == ("approve", "intent")
    assert project.champion_file.exists() == (when == "after-files")

    result = cli("review", "--project-dir", str(project.root), cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert "completed the interrupted approve of version 1" in result.stdout
    assert [(r.action, r.phase) for r in project.log.rows()][-1] == ("approve", "commit")
    assert project.champion()[1].version == "1" and alias(project, "champion") == "1"


def test_a_held_lock_changes_nothing_and_a_lock_at_commit_is_completed_later(project, monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(project.log.path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cli("approve", "1", "--yes", "--reason", "ok", "--project-dir", str(project.root),
                     cwd=project.root, env={"EVOLVE_LOCK_WAIT_S": "0.5"})
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2 and "held by another process" in result.stderr and "Traceback" not in result.stderr
    assert not project.champion_file.exists() and alias(project, "champion") is None
    assert [r.phase for r in project.log.rows()] == ["done", "done"]

    # the lock is taken between the files and the commit row: the decision is completed by the next command
    from guardrails.ledger import DecisionLog
    real_append = DecisionLog.append

    def locked_at_commit(self, action, phase, **kwargs):
        if phase == "commit":
            raise LogLocked("the decision log is held by another process; nothing was changed, try again")
        return real_append(self, action, phase, **kwargs)

    monkeypatch.setattr(DecisionLog, "append", locked_at_commit)
    with pytest.raises(LogLocked):
        approve(project, "1", "ok", actor="alice")
    monkeypatch.setattr(DecisionLog, "append", real_append)
    result = cli("status", "--project-dir", str(project.root), cwd=project.root)
    assert "completed the interrupted approve of version 1" in result.stdout
    assert project.champion()[1].version == "1"


def test_an_unreachable_mlflow_never_half_decides_and_serve_runs_without_it(project):
    down = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    result = cli("approve", "1", "--yes", "--reason", "ok", "--project-dir", str(project.root), cwd=project.root,
                 env=down)
    assert result.returncode == 2 and "cannot read version 1's config from MLflow" in result.stderr
    assert not project.champion_file.exists() and [r.phase for r in project.log.rows()] == ["done", "done"]

    # MLflow goes down after the intent: the decision commits, the mirror lags and says so until repaired
    registry = project.registry

    def unreachable(*args, **kwargs):
        raise ConnectionError("tracking server down")

    registry.move_alias = unreachable
    _, problems = approve(project, "1", "ok", actor="alice")
    assert problems and "not updated" in problems[0]
    assert project.champion()[1].version == "1" and [r.phase for r in project.log.rows()][-1] == "commit"
    del registry.move_alias
    assert any("alias 'champion'" in p for p in mirror_differences(project, project.log.rows()))

    # serve starts from the audited champion while MLflow is unreachable, and /health says so
    port = free_port()
    server = evolve_process("serve", "--corpus", str(DEMO_SET), "--port", str(port), "--no-llm", "--project-dir",
                            str(project.root), cwd=project.root, env=down)
    try:
        deadline = time.time() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                if health["registry_mirror"] != "not checked yet":
                    break
            except httpx.HTTPError:
                assert server.poll() is None, server.stdout.read()
            assert time.time() < deadline
            time.sleep(0.3)
        assert health["config_version"] == "1" and health["config"] == "english"
        assert health["config_sha256"] == project.champion()[0].sha256()
        assert "unreachable" in health["registry_mirror"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0  # a clean exit on SIGTERM
