"""What the loop's nodes share: the state (checkpointed after every node, so it is all a resumed run has)
and the context (handles and settings that are not state)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from pydantic import BaseModel

from agent.llm_session import judge_agreement
from agent.loop.proposer_choice import credit
from agent.loop.records import IterationRecord, records
from agent.loop.runtime import AgentPaths, BudgetClock
from agent.paths import ProjectPaths
from evalsets import EvalSet, language_of
from experiments import DecisionSplit, SearchSpace, decision_split, finished_trials, space_from_dict
from guardrails import Policy, Project
from pipelines import Components, PipelineConfig

if TYPE_CHECKING:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from agent.training import TrainingSources
    from pipelines.llm import LLMClient


class Tuning(TypedDict):
    """The candidate against the champion on the same tuning queries (what the look gate reads)."""

    behaviour_sha256: str
    differences: list[float] | None
    """Per query, pooled over the folds' studies; None when the champion's trial 0 did not complete."""
    champion_tune_value: float | None
    champion_behaviour_sha256: str


class Guard(TypedDict, total=False):
    """The guard step's report as JSON (guardrails.GuardReport.to_dict), or why it looked at nothing."""

    passed: bool
    failed_rules: list[str]
    rules: list[dict[str, object]]
    not_looked: str
    candidate: dict[str, object]
    champion: dict[str, object]
    decision: dict[str, object]


class Trained(TypedDict):
    """One model this run trained (agent.loop.train_move)."""

    id: str
    kind: str
    base: str
    seconds: float | None
    examples: int
    iteration: int


class Finalist(TypedDict):
    """One of a study's finalists with its judged answer means (nodes._judge_finalists)."""

    trial: int
    config: str
    tune_value: float
    answers: dict[str, float]
    answer_score: float | None
    generation: dict[str, object]


class RunSummary(TypedDict):
    """A run's ``summary-*.json`` (:meth:`AgentContext.write_summary`)."""

    run_id: str | None
    stop_reason: str
    iterations: int
    trials_run: int
    trials_reused: int
    looks: dict[str, int]
    proposals: dict[str, int]
    champion: str | None
    metric: str
    champion_heldout: float | None
    budget_seconds: float
    spent_seconds: float
    best_candidate: dict[str, object] | None
    proposer_credit: dict[str, dict[str, float]]
    history: list[dict[str, object]]


class AgentState(TypedDict, total=False):
    """Everything a node needs from the nodes before it. The checkpointer serialises it after every node
    (:func:`checkpoint_serializer`): configs, the space and the history are kept as their models."""

    run_id: str
    budget_seconds: float
    iteration: int
    max_iterations: int
    max_trials: int | None
    champion: PipelineConfig
    champion_heldout: float | None
    """The champion's held-back score (the policy's metric) as the last guard step measured it; None when it has
    not measured the current champion."""
    champion_heldout_sha256: str | None
    """sha256 of the config ``champion_heldout`` belongs to (a human may approve another champion meanwhile)."""
    corpus_version: str | None
    """The corpus version (`evolve ingest`) the champion was last observed on; a new one re-scores it."""
    observation_abandoned: str
    """Why observing the champion stopped before it finished (a stop request, the budget): the run ends."""
    model_costs: dict[str, float]
    """Seconds to embed the corpus with each model the proposers may offer (0 when cached): the cost table."""
    observation: str
    proposal: SearchSpace
    rationale: str
    proposer: str
    proposal_notes: list[str]
    study: str
    best: PipelineConfig | None
    fold_best: list[PipelineConfig] | None
    """Cross-fitting: the winner of each fold's study (tuned without that fold), scored on that fold."""
    best_overall: PipelineConfig | None
    """The best config any study of this run found (by tuning score), which the heuristic builds on."""
    best_overall_value: float | None
    best_tune_value: float | None
    guard: Guard
    """The guard report of this iteration's candidate."""
    evidence: dict[str, object] | None
    """The candidate's evidence (Evidence.to_dict) from the guard step until the decision is recorded, then None."""
    promoted_version: str | None
    history: list[IterationRecord]
    trials_run: int
    trials_reused: int
    """Trials of this run whose every query score came from the score cache (no retrieval ran)."""
    iteration_reused: int
    tuning: Tuning | None
    proposal_move: str | None
    """The heuristic's move this iteration (None: the LLM proposed)."""
    proposal_base: str | None
    """behaviour sha256 of the config the heuristic's move was made around."""
    answer_seconds: float
    """Seconds answer evaluation (finalists and guard steps) has taken in this run, bounded by the policy's
    ``answers.budget_share`` of the budget."""
    answer_allowance: float
    """Seconds run_studies left free for this iteration's guard step to judge answers."""
    finalists: list[Finalist] | None
    """This iteration's finalists with their judged answer means (None: no answer stage ran)."""
    proposals: dict[str, int]
    asked: str
    """Which proposer this iteration asked (agent.loop.proposer_choice); ``proposer`` is who answered."""
    best_before: float | None
    """The run's best tuning score before this iteration's study (its gain is measured from it)."""
    remaining_at_proposal: float
    proposal_train: list[str]
    """Model kinds the proposal asked to train before its study (the train move)."""
    trained: list[Trained]
    """Models this run trained."""
    trained_on: int
    """Training examples the last train move used (the next waits until the data has grown)."""
    stop_reason: str
    summary: RunSummary


