"""Which proposer the loop asks next: the LLM only where it measurably helps, by this run's own record.

The LLM costs time every proposal (25-30 s for the 1.5B model on a 2-core CPU, a second or two on vLLM) and
helps on some corpora, not on others (bench/results/loop-llm.md: ahead on KorQuAD, level on SciFact). So in
``auto`` mode the two take turns until each has ``CREDITED_LOOKS`` iterations that could improve on an earlier
study; then the one with the higher *gain rate* proposes: the rise of the run's best tuning score its
iterations brought, per hour of loop time they took (proposal, training and studies). A tie, all-zero gains
included, goes to the heuristic, which costs nothing to ask. Every ``REVISIT`` iterations the other one gets a
look, so a run whose situation changes (new data, a new model, a plateau) can change its mind.

This is a credit rule, not a hypothesis test: a wrong pick costs efficiency only, never safety, since every
candidate still passes the guard on held-back queries whoever proposed it. Gains are read from tuning scores
only, never from held-back queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

from agent.loop.records import IterationRecord, records

ProposerMode = Literal["auto", "llm", "heuristic"]

CREDITED_LOOKS = 2
"""Credited iterations each proposer gets before the record decides."""
REVISIT = 4
"""Every this many iterations after that, the proposer that is behind gets one look."""


@dataclass(frozen=True)
class Credit:
    """One proposer's record in this run."""

    looks: int
    """Iterations it was asked for that had an earlier study to improve on."""
    gain: float
    """Sum of the rises of the run's best tuning score over those iterations."""
    seconds: float

    @property
    def per_hour(self) -> float:
        return self.gain / self.seconds * 3600 if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"looks": self.looks, "gain": round(self.gain, 5), "seconds": round(self.seconds, 1),
                "per_hour": round(self.per_hour, 5)}

    def line(self, who: str) -> str:
        return f"{who} {self.per_hour:+.4f}/h over {self.looks} looks ({self.gain:+.4f} in {self.seconds / 60:.1f} min)"


def credit(history: Sequence[IterationRecord | dict[str, object]], who: str) -> Credit:
    """``who``'s record from the history entries (each asked of one proposer; an LLM proposal that was refused
    and replaced by the heuristic's counts against the LLM, which spent the time)."""
    mine = [h for h in records(history) if h.who_was_asked == who and h.gain is not None]
    return Credit(len(mine), sum(h.gain or 0.0 for h in mine), sum(h.seconds for h in mine))


def choose_proposer(history: Sequence[IterationRecord | dict[str, object]], iteration: int, llm_available: bool,
                    mode: ProposerMode = "auto") -> tuple[str, str]:
    """('llm' or 'heuristic', why) for the next proposal."""
    if not llm_available:
        return "heuristic", "no LLM"
    if mode != "auto":
        return mode, f"--proposer {mode}"
    llm, heuristic = credit(history, "llm"), credit(history, "heuristic")
    record = f"{llm.line('llm')}; {heuristic.line('heuristic')}"
    if min(llm.looks, heuristic.looks) < CREDITED_LOOKS:
        asked = [h.who_was_asked for h in records(history)]
        # fewer credited looks goes first; equal: the one asked less, the LLM at the very start
        turn = "llm" if (llm.looks, asked.count("llm")) <= (heuristic.looks, asked.count("heuristic")) \
            else "heuristic"
        return turn, f"taking turns until each has {CREDITED_LOOKS} credited looks: {record}"
    leader = "llm" if llm.per_hour > heuristic.per_hour else "heuristic"
    other = "heuristic" if leader == "llm" else "llm"
    if iteration % REVISIT == 0:
        return other, f"a look for the one behind (every {REVISIT} iterations): {record}"
    return leader, f"higher gain per hour: {record}"


class IterationCredit(TypedDict):
    """The fields of an iteration's record that its proposer's credit is computed from."""

    gain: float | None
    seconds: float


def iteration_credit(best_before: float | None, best_tune_value: float | None, seconds: float) -> IterationCredit:
    """What an iteration's history entry carries for the record: its gain (None when there was no earlier study
    to improve on) and the loop seconds it took."""
    gain = None
    if best_before is not None:
        gain = max(0.0, (best_tune_value if best_tune_value is not None else best_before) - best_before)
    return {"gain": gain, "seconds": round(max(0.0, seconds), 1)}
