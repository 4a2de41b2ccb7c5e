"""Guardrails: policy validation, statistics, rules, and the registry/approval flow on real MLflow + DuckDB."""

from statistics import NormalDist

import numpy as np
import pytest
import yaml

from experiments.splits import tune_and_heldout
from experiments.tracking import default_tracking_uri
from guardrails import (
    DecisionLog,
    DecisionError,
    PipelineRegistry,
    Policy,
    PolicyError,
    Project,
    approve,
    check_candidate,
    guard_and_register,
    load_policy,
    reject,
    rollback,
)
from guardrails.evidence import Evidence, SetScores
from guardrails.policy import policy_sha256
from guardrails.stats import alpha_for_look, paired_bootstrap_p, permutation_p
from pipelines import PipelineConfig, save_config

BM25 = {"fusion": {"kind": "none"}}


def test_shipped_policy_loads_and_bad_policies_are_refused(tmp_path):
    policy = load_policy()
    assert policy.primary_metric == "ndcg@10" and policy.significance.p_value == 0.05
    assert policy.significance.looks == "alpha_spending" and policy.significance.power == 0.8
    assert policy.significance.test == Policy().significance.test == "permutation"
    bad = tmp_path / "p.yaml"
    for text, message in [("min_gain: -2\n", "min_gain"), ("primary_metric: map\n", "unknown metric"),
                          ("significance: {test: t-test}\n", "significance.test"), ("typo: 1\n", "typo"),
                          ("significance: {looks: sequential}\n", "significance.looks"),
                          ("significance: {power: 1}\n", "significance.power")]:
        bad.write_text(text)
        with pytest.raises(PolicyError, match=message):
            load_policy(bad)


def test_paired_tests_separate_a_real_gain_from_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    better = np.clip(base + 0.05 + rng.normal(0, 0.02, 200), 0, 1)
    noise = np.clip(base + rng.normal(0, 0.05, 200), 0, 1)
    for test in (paired_bootstrap_p, permutation_p):
        assert test(better, base, 2000) < 0.01
        assert test(noise, base, 2000) > 0.05
        assert test(base, better, 2000) > 0.95


def evidence(name, sets, latency=10.0, models=None):
    config = PipelineConfig.model_validate({"name": name, "lexical": {}, **BM25})
    return Evidence(config, [SetScores(s, {f"{s}-{i}": {"ndcg@10": v} for i, v in enumerate(vals)})
                             for s, vals in sets.items()], latency, 1.0, models or {})


def test_improving_the_mean_but_regressing_one_set_is_refused():
    champion = evidence("champ", {"big": [0.5] * 100, "small": [0.8] * 30})
    candidate = evidence("cand", {"big": [0.6] * 100, "small": [0.7] * 30}, models={"all-MiniLM-L6-v2": "MIT"})
    policy = Policy(allowed_licences=["MIT"], max_regression={"default": 0.02})
    report = check_candidate(candidate, champion, policy)
    assert report.candidate["sets"]["big"]["ndcg@10"] > report.champion["sets"]["big"]["ndcg@10"]
    assert not report.passed and report.failed_rules == ["max_regression [small]"]
    rule = next(r for r in report.rules if r.rule == "max_regression [small]")
    assert rule.measured == pytest.approx(0.1) and "0.7000 vs champion 0.8000" in rule.why
    # same candidate, policy that tolerates the drop on that set: passes
    lenient = Policy(allowed_licences=["MIT"], max_regression={"default": 0.02, "per_set": {"small": 0.15}})
    assert check_candidate(candidate, champion, lenient).passed


def test_latency_licence_and_query_count_rules():
    champion = evidence("champ", {"a": [0.5] * 10})
    candidate = evidence("cand", {"a": [0.9] * 10}, latency=900.0, models={"local-model": "unknown"})
    report = check_candidate(candidate, champion, Policy(max_latency_p95_ms=100, min_queries=20))
    assert set(report.failed_rules) == {"min_queries", "latency_p95_ms", "licence [local-model]"}
    assert "## " not in report.to_markdown() and "| latency_p95_ms | 900.0000 | 100.0000 | FAIL |" in report.to_markdown()


def test_alpha_spending_sums_to_at_most_alpha_and_decreases():
    alphas = np.array([alpha_for_look(0.05, k) for k in range(1, 100_001)])
    assert alphas.sum() <= 0.05 and np.all(np.diff(alphas) < 0)
    assert alphas[0] == pytest.approx(0.05 * 6 / np.pi ** 2)
    assert {alpha_for_look(0.05, k, "per_look") for k in (1, 7, 500)} == {0.05}  # the old rule, for comparison
    with pytest.raises(ValueError, match="counted from 1"):
        alpha_for_look(0.05, 0)


