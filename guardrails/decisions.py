"""Promotion decisions: guard + register a candidate (the machine); approve, reject, roll back (humans only).

Every decision is a row of the decision log (:mod:`guardrails.ledger`), the one source of truth.
A candidate is named by the sha256 of its config and of the policy it was judged under, recorded in
the guard report, the registry tags and the log; `approve` installs only a config whose hash is the
evaluated one. A human decision is carried out in three steps: an intent row, then ``champion.yaml``
and the MLflow mirror, then a commit row. A crash or a lock between them leaves an intent without a
commit, which :func:`recover` (run by every command that reads the champion) completes.
"""

from __future__ import annotations

from typing import Any

from evalsets import EvalSet
from experiments import AnswerJudging
from guardrails.checks import GuardReport, check_candidate
from guardrails.evidence import Evidence, collect_evidence
from guardrails.ledger import (
    GUARD_ACTIONS,
    LOOK_SKIPPED,
    Row,
    champion_history,
    explicit_actor,
    looks_since_human_decision,
    register_row,
    version_states,
)
from guardrails.mirror import first_line
from guardrails.policy import Policy, load_policy, policy_sha256
from guardrails.project import DecisionError, Project, materialise, recover
from guardrails.registry import MODEL_NAME, trained_models_of
from pipelines import Components, PipelineConfig, TrainedModelError

MACHINE_ACTOR = "evolve (guard step)"


# --- the machine's decisions ---------------------------------------------------------------------------
def evaluate_against_champion(project: Project, candidate: PipelineConfig, heldout_sets: list[EvalSet],
                              policy: Policy, components: Components,
                              failure_set: EvalSet | None = None,
                              scored_by: list[PipelineConfig] | None = None,
                              answers: AnswerJudging | None = None, answers_skipped: str = "no LLM",
                              judge_agreement: dict[str, Any] | None = None) -> tuple[GuardReport, Evidence]:
    """Evidence for candidate and audited champion on the same held-back queries, checked against the policy.

    The look number (guard decisions since the last human decision, this one included) sets the
    significance level the policy's alpha spending grants this look. ``scored_by`` (cross-fitting): for
    each held-back fold, the config chosen without it, which is what is scored there.

    ``answers``: the LLM that answers and judges (None: answer rules are skipped, saying ``answers_skipped``);
    ``judge_agreement``: its latest calibration against human labels ({"kappa", "n", ...}), for the policy's
    ``answers.min_judge_kappa``.
    """
    champion, record = project.champion()
    look = looks_since_human_decision(project.log.rows()) + 1
    limit = policy.answers.queries if answers is not None else 0
    # the champion answers first, within half the time (its answers repeat at every look: mostly cached), then the
    # candidate until the deadline, on the same queries in the same order: a short allowance still yields pairs
    first, second = answers.halves() if answers is not None else (None, None)
    champ = collect_evidence(champion, heldout_sets, components, failure_set, answers=first, answer_queries=limit)
    cand = collect_evidence(candidate, heldout_sets, components, failure_set, scored_by=scored_by, answers=second,
                            answer_queries=limit)
    if answers is not None:
        answers.absorb(first, second)
    if answers is None or limit == 0:
        skipped = {"skipped": answers_skipped if answers is None else "policy answers.queries is 0"}
        cand.answers, champ.answers = dict(skipped), dict(skipped)
    else:
        spend = {"spend": answers.spend.line(), "seconds": round(answers.spend.seconds, 1),
                 "llm_calls": answers.spend.calls, "cached": answers.spend.cached,
                 "judged_queries": answers.spend.queries, "scored": dict(answers.spend.verdicts)}
        cand.answers.update(spend)
        if answers.unavailable:
            cand.answers["stopped"] = answers.unavailable
    report = check_candidate(cand, champ, policy, look=look, judge_agreement=judge_agreement)
    report.decision.update({"config_sha256": candidate.sha256(), "policy_sha256": policy_sha256(policy),
                            "champion_version": record.version or "default",
                            "champion_config_sha256": champion.sha256()})
    trained = trained_models_of(candidate, components.catalog)
    if trained:  # the weights the candidate was scored with, by sha256 (what registration stores with the version)
        report.decision["trained_models"] = trained
    if scored_by:
        report.decision.update({"crossfit_folds": len(scored_by),
                                "fold_winners_sha256": ",".join(c.sha256()[:12] for c in scored_by)})
    report.decision["per_query_outcome"] = per_query_outcome(cand, champ, policy.primary_metric)
    cand.champion = champ  # the version page compares the two query by query (guardrails.report_page)
    return report, cand


