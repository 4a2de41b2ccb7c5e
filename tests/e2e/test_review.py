"""The reviewer's week as processes at 80 columns: approvals bound to today's champion, `evolve review`'s overview
and details, `evolve audit`, the approve prompt, `evolve status` before any loop run (issue 34, points 1 and 3)."""

import re
import shutil

import pytest

from helpers import evolve

WIDTH = 80


@pytest.fixture
def project(decision_project):
    """The decision-log project of tests/conftest.py: two guarded candidates, versions 1 and 2."""
    return decision_project


def cli(*args, proj, input=None):
    """`evolve ...` in the project, on an 80-column terminal; the project's default.yaml is the fixture's
    starting champion (what the guard step judged the candidates against)."""
    if not (proj.root / "default.yaml").exists():
        shutil.copy(proj.root / "start.yaml", proj.root / "default.yaml")
    return evolve(*args, "--project-dir", str(proj.root), cwd=proj.root, timeout=300, input=input, columns=WIDTH)


def narrow(text):
    too_long = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_long, too_long
    return text


def test_an_approval_stands_only_on_a_comparison_with_todays_champion(project):
    start = project.champion()[0]
    first = cli("approve", "2", "--yes", "--reason", "fewer misses", "--actor", "alice", proj=project)
    assert first.returncode == 0, first.stderr
    v2 = project.champion()[0]

    # version 1 was judged against the starting config, not version 2: refused, one line naming both
    refused = cli("approve", "1", "--yes", "--reason", "older but nicer", proj=project)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    message = refused.stderr.strip()
    assert "\n" not in message, message
    assert f"the default config (regex-start, config {start.sha256()[:12]})" in message
    assert f"version 2 (english-k1, config {v2.sha256()[:12]})" in message
    assert "evolve promote" in message and "--accept-stale-champion" in message
    assert project.champion()[1].version == "2"
    assert [(r.action, r.version) for r in project.log.rows() if r.phase == "intent"] == [("approve", "2")]

    # review marks it, in the overview and in its details
    overview = cli("review", proj=project)
    assert overview.returncode == 0, overview.stderr
    (line,) = [x for x in overview.stdout.splitlines() if re.match(r"\s+1 english ", x)]
    assert "stale" in line
    details = cli("review", "1", proj=project)
    assert details.returncode == 0 and "judged against an earlier champion" in details.stdout

    # told, it goes through, and the log says it was told
    told = cli("approve", "1", "--yes", "--reason", "accepted", "--accept-stale-champion", proj=project)
    assert told.returncode == 0, told.stderr
    assert project.champion()[1].version == "1"
    intent = [r for r in project.log.rows() if r.phase == "intent"][-1]
    assert intent.version == "1" and intent.info["accepted_stale_champion"] is True
    assert intent.info["judged_against_config_sha256"] == start.sha256()
    first_intent = [r for r in project.log.rows() if r.phase == "intent"][0]
    assert first_intent.info["accepted_stale_champion"] is False


def test_review_audit_prompt_and_status_at_80_columns(project):
    rows = project.log.rows()
    deltas = {r.version: next(x["measured"] for x in r.info["report"]["rules"] if x["rule"].startswith("min_gain"))
              for r in rows if r.action == "register"}

    overview = cli("review", proj=project)
    assert overview.returncode == 0, overview.stderr
    lines = narrow(overview.stdout).splitlines()
    assert len(lines) <= 10, overview.stdout  # champion, looks, header, two candidates, two hints
    candidates = [x for x in lines if re.match(r"\s+[12] english", x)]
    assert [x.split()[0] for x in candidates] == sorted(deltas, key=lambda v: -deltas[v])  # strongest first
    for x in candidates:
        assert f"{deltas[x.split()[0]]:+.4f}" in x and "stale" not in x
    assert sum("candidate alias" in x for x in candidates) == 1  # the latest registered holds it
    assert "candidate alias" in next(x for x in candidates if x.split()[0] == "2")
    assert "guardrails" not in overview.stdout  # the details only on request

    details = cli("review", "1", proj=project)
    assert details.returncode == 0, details.stderr
    text = narrow(details.stdout)
    v1 = rows[0].config_sha256
    assert v1 not in text and text.count(v1[:12]) == 1  # each hash once, short
    assert len(re.findall(r"\b[0-9a-f]{64}\b", text)) == 0
    mde = next(x for x in text.splitlines() if "minimum detectable" in x and "│" in x)
    assert "info" in mde and "pass" not in mde
    assert "(z(1-alpha)" not in text

    audit = cli("audit", proj=project)
    assert audit.returncode == 0, audit.stderr
    text = narrow(audit.stdout)
    register = [x for x in text.splitlines() if " register " in x]
    assert len(register) == 2
    for x in register:
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d ", x) and re.search(r"[+-]0\.\d{4}", x)
    wide = cli("audit", "--wide", proj=project)
    assert wide.returncode == 0 and "os user" in wide.stdout

    # the prompt shows the evidence and the config diff before asking; declining changes nothing
    declined = cli("approve", "2", "--reason", "x", proj=project, input="n\n")
    assert declined.returncode == 1
    assert f"{deltas['2']:+.4f}" in declined.stdout and "wins/losses/ties" in declined.stdout
    assert "lexical.tokenizer: regex -> english" in declined.stdout and "lexical.k1: 0.3 -> 1.5" in declined.stdout
    assert not [r for r in project.log.rows() if r.phase == "intent"]

    status = cli("status", proj=project)
    assert status.returncode == 0, status.stderr
    assert "no evolve run in this project yet" in status.stdout