def _gain_pair(n, gain=0.02, sd=0.05, seed=1):
    rng = np.random.default_rng(seed)
    champ = rng.uniform(0, 1, n)
    return evidence("cand", {"a": list(champ + gain + rng.normal(0, sd, n))}), evidence("champ", {"a": list(champ)})


def test_a_clear_gain_passes_the_first_look_but_not_the_fiftieth():
    candidate, champion = _gain_pair(80)
    significance = "significance (permutation)"
    first = check_candidate(candidate, champion, Policy())
    assert first.passed and first.decision["look"] == 1
    assert first.decision["alpha_of_look"] == pytest.approx(alpha_for_look(0.05, 1))
    late = check_candidate(candidate, champion, Policy(), look=50)
    assert late.failed_rules == [significance]
    rule = next(r for r in late.rules if r.rule == significance)
    assert rule.limit == pytest.approx(alpha_for_look(0.05, 50))
    assert rule.limit < rule.measured < first.decision["alpha_of_look"]
    assert "alpha 1.22e-05 of look 50" in rule.why and "all looks since the last human decision" in rule.why
    assert "look: 50" in late.to_markdown() and late.to_dict()["decision"]["alpha_of_look"] == rule.limit
    # the old rule tests every look at 0.05 and says it controls one look only
    old = check_candidate(candidate, champion, Policy(significance={"looks": "per_look"}), look=50)
    assert old.passed and "controls this look alone" in next(r.why for r in old.rules if r.rule == significance)


def test_minimum_detectable_effect_shrinks_with_more_queries_and_is_reported():
    def mde(report):
        return next(r for r in report.rules if r.rule == "minimum detectable effect")

    small, large = (check_candidate(*_gain_pair(n), Policy()) for n in (100, 400))
    assert mde(large).measured == pytest.approx(mde(small).measured / 2, rel=0.15)
    assert mde(small).passed
    assert mde(check_candidate(*_gain_pair(100), Policy(), look=10)).measured > mde(small).measured
    entry = next(r for r in small.to_dict()["rules"] if r["rule"] == "minimum detectable effect")
    assert entry["measured"] == mde(small).measured and "power 0.8" in entry["why"]
    assert f"| minimum detectable effect | {mde(small).measured:.4f} | info | pass |" in small.to_markdown()
    # all differences equal: sd 0 would claim any gain is detectable; the fallback says so and is conservative
    constant = check_candidate(evidence("c", {"a": [0.6] * 50}), evidence("h", {"a": [0.5] * 50}), Policy())
    assert mde(constant).measured > 0.1 and "conservative" in mde(constant).why


def test_policy_hash_follows_values_not_key_order():
    one = Policy.model_validate({"min_gain": 0.01, "significance": {"p_value": 0.05, "test": "permutation"}})
    same = Policy.model_validate({"significance": {"test": "permutation", "p_value": 0.05}, "min_gain": 0.01})
    assert policy_sha256(one) == policy_sha256(same) and len(policy_sha256(one)) == 64
    assert policy_sha256(one) != policy_sha256(Policy.model_validate({"min_gain": 0.01, "significance": {
        "p_value": 0.01, "test": "permutation"}}))
    assert policy_sha256(one) != policy_sha256(one.model_copy(update={"min_queries": 31}))


def test_alpha_spending_bounds_how_often_a_loop_promotes_noise():
    """400 loops of 50 guard decisions on a fixed held-back set; every candidate is noise (sign-flipped sparse
    per-query differences, like two equivalent BM25 configs). Old rule: p < 0.05 at every look."""
    rng = np.random.default_rng(0)
    n, loops, looks = 300, 400, 50
    pool = np.where(rng.uniform(size=3000) < 0.15, rng.normal(0, 0.2, 3000), 0.0)
    held = np.stack([rng.choice(pool, n, replace=False) for _ in range(loops)])
    z = NormalDist().inv_cdf
    promoted = {"per_look": np.zeros(loops, bool), "alpha_spending": np.zeros(loops, bool)}
    for look in range(1, looks + 1):
        diff = held * rng.choice([-1.0, 1.0], size=held.shape)
        stat = diff.sum(axis=1) / np.sqrt((diff ** 2).sum(axis=1))  # normal approximation of the sign-flip test
        for rule, hit in promoted.items():
            hit |= (diff.mean(axis=1) >= 0.005) & (stat > z(1 - alpha_for_look(0.05, look, rule)))
    assert promoted["alpha_spending"].mean() <= 0.05 + 0.03
    assert promoted["per_look"].mean() > 0.5