def per_query_outcome(candidate: Evidence, champion: Evidence, metric: str) -> dict[str, int]:
    """Held-back queries (the failure set aside) the candidate wins, loses and ties against the champion on the
    primary metric: what a reviewer reads beside the mean delta (a +0.01 from 3 wins and 297 ties is not one from
    150 wins and 147 losses)."""
    theirs = {s.name: s for s in champion.sets}
    outcome = {"wins": 0, "losses": 0, "ties": 0}
    for mine in candidate.sets:
        other = theirs.get(mine.name)
        if other is None or mine.is_failure_set:
            continue
        for query, scores in mine.per_query.items():
            if metric in scores and metric in other.per_query.get(query, {}):
                delta = scores[metric] - other.per_query[query][metric]
                outcome["wins" if delta > 1e-12 else "losses" if delta < -1e-12 else "ties"] += 1
    return outcome


def record_decision(project: Project, candidate: PipelineConfig, report: GuardReport, evidence: Evidence,
                    study: str | None = None, tuning: dict[str, Any] | None = None) -> str | None:
    """Register a passing candidate (alias `candidate`) or log the refusal; a row of the decision log either way.
    ``tuning``: the candidate's tuning evidence against the champion (guardrails.gate.tuning_details), which the
    look gate compares the next candidates with."""
    per_query = {s.name: [{"query_id": q, **m} for q, m in s.per_query.items()] for s in evidence.sets}
    config_hash, policy_hash = report.decision["config_sha256"], report.decision["policy_sha256"]
    registry = project.registry
    run_id, version = registry.record_decision(candidate, report, per_query, study,
                                               {"evolve.config_sha256": config_hash,
                                                "evolve.policy_sha256": policy_hash}, evidence=evidence,
                                               catalog=project.catalog)
    report_dict = report.to_dict()
    project.log.append("register" if version else "guard-reject", "done", actor=MACHINE_ACTOR, model=registry.name,
                       version=version, config_sha256=config_hash, policy_sha256=policy_hash,
                       reason="passed the policy" if version else f"failed: {', '.join(report.failed_rules)}",
                       details={"run_id": run_id, "study": study, "config": candidate.model_dump(mode="json"),
                                "behaviour_sha256": candidate.behaviour_sha256(), "tuning": tuning,
                                "report": report_dict, "look": report.decision.get("look")})
    return version


def record_not_looked(project: Project, candidate: PipelineConfig, policy: Policy, reason: str,
                      study: str | None = None, tuning: dict[str, Any] | None = None) -> Row:
    """Log a candidate the look gate kept from the guard (guardrails.gate): no held-back query read, no alpha
    spent; the row says why, so a reviewer sees every candidate the loop found, looked at or not."""
    return project.log.append(LOOK_SKIPPED, "done", actor=MACHINE_ACTOR, model=project.registry.name,
                              config_sha256=candidate.sha256(), policy_sha256=policy_sha256(policy),
                              reason=f"not looked: {reason}",
                              details={"study": study, "config": candidate.model_dump(mode="json"),
                                       "behaviour_sha256": candidate.behaviour_sha256(), "tuning": tuning})


def logged_decision(project: Project, study: str, config_sha256: str) -> Row | None:
    """The guard decision the log already holds for this config from this study, if any: a caller that can be
    interrupted between recording and remembering that it did (a loop killed and resumed) records it once."""
    return next((r for r in project.log.rows() if r.action in (*GUARD_ACTIONS, LOOK_SKIPPED)
                 and r.info.get("study") == study and r.config_sha256 == config_sha256), None)


