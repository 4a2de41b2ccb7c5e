"""The MLflow UI, as a reviewer sees it: a real `mlflow server` and Debian's headless Chromium."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from experiments.tracking import default_tracking_uri
from guardrails import DecisionLog, PipelineRegistry, Policy, Project, guard_and_register
from pipelines import Components, PipelineConfig, save_config
from postgres import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


def chromium(url: str, tmp_path: Path, *mode: str) -> str:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                           f"--user-data-dir={profile}", "--window-size=1400,1000", "--virtual-time-budget=15000",
                           *mode, url], capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.fixture
def registered_candidate(tiny_scifact, tmp_path):
    from experiments.splits import tune_and_heldout

    registry = PipelineRegistry(default_tracking_uri(tmp_path), artifact_root=tmp_path / "mlruns" / "artifacts")
    start = tmp_path / "start.yaml"
    save_config(PipelineConfig.model_validate({"name": "regex", "lexical": {"tokenizer": "regex"},
                                               "fusion": {"kind": "none"}}), start)
    project = Project(tmp_path, registry, DecisionLog(tmp_path / ".evolve" / "audit.duckdb"), start)
    candidate = PipelineConfig.model_validate({"name": "stemmed-bm25", "lexical": {"tokenizer": "english"},
                                               "fusion": {"kind": "none"}})
    held = tune_and_heldout(tiny_scifact, 0.5)[1]
    report, version = guard_and_register(project, candidate, [held], Policy(min_gain=-1, min_queries=3,
                                         max_regression={"default": 1.0},
                                         significance={"p_value": 1.0}), Components(tmp_path / "c.sqlite"))
    assert version == "1"
    return project, version


@pytest.fixture
def mlflow_server(registered_candidate, tmp_path):
    project, _ = registered_candidate
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1", "--backend-store-uri", project.registry.tracking_uri],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            assert server.poll() is None, "mlflow server exited"
            assert time.time() < deadline, "mlflow server did not come up"
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_reviewer_sees_version_alias_and_guardrail_report(registered_candidate, mlflow_server, tmp_path):
    project, version = registered_candidate
    name = project.registry.name
    page = f"{mlflow_server}/#/models/{name}/versions/{version}"
    dom = chromium(page, tmp_path, "--dump-dom")
    assert f"Version {version}" in dom
    assert "candidate" in dom
    shot = tmp_path / "model-version.png"
    chromium(page, tmp_path, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000

    run = project.registry.client.get_run(project.registry.version(version).run_id)
    artifacts_page = f"{mlflow_server}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}/artifacts"
    dom = chromium(artifacts_page, tmp_path, "--dump-dom")
    assert "guardrail_report.json" in dom and "guardrail_report.md" in dom
    chromium(artifacts_page, tmp_path, f"--screenshot={tmp_path / 'run-artifacts.png'}")
    assert (tmp_path / "run-artifacts.png").stat().st_size > 10_000
