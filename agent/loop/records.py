"""What the loop remembers of one iteration: one typed record, written by ``record_decision`` and read by the
proposers, the proposer choice, the status and summary, the MLflow trail and bench/loop/replay.py.

The graph's state keeps the records themselves (the checkpoint revives them, agent.loop.state); ``summary-*.json``
and a checkpoint written by an older evolve hold their JSON forms, which :func:`records` validates: a reader that may
get either goes through it, never by key."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator


def heldout_value(side: dict[str, object] | None, metric: str) -> float | None:
    """The held-back score in one side (candidate or champion) of a guard report: its first set that is not the
    failure set."""
    sets = [values for name, values in ((side or {}).get("sets") or {}).items() if name != "failure-set"]
    return sets[0].get(metric) if sets else None


class IterationRecord(BaseModel):
    """One iteration of the loop: what was proposed, by whom, what the study found and what the guard decided."""

    model_config = ConfigDict(extra="ignore")  # a record written by a newer evolve still reads

    iteration: int
    proposer: str = Field(description="who proposed the space: 'llm' or 'heuristic'")
    asked: str | None = Field(None, description="who was asked (an unusable LLM proposal is replaced by the "
                                                "heuristic's; the time counts against the LLM)")
    space_name: str | None = None
    rationale: str = ""
    notes: list[str] | None = None
    move: str | None = Field(None, description="the heuristic's move (narrow, models, rerank, chunking, widening)")
    base: str | None = Field(None, description="the key of the config the move was made around")
    covered: dict[str, list[str | None]] | None = Field(None, description="dense models and chunker kinds the space offered")
    study: str | None = None
    metric: str = "ndcg@10"
    best_tune_value: float | None = None
    best_config: str | None = None
    champion_tune_value: float | None = None
    trials_reused: int = 0
    champion_heldout: float | None = None
    candidate_heldout: dict[str, dict[str, object]] | None = Field(None, description="held-back scores per set")
    champion_heldout_sets: dict[str, dict[str, object]] | None = None
    answers: dict[str, object] | None = None
    finalists: list[dict[str, object]] | None = None
    answer_seconds: float = 0.0
    trained: list[str] = Field(default_factory=list)
    outcome: str = ""
    promoted_version: str | None = None
    looked: bool = False
    tuning: dict[str, object] | None = Field(None, description="the look gate's evidence (guardrails.tuning_details)")
    gain: float | None = Field(None, description="best tuning score gained over the run's best before it")
    seconds: float = 0.0

    @field_validator("rationale", "outcome", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return "" if value is None else value

    @property
    def who_was_asked(self) -> str:
        return self.asked or self.proposer

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    @property
    def not_looked(self) -> bool:
        return self.outcome.startswith("not looked")

    def held_back(self, metric: str | None = None) -> float | None:
        """The candidate's held-back ``metric`` (default: the loop's) on its first set that is not the failure set."""
        return heldout_value({"sets": self.candidate_heldout}, metric or self.metric)

    def as_state(self) -> dict[str, object]:
        """The JSON form the graph's state and the run summary keep."""
        return self.model_dump(mode="json")


def records(history: Iterable[dict[str, object] | IterationRecord]) -> list[IterationRecord]:
    """The state's history as records (each entry validated once, here)."""
    return [h if isinstance(h, IterationRecord) else IterationRecord.model_validate(h) for h in history]