def guard_and_register(project: Project, candidate: PipelineConfig, heldout_sets: list[EvalSet],
                       policy: Policy, components: Components, failure_set: EvalSet | None = None,
                       study: str | None = None, answers: AnswerJudging | None = None,
                       answers_skipped: str = "no LLM",
                       judge_agreement: dict[str, Any] | None = None) -> tuple[GuardReport, str | None]:
    """Compare candidate and champion on the held-back sets (and failures); register only if every rule passes.
    ``answers``, ``answers_skipped``, ``judge_agreement``: as :func:`evaluate_against_champion` takes them."""
    report, evidence = evaluate_against_champion(project, candidate, heldout_sets, policy, components, failure_set,
                                                 answers=answers, answers_skipped=answers_skipped,
                                                 judge_agreement=judge_agreement)
    return report, record_decision(project, candidate, report, evidence, study)


# --- carrying a decision out -----------------------------------------------------------------------------
def _human_decision(project: Project, action: str, version: str | None, previous: str | None, reason: str,
                    actor: str | None, config_sha256: str | None, details: dict, policy_hash: str | None = None
                    ) -> list[str]:
    """intent row -> champion.yaml + mirror -> commit row; returns mirror problems."""
    if not reason or not reason.strip():
        raise DecisionError("a reason is required (it is recorded in the decision log)")
    who = explicit_actor(actor)
    intent = project.log.append(action, "intent", actor=who, model=MODEL_NAME, version=version,
                                previous_version=previous, config_sha256=config_sha256, policy_sha256=policy_hash,
                                reason=reason, details=details)
    problems = materialise(project)
    project.log.append(action, "commit", decision_id=intent.decision_id, actor=who, model=MODEL_NAME,
                       version=version, previous_version=previous, config_sha256=config_sha256, reason=reason,
                       details={"mirror": problems})
    return problems


def _candidate(project: Project, version: str, verb: str) -> Row:
    rows = project.log.rows()
    registered = register_row(rows, version)
    if registered is None:
        raise DecisionError(f"version {version} is not in the decision log (only configs registered by evolve's "
                            f"guard step can be {verb}d; see `evolve review`)")
    state = version_states(rows)[version]
    if state != "candidate":
        raise DecisionError(f"version {version} is {state!r}, only candidates can be {verb}d")
    return registered


def ensure_trained_models(project: Project, config: PipelineConfig, version: str | None) -> list[str]:
    """The trained models ``config`` needs, in the project's model folder before it becomes (or is served as) the
    champion: those missing come back from ``version``'s MLflow artifacts, each checked against the full sha256
    the decision log recorded when the version was evaluated (its register row), and so is every one found here.
    Returns the ids restored; a model that cannot be had is a DecisionError naming it (nothing changed)."""
    expected = logged_trained_models(project, version)
    try:
        found = trained_models_of(config, project.catalog)
    except TrainedModelError:
        found = None
    try:
        if found is not None:
            for model_id, sha in found.items():
                if (expected or {}).get(model_id, sha) != sha:
                    raise TrainedModelError(f"trained model {model_id} in the project has sha256 {sha}, but the "
                                            f"decision log records {expected[model_id]} for version {version}: not "
                                            "the model that was evaluated; refusing it")
            return []
        return project.registry.restore_trained_models(config, version, project.catalog.trained(), expected=expected)
    except TrainedModelError as err:
        raise DecisionError(str(err)) from None


def logged_trained_models(project: Project, version: str | None) -> dict[str, str] | None:
    """Trained model id -> full sha256 the decision log recorded for ``version`` when it was evaluated (its
    register row's report); empty for a version the log does not hold, None for the default config (no version)."""
    if version is None:
        return None
    row = register_row(project.log.rows(), version)
    decision = ((row.info.get("report") or {}).get("decision") or {}) if row is not None else {}
    return {str(k): str(v) for k, v in (decision.get("trained_models") or {}).items()}


