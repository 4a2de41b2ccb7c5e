"""A registered candidate on live traffic (`evolve serve --shadow/--interleave`): who may take it, and the log of it.

Only a version the guard step registered and no human has decided on yet can take traffic; its config comes from
its register row in the decision log (checked against the row's sha256, so MLflow is not needed to serve it).
When it starts and when it stops taking traffic are rows of the decision log (``traffic-start``/``traffic-stop``),
with the actor who started it: traffic is evidence a reviewer reads, never a decision, so nothing here moves the
champion.
"""

from __future__ import annotations

from typing import Any

from experiments import SignTest
from guardrails.checks import RuleResult
from guardrails.ledger import Row, explicit_actor, register_row, version_states
from guardrails.policy import Policy
from guardrails.project import DecisionError, Project
from guardrails.registry import MODEL_NAME
from pipelines import PipelineConfig

TRAFFIC_START = "traffic-start"
TRAFFIC_STOP = "traffic-stop"
TRAFFIC_MODES = ("shadow", "interleave")


def traffic_candidate(project: Project, version: str) -> tuple[PipelineConfig, Row]:
    """The config of registered candidate ``version`` and its register row; a DecisionError in one line otherwise."""
    rows = project.log.rows()
    registered = register_row(rows, version)
    if registered is None:
        raise DecisionError(f"version {version} is not a registered candidate of this project (only versions the "
                            "guard step registered can take traffic; see `evolve review`)")
    state = version_states(rows)[version]
    if state != "candidate":
        raise DecisionError(f"version {version} is {state!r}; only candidates awaiting review can take traffic")
    try:
        config = PipelineConfig.model_validate(registered.info["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise DecisionError(f"version {version}'s register row carries no readable config ({err})") from None
    if config.sha256() != registered.config_sha256:
        raise DecisionError(f"version {version}'s logged config has sha256 {config.sha256()}, not the evaluated "
                            f"{registered.config_sha256}: refusing it")
    return config, registered


def log_traffic(project: Project, action: str, mode: str, registered: Row, actor: str | None,
                details: dict[str, Any]) -> Row:
    """A ``traffic-start`` or ``traffic-stop`` row for ``registered``'s version (``actor``: --actor / EVOLVE_ACTOR;
    the OS user is recorded either way)."""
    if action not in (TRAFFIC_START, TRAFFIC_STOP) or mode not in TRAFFIC_MODES:
        raise ValueError(f"not a traffic row: {action} {mode}")
    verb = "started" if action == TRAFFIC_START else "stopped"
    return project.log.append(action, "done", actor=explicit_actor(actor), model=MODEL_NAME,
                              version=registered.version, config_sha256=registered.config_sha256,
                              policy_sha256=registered.policy_sha256,
                              reason=f"{mode} of version {registered.version} in evolve serve {verb}",
                              details={"mode": mode, **details})


ONLINE_RULE = "online: no significant loss on live traffic"


def online_rule(policy: Policy, test: SignTest | None) -> RuleResult:
    """The policy's online rule on a candidate's interleaved queries (``test``: their sign test; None: none yet).
    ``passed`` is False only for a candidate with enough queries that loses significantly: too few is pending, and
    a policy without ``online`` is off (both pass). Online evidence never passes a candidate the offline guard
    refused, and never promotes."""
    if policy.online is None:
        return RuleResult(ONLINE_RULE, test.line() if test else "no interleaved queries", "off", True,
                          "the policy has no online section: live traffic is shown, not judged")
    rule = policy.online
    limit = f"{rule.min_queries} queries, loss p < {rule.max_loss_p:g}"
    if test is None or test.queries < rule.min_queries:
        have = test.queries if test else 0
        return RuleResult(ONLINE_RULE, test.line() if test else "no interleaved queries", limit, True,
                          f"pending: {have} of {rule.min_queries} interleaved queries (`evolve serve --interleave`)")
    if test.loses_significantly(rule.max_loss_p):
        return RuleResult(ONLINE_RULE, test.line(), limit, False,
                          f"loses to the champion on live traffic (p={test.p_value:.3g} < {rule.max_loss_p:g})")
    return RuleResult(ONLINE_RULE, test.line(), limit, True, "no significant loss on live traffic")
