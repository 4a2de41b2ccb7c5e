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
from guardrails.decisions import evaluate_against_champion
from guardrails.evidence import collect_evidence
from helpers import free_port
from pipelines import Components, PipelineConfig, save_config

SCREENSHOT = Path(__file__).resolve().parents[2] / "bench" / "results" / "version-page.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


def chromium(url: str, tmp_path: Path, *mode: str) -> str:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                           f"--user-data-dir={profile}", "--window-size=1400,1000", "--virtual-time-budget=15000",
                           *mode, url], capture_output=True, text=True, timeout=120)
    return done.stdout


def project_and_candidate(tiny_scifact, tmp_path):
    """A project whose champion is the regex-tokenizer default, a stemmed candidate, a held-back set, a policy that
    passes it."""
    from experiments.splits import tune_and_heldout

    registry = PipelineRegistry(default_tracking_uri(tmp_path), artifact_root=tmp_path / "mlruns" / "artifacts")
    start = tmp_path / "start.yaml"
    save_config(PipelineConfig.model_validate({"name": "regex", "lexical": {"tokenizer": "regex"},
                                               "fusion": {"kind": "none"}}), start)
    project = Project(tmp_path, registry, DecisionLog(tmp_path / ".evolve" / "audit.duckdb"), start)
    candidate = PipelineConfig.model_validate({"name": "stemmed-bm25", "lexical": {"tokenizer": "english"},
                                               "fusion": {"kind": "none"}})
    policy = Policy(min_gain=-1, min_queries=3, max_regression={"default": 1.0}, significance={"p_value": 1.0})
    return project, candidate, tune_and_heldout(tiny_scifact, 0.5)[1], policy


@pytest.fixture
def registered_candidate(tiny_scifact, tmp_path):
    project, candidate, held, policy = project_and_candidate(tiny_scifact, tmp_path)
    report, version = guard_and_register(project, candidate, [held], policy, Components(tmp_path / "c.sqlite"))
    assert version == "1"
    return project, version


@pytest.fixture
def compared_candidate(tiny_scifact, tmp_path):
    """A candidate registered with the champion's evidence beside its own: what the version page compares."""
    project, candidate, held, policy = project_and_candidate(tiny_scifact, tmp_path)
    components = Components(tmp_path / "c.sqlite")
    report, evidence = evaluate_against_champion(project, candidate, [held], policy, components)
    if evidence.champion is None:  # evaluate_against_champion does not attach it (yet): measure the champion here
        evidence.champion = collect_evidence(project.champion()[0], [held], components)
    per_query = {s.name: [{"query_id": q, **m} for q, m in s.per_query.items()] for s in evidence.sets}
    _, version = project.registry.record_decision(candidate, report, per_query,
                                                  hashes={"evolve.config_sha256": report.decision["config_sha256"]},
                                                  evidence=evidence)
    assert version == "1"
    return project, version, report, evidence


@pytest.fixture
def mlflow_server(request, tmp_path):
    fixture = "compared_candidate" if "compared_candidate" in request.fixturenames else "registered_candidate"
    project = request.getfixturevalue(fixture)[0]
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


def test_version_page_shows_delta_p_value_and_config_diff(compared_candidate, mlflow_server, tmp_path):
    """The decision is on the version page itself, no click: the delta, the p-value, the diff of the configs."""
    project, version, report, evidence = compared_candidate
    registry = project.registry
    described = registry.version(version).description
    run = registry.client.get_run(registry.version(version).run_id)
    assert run.data.tags["mlflow.note.content"] == described
    cand = report.candidate["sets"][evidence.sets[0].name]["ndcg@10"]
    champ = report.champion["sets"][evidence.sets[0].name]["ndcg@10"]
    delta = f"{cand - champ:.4f}"
    p_value = next(r.measured for r in report.rules if r.rule.startswith("significance"))
    p_text = f"{p_value:.3g}" if 0 < abs(p_value) < 1e-3 else f"{p_value:.4f}"
    for needle in (delta, p_text, "-  tokenizer: regex", "+  tokenizer: english", "wins", "losses", "ties"):
        assert needle in described, needle
    # the run: champion metrics, deltas, the champion's config, the diff, the per-query rows and the histogram
    assert run.data.metrics["delta.{}.ndcg_at_10".format(evidence.sets[0].name)] == pytest.approx(cand - champ)
    assert "champion.latency_p95_ms" in run.data.metrics
    names = {a.path for a in registry.client.list_artifacts(run.info.run_id)}
    assert {"champion", "config_diff.txt", "per_query.json", "delta_histogram.png"} <= names
    champion_runs = registry.client.search_runs([registry.experiment_id], "tags.`evolve.champion_sha256` != ''")
    assert [r.info.run_name for r in champion_runs] == ["champion-regex"]

    page = f"{mlflow_server}/#/models/{registry.name}/versions/{version}"
    dom = chromium(page, tmp_path, "--dump-dom")
    text = " ".join(dom.split())
    assert delta in text, "the delta is not on the version page"
    assert p_text in text, "the p-value is not on the version page"
    assert "tokenizer: regex" in text and "tokenizer: english" in text, "the config diff is not on the version page"
    shot = tmp_path / "version-page.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1400,1500")
    assert shot.exists() and shot.stat().st_size > 10_000
    if os.environ.get("EVOLVE_UPDATE_SCREENSHOTS") == "1":  # the README's picture, refreshed on request only
        shutil.copyfile(shot, SCREENSHOT)