# --- the humans' decisions -------------------------------------------------------------------------------
def stale_champion(row: Row, champion: PipelineConfig, record: Any) -> str | None:
    """Why ``row``'s guard report does not compare the candidate with today's champion (its report names
    another champion config), in one phrase naming both; None when it does, or when the report names none."""
    decision = (row.info.get("report") or {}).get("decision") or {}
    judged = decision.get("champion_config_sha256")
    if not judged or judged == champion.sha256():
        return None
    then = decision.get("champion_version") or "default"
    then_name = ((row.info.get("report") or {}).get("champion") or {}).get("config", "?")
    now = f"version {record.version}" if record.version else "the default config"
    then = f"version {then}" if then != "default" else "the default config"
    return (f"judged against {then} ({then_name}, config {judged[:12]}), but the champion is now {now} "
            f"({champion.name}, config {champion.sha256()[:12]})")


def approve(project: Project, version: str, reason: str, actor: str | None = None,
            accept_policy_mismatch: bool = False,
            accept_stale_champion: bool = False) -> tuple[str | None, list[str]]:
    """Make a registered candidate the champion; returns (the previous champion version, mirror problems).

    Refuses a config whose sha256 is not the evaluated one, and (unless told) a candidate judged under a
    policy other than the project's current one, or against a champion other than today's (its guard report's
    ``champion_config_sha256``): that comparison never happened. Guarded again (the loop's next guard step,
    ``evolve promote``), a candidate gets a new register row and version, judged against today's champion.
    """
    recover(project)
    registered = _candidate(project, version, "approve")
    try:
        config = project.registry.config_of(version)
    except Exception as err:  # noqa: BLE001 - MLflow down, artifact gone: say which
        raise DecisionError(f"cannot read version {version}'s config from MLflow ({first_line(err)}); "
                            "nothing was changed") from None
    if config.sha256() != registered.config_sha256:
        raise DecisionError(f"version {version}'s config in MLflow has sha256 {config.sha256()}, but the evaluated "
                            f"config had {registered.config_sha256}: it was changed after the guard step; refusing")
    ensure_trained_models(project, config, version)
    current_policy = policy_sha256(load_policy(project.policy_path))
    matches = registered.policy_sha256 == current_policy
    if not matches and not accept_policy_mismatch:
        raise DecisionError(f"version {version} was judged under policy sha256 {registered.policy_sha256}, not the "
                            f"project's current policy {project.policy_path} ({current_policy}); guard it again under "
                            "that policy, or pass --accept-policy-mismatch (recorded in the decision log)")
    replaced, previous = project.champion()
    stale = stale_champion(registered, replaced, previous)
    if stale and not accept_stale_champion:
        raise DecisionError(f"version {version} was {stale}: that comparison never happened; guard it again with "
                            f"`evolve promote --config <its config.yaml>` (a new version, judged against today's "
                            "champion) or pass --accept-stale-champion (recorded in the decision log)")
    problems = _human_decision(
        project, "approve", version, previous.version, reason, actor, registered.config_sha256,
        {"config": config.model_dump(mode="json"), "register_row": registered.row_hash,
         "previous_config_sha256": replaced.sha256(), "policy_matches_project": matches,
         "project_policy_sha256": current_policy, "accepted_policy_mismatch": not matches,
         "judged_against_config_sha256": ((registered.info.get("report") or {}).get("decision") or {})
         .get("champion_config_sha256"), "accepted_stale_champion": bool(stale)},
        registered.policy_sha256)
    return previous.version, problems


def reject(project: Project, version: str, reason: str, actor: str | None = None) -> list[str]:
    recover(project)
    registered = _candidate(project, version, "reject")
    return _human_decision(project, "reject", version, None, reason, actor, registered.config_sha256,
                           {"register_row": registered.row_hash}, registered.policy_sha256)


def rollback(project: Project, reason: str, actor: str | None = None) -> tuple[str | None, list[str]]:
    """Move the champion back to what the current one replaced: a version, or the default config."""
    recover(project)
    history = champion_history(project.log.rows())
    if len(history) < 2:
        raise DecisionError("there is no approved champion to roll back")
    current, target = history[-1], history[-2]
    if target.config:  # the packaged default (no config recorded) names no trained model
        ensure_trained_models(project, PipelineConfig.model_validate(target.config), target.version)
    problems = _human_decision(project, "rollback", target.version, current.version, reason, actor,
                               target.config_sha256, {"config": target.config, "from_config_sha256":
                                                      current.config_sha256})
    return target.version, problems