@pytest.fixture
def project(tmp_path):
    registry = PipelineRegistry(default_tracking_uri(tmp_path), artifact_root=tmp_path / "mlruns" / "artifacts")
    start = tmp_path / "start.yaml"
    save_config(PipelineConfig.model_validate({"name": "regex-bm25", "lexical": {"tokenizer": "regex", "k1": 0.3,
                                                                                 "b": 0.1}, **BM25}), start)
    return Project(tmp_path, registry, DecisionLog(tmp_path / ".evolve" / "audit.duckdb"), start)


def test_register_approve_rollback_with_a_full_audit_trail(project, tiny_scifact, tiny_korquad, warm_components):
    sets = [tune_and_heldout(tiny_scifact, 0.5)[1], tune_and_heldout(tiny_korquad, 0.5)[1]]
    components = warm_components()
    # latency is not this test's subject: a MiniLM query embedding on a loaded 2-core CI machine passed 250 ms once,
    # which added latency_p95_ms to the failed rules; test_latency_licence_and_query_count_rules covers that rule
    slow_ok = 60_000
    permissive = Policy(min_gain=-1, significance={"p_value": 1.0}, max_regression={"default": 1},
                        min_queries=5, max_latency_p95_ms=slow_ok)
    strict_korean = Policy(min_gain=-1, significance={"p_value": 1.0}, min_queries=5, allowed_licences=["Apache-2.0"],
                           max_latency_p95_ms=slow_ok,
                           max_regression={"default": 1, "per_set": {"korquad-tiny": 0.0}})

    english = PipelineConfig.model_validate({"name": "english-bm25", "lexical": {"tokenizer": "english"}, **BM25})
    report, version = guard_and_register(project, english, sets, permissive, components)
    assert report.passed and version == "1"
    assert project.registry.alias_version("candidate") == "1"
    assert project.registry.report_of("1")["passed"] is True

    # an English-only dense model loses on the Korean set: refused when the policy forbids Korean regressions
    hurts_korean = PipelineConfig.model_validate({"name": "minilm-dense", "dense": {"model": "all-MiniLM-L6-v2"},
                                                  **BM25})
    report, refused = guard_and_register(project, hurts_korean, sets, strict_korean, components)
    assert refused is None and report.failed_rules == ["max_regression [korquad-tiny]"]
    assert len(project.registry.versions()) == 1
    rejected_runs = project.registry.client.search_runs([project.registry.experiment_id],
                                                        "tags.`evolve.status` = 'rejected'")
    assert len(rejected_runs) == 1

    with pytest.raises(DecisionError, match="version 99 is not in the decision log"):
        approve(project, "99", "typo")
    previous, _ = approve(project, "1", "better on both sets", actor="alice", accept_policy_mismatch=True)
    assert previous is None
    assert project.registry.alias_version("champion") == "1"
    assert yaml.safe_load(project.champion_file.read_text())["name"] == "english-bm25"
    with pytest.raises(DecisionError, match="only candidates"):
        approve(project, "1", "again")

    kiwi = PipelineConfig.model_validate({"name": "kiwi-bm25", "lexical": {"tokenizer": "kiwi"}, **BM25})
    _, second = guard_and_register(project, kiwi, sets, permissive, components)
    approve(project, second, "Korean tokens", actor="bob", accept_policy_mismatch=True)
    assert project.registry.alias_version("champion") == second
    assert yaml.safe_load(project.champion_file.read_text())["name"] == "kiwi-bm25"
    assert rollback(project, "regressed in production", actor="carol")[0] == "1"
    assert project.registry.alias_version("champion") == "1"
    assert yaml.safe_load(project.champion_file.read_text())["name"] == "english-bm25"
    assert project.registry.version(second).tags["evolve.status"] == "rolled-back"

    _, third = guard_and_register(project, kiwi, sets, permissive, components)
    reject(project, third, "duplicate of a rolled-back config", actor="dave")
    assert project.registry.alias_version("candidate") is None

    rows = [r for r in project.log.rows() if r.phase == "intent"]
    assert [(r.actor, r.action, r.version, r.previous_version) for r in rows] == [
        ("alice", "approve", "1", None), ("bob", "approve", second, "1"), ("carol", "rollback", "1", second),
        ("dave", "reject", third, None)]
    assert all(r.reason for r in project.log.rows())
    # every guard decision is a look: four since the start (no human decision had been committed before the first)
    looks = [r.info["look"] for r in project.log.rows() if r.action in ("register", "guard-reject")]
    assert looks == [1, 2, 1, 1]

    # rolling back the first approval restores the default config (champion.yaml goes away)
    assert rollback(project, "back to the start", actor="erin")[0] is None
    assert not project.champion_file.exists() and project.champion_config().name == "regex-bm25"
    assert project.registry.alias_version("champion") is None
    with pytest.raises(DecisionError, match="no approved champion"):
        rollback(project, "nothing left")