STATE_MODELS: tuple[type[BaseModel], ...] = (PipelineConfig, SearchSpace, IterationRecord)
"""The models the state holds: the checkpoint revives these (and only these) as themselves."""


def checkpoint_serializer() -> JsonPlusSerializer:
    """LangGraph's serializer, allowed to revive :data:`STATE_MODELS` (anything else comes back as its data)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=[(model.__module__, model.__name__) for model in STATE_MODELS])


def json_ready(report: dict[str, object]) -> dict[str, object]:
    """A report guardrails gives as a dict, in plain JSON values (numpy numbers as numbers, anything else as text):
    what the checkpoint can hold and the decision log records."""
    return json.loads(json.dumps(report, default=str))


def typed_state(state: AgentState) -> AgentState:
    """The state with its configs, space and history as models: a checkpoint an older evolve wrote held their JSON
    forms, which are validated here, once, before a node sees them."""
    out = dict(state)
    for key in ("champion", "best", "best_overall"):
        if isinstance(out.get(key), dict):
            out[key] = PipelineConfig.model_validate(out[key])
    if out.get("fold_best"):
        out["fold_best"] = [PipelineConfig.model_validate(c) for c in out["fold_best"]]
    if isinstance(out.get("proposal"), dict):
        out["proposal"] = space_from_dict(out["proposal"], "the checkpoint's proposal")
    if "history" in out:
        out["history"] = records(out["history"])
    return AgentState(**out)


def study_prefix(run_id: str) -> str:
    """Every study of a run is named with this prefix (then the iteration, then the fold when cross-fitting)."""
    return f"{run_id}-it"


def best_candidate(history: Sequence[IterationRecord | dict[str, object]], metric: str) -> dict[str, object] | None:
    """The iteration whose best config scored highest on the held-back queries (promoted or not)."""
    scored = [(value, entry) for entry in records(history) if (value := entry.held_back(metric)) is not None]
    if not scored:
        return None
    value, entry = max(scored, key=lambda pair: pair[0])
    return {"iteration": entry.iteration, "config": entry.best_config, "heldout": value, "outcome": entry.outcome,
            "promoted_version": entry.promoted_version, "proposer": entry.proposer, "rationale": entry.rationale}


@dataclass
class AgentContext:
    """What the nodes need that is not state: handles, settings, the LLM (or None)."""

    project: Project
    paths: AgentPaths
    clock: BudgetClock
    evalset_path: Path
    policy: Policy
    components: Components
    llm: LLMClient | None
    trials_per_iteration: int = 20
    failure_set: EvalSet | None = None
    tracker: Callable[[AgentState, IterationRecord], None] | None = None
    llm_unavailable_reason: str = ""
    storage_url: str | None = None
    """Optuna storage for the studies (default: SQLite in the project); PostgreSQL lets `evolve worker --follow`
    processes on other nodes run trials of the same studies."""
    folds: int | None = None
    """Cross-fitting folds for the decision (None: one fixed hold-back; see experiments.splits.decision_folds)."""
    training: TrainingSources | None = None
    """Where training data comes from (agent.training.TrainingSources); None or empty: no train move."""
    proposer_mode: str = "auto"
    worker_wait: float = 0.0
    """Seconds each study waits for an `evolve worker --follow` process to start one of its trials before the loop
    runs trials itself (a coordinator on a CPU node leaves the work to the GPU nodes); 0: no wait."""
    """'auto' (the LLM only where this run's record says it helps), 'llm' or 'heuristic'."""
    say: Callable[[str], None] = print
    """Where progress lines go (the terminal of `evolve start`)."""
    answer_stage_skipped: str | None = None
    """Why this run skips the answer stage ('' : it runs; None: not timed yet), from one timed answer and verdict."""
    last_state: AgentState = field(default_factory=AgentState)
    """The state as the last node saw it (for a summary written by the budget watchdog)."""

    @property
    def metric(self) -> str:
        """The policy's primary metric: what studies tune, the guard tests and the loop reports."""
        return self.policy.primary_metric

    @property
    def storage(self) -> str:
        return ProjectPaths.of(self.project.root).optuna_url(self.storage_url)

    @cached_property
    def split(self) -> DecisionSplit:
        """What studies tune on and hold back, as experiments splits it for this decision mode."""
        return decision_split(self.evalset_path, self.folds)

    def corpus_version(self) -> str | None:
        """The version of the set's corpus when `evolve ingest` keeps it (None: a fixed, hand-written set)."""
        from evalsets.ingest import corpus_version

        return corpus_version(self.evalset_path)

    def reload_evalset(self) -> None:
        """Read the set again (its corpus changed): the next use of the split loads the new documents."""
        for name in ("split", "language"):
            self.__dict__.pop(name, None)

    @cached_property
    def language(self) -> str:
        return language_of([q.text for q in self.split.tune.queries[:200]])

    def remaining(self) -> float:
        return self.clock.remaining()

    def answer_allowance(self, state: AgentState) -> float:
        """Seconds answer evaluation may take in this iteration: what is left of the policy's share of the whole
        budget, and at most that share of the time left (0: no LLM, or answers are off)."""
        answers = self.policy.answers
        if self.llm is None or answers.queries == 0:
            return 0.0
        left = answers.budget_share * self.clock.budget_seconds - state.get("answer_seconds", 0.0)
        allowance = max(0.0, min(left, answers.budget_share * max(0.0, self.remaining() - self.reserve)))
        if allowance > 5 and self.answer_stage_skipped is None:
            self.answer_stage_skipped = self._answer_stage_check(allowance)
        return 0.0 if self.answer_stage_skipped else allowance

    def _answer_stage_check(self, allowance: float) -> str:
        """One answer and one verdict timed (experiments.answer_cost): '' when ``allowance`` pays for the policy's
        paired queries, else why not (said once; the run then gives the stage's time to trials)."""
        from experiments import measure_answer_cost
        from pipelines.llm import LLMError

        try:
            cost = measure_answer_cost(self.llm, self.split.heldout[0], self.project.champion_config().generation)
        except (LLMError, ValueError) as err:
            why = f"no answer could be timed ({str(err)[:200]})"
        else:
            why = cost.skip_reason(allowance, self.policy.answers.min_paired_queries) or ""
            if not why:
                self.say(f"  answer stage: one answer {cost.answer_seconds:.1f} s, one verdict "
                         f"{cost.verdict_seconds:.1f} s on {cost.model}: about {cost.paired_within(allowance)} "
                         f"paired queries fit in the {allowance:.0f} s allowed")
        if why:
            self.say(f"  answer stage skipped for this run: {why}")
        return why

    def answers_skipped(self, state: AgentState) -> str:
        """Why this iteration judges no answers (said in the output and the guard report)."""
        answers = self.policy.answers
        if self.llm is None:
            return f"no LLM ({self.llm_unavailable_reason or 'not configured'})"
        if answers.queries == 0:
            return "turned off by the policy (answers.queries: 0)"
        if self.answer_stage_skipped:
            return f"skipped for this run: {self.answer_stage_skipped}"
        return (f"the answer budget is spent ({state.get('answer_seconds', 0.0):.0f} s of "
                f"{answers.budget_share * self.clock.budget_seconds:.0f} s, {answers.budget_share:.0%} of the budget)")

    def judge_agreement(self, judge_model: str) -> dict[str, object] | None:
        """The judge's latest calibration against human labels (`evolve judge calibrate`), or None."""
        return judge_agreement(self.project.root, judge_model)

    @property
    def reserve(self) -> float:
        """Seconds kept after a study for the guard step and the decision."""
        return min(120.0, max(20.0, 0.1 * self.clock.budget_seconds))

    def trials_finished(self, run_id: str) -> int:
        """Finished trials of every study of the run, from the storage (what a hard stop can still count)."""
        return finished_trials(self.storage, study_prefix(run_id))

    def write_summary(self, state: AgentState, reason: str) -> RunSummary:
        """The run's ``summary-*.json`` (also written by a hard stop, from the last state a node saw)."""
        history = records(state.get("history", []))
        summary: RunSummary = {"run_id": state.get("run_id"), "stop_reason": reason, "iterations": state.get("iteration", 0),
                   "trials_run": state.get("trials_run", 0), "trials_reused": state.get("trials_reused", 0),
                   "looks": self.looks(history), "proposals": state.get("proposals", {}),
                   "champion": champion.name if (champion := state.get("champion")) else None, "metric": self.metric,
                   "champion_heldout": state.get("champion_heldout"),
                   "budget_seconds": self.clock.budget_seconds, "spent_seconds": round(self.clock.spent(), 1),
                   "best_candidate": best_candidate(history, self.metric),
                   "proposer_credit": {who: credit(history, who).to_dict() for who in ("llm", "heuristic")},
                   "history": [h.as_state() for h in history]}
        path = self.paths.folder / f"summary-{state.get('run_id')}.json"
        path.write_text(json.dumps(summary, indent=2, default=str))
        return summary

    def looks(self, history: Sequence[IterationRecord | dict[str, object]]) -> dict[str, int]:
        """This run's looks spent and candidates not looked at, looks at a pipeline looked at before in the run
        (the gate makes that 0), and the project's looks since the last human decision (what sets alpha)."""
        from guardrails import looks_and_skips

        entries = records(history)
        looked = [h.tuning or {} for h in entries if h.looked]
        addresses = [t.get("behaviour_sha256") for t in looked if t.get("behaviour_sha256")]
        try:
            since, _ = looks_and_skips(self.project.log.rows())
        except Exception:  # noqa: BLE001 - a held log must not stop a summary
            since = -1
        return {"spent": len(looked), "skipped": sum(1 for h in entries if h.not_looked),
                "repeated": len(addresses) - len(set(addresses)), "since_human_decision": since}

    def stop_requested(self) -> bool:
        return self.paths.stop.exists()
