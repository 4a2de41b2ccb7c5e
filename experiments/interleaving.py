"""Team-draft interleaving (Radlinski, Kurup & Joachims, CIKM 2008) and the sign test that reads its outcome.

Two rankings are merged the way two captains pick a team: whichever side has contributed fewer documents
picks next (a coin decides a tie), taking its best document not already picked. Each shown document
remembers the side that picked it, so what the user then uses (opens, marks right, or the answer cites)
credits that side; the side with more credited documents wins the query. Over many queries, the share of
wins among the queries that are not ties is tested against 1/2 with an exact two-sided sign test.

Everything here is pure: rankings in, merged list and per-query preferences out; no store, no server.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

CHAMPION = "champion"
CANDIDATE = "candidate"
Side = Literal["champion", "candidate"]
Preference = Literal["win", "loss", "tie"]
"""The candidate's outcome on one query: it won (more credited documents), lost, or tied (incl. nothing used)."""


@dataclass(frozen=True)
class Pick:
    """One document of the merged list: its id and the side that contributed it."""

    doc_id: str
    side: Side


def team_draft(champion: Sequence[str], candidate: Sequence[str], k: int, rng: random.Random) -> list[Pick]:
    """The merged top ``k`` of two rankings of document ids (duplicates inside a ranking are skipped).

    At each turn the side with fewer picks so far picks (a coin from ``rng`` breaks a tie); it takes its
    highest-ranked document not yet in the merged list. A side with nothing new left passes to the other."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    rankings: dict[Side, Sequence[str]] = {CHAMPION: champion, CANDIDATE: candidate}
    cursor = {CHAMPION: 0, CANDIDATE: 0}
    picks = {CHAMPION: 0, CANDIDATE: 0}
    merged: list[Pick] = []
    taken: set[str] = set()

    def next_of(side: Side) -> str | None:
        ranking = rankings[side]
        while cursor[side] < len(ranking) and ranking[cursor[side]] in taken:
            cursor[side] += 1
        return ranking[cursor[side]] if cursor[side] < len(ranking) else None

    while len(merged) < k:
        if picks[CHAMPION] != picks[CANDIDATE]:
            side: Side = CHAMPION if picks[CHAMPION] < picks[CANDIDATE] else CANDIDATE
        else:
            side = CANDIDATE if rng.random() < 0.5 else CHAMPION
        doc = next_of(side)
        if doc is None:
            side = CANDIDATE if side == CHAMPION else CHAMPION
            doc = next_of(side)
            if doc is None:
                break
        merged.append(Pick(doc, side))
        taken.add(doc)
        picks[side] += 1
    return merged


def credit(merged: Iterable[Pick], used: Iterable[str]) -> dict[Side, int]:
    """How many of the used documents each side contributed (a used document that was not shown credits nobody)."""
    side_of = {pick.doc_id: pick.side for pick in merged}
    counts: dict[Side, int] = {CHAMPION: 0, CANDIDATE: 0}
    for doc_id in set(used):
        if doc_id in side_of:
            counts[side_of[doc_id]] += 1
    return counts


def preference(credited: dict[Side, int]) -> Preference:
    """The candidate's outcome on one query from its credit counts."""
    if credited[CANDIDATE] > credited[CHAMPION]:
        return "win"
    if credited[CANDIDATE] < credited[CHAMPION]:
        return "loss"
    return "tie"


@dataclass(frozen=True)
class SignTest:
    """Wins, losses and ties of the candidate over interleaved queries, and the exact two-sided sign test of
    wins against losses (ties carry no preference and are left out of ``n``)."""

    wins: int
    losses: int
    ties: int
    p_value: float

    @property
    def n(self) -> int:
        """Queries with a preference (wins + losses): what the test has."""
        return self.wins + self.losses

    @property
    def queries(self) -> int:
        return self.wins + self.losses + self.ties

    def loses_significantly(self, alpha: float) -> bool:
        return self.losses > self.wins and self.p_value < alpha

    def line(self) -> str:
        return (f"{self.wins} wins, {self.losses} losses, {self.ties} ties over {self.queries} interleaved queries "
                f"(sign test p={self.p_value:.3g}, n={self.n})")


def binomial_two_sided_p(successes: int, trials: int) -> float:
    """Exact two-sided p-value of ``successes`` in ``trials`` under Binomial(trials, 1/2) (1.0 without trials):
    twice the smaller tail, capped at 1 (the distribution is symmetric, so this is the usual definition)."""
    if trials == 0:
        return 1.0
    low = min(successes, trials - successes)
    tail = sum(math.comb(trials, i) for i in range(low + 1)) / 2 ** trials
    return min(1.0, 2 * tail)


def sign_test(preferences: Iterable[Preference]) -> SignTest:
    """Count the preferences and test wins against losses."""
    counts = {"win": 0, "loss": 0, "tie": 0}
    for outcome in preferences:
        counts[outcome] += 1
    return SignTest(counts["win"], counts["loss"], counts["tie"],
                    binomial_two_sided_p(counts["win"], counts["win"] + counts["loss"]))
