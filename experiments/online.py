"""What live traffic says about a candidate: its shadow runs and interleaved requests, summarised (pure).

Rows come from the feedback store's ``traffic`` table joined with each request's ratings; the caller reads
them (``evolve feedback compare``, the guard report). Credit on an interleaved request, per side: the documents
the user used (``used_doc_ids`` of a rating), the document a bad rating marked as right (``correct_doc_id``),
and for /answer the documents of the chunks the answer cited. Offline evidence lives elsewhere; this module is
the online half only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from experiments.interleaving import CANDIDATE, CHAMPION, Pick, SignTest, credit, preference, sign_test

CREDIT_SOURCES = ("feedback", "citations")


@dataclass(frozen=True)
class Rating:
    rating: str
    correct_doc_id: str | None = None
    used_doc_ids: tuple[str, ...] = ()


@dataclass
class TrafficRecord:
    """One request a candidate took part in."""

    request_id: str
    mode: str
    k: int
    champion: list[str]
    candidate: list[str] | None
    shown: list[Pick] | None = None
    cited: list[str] | None = None
    status: str = "ok"
    ratings: list[Rating] = field(default_factory=list)

    def feedback_docs(self) -> set[str]:
        """Documents the ratings credit: used ones, and the right one a bad rating named."""
        used = {doc for r in self.ratings for doc in r.used_doc_ids}
        return used | {r.correct_doc_id for r in self.ratings if r.rating == "bad" and r.correct_doc_id}


@dataclass(frozen=True)
class ShadowSummary:
    """Shadowed requests: how alike the rankings are, and what the candidate does with what users said."""

    requests: int
    unavailable: int
    mean_overlap: float | None
    """mean |champion top-k ∩ candidate top-k| / k"""
    marked_right: int
    """bad ratings that named the right document"""
    champion_found: int
    candidate_found: int
    """of those, how often each ranking held the right document"""
    good_docs: int
    """documents of good ratings (used_doc_ids, else the champion's hits the rating was about)"""
    candidate_kept: int

    def lines(self) -> list[str]:
        overlap = "no shadowed requests" if self.mean_overlap is None else f"mean top-k overlap {self.mean_overlap:.2f}"
        said = [f"shadow: {self.requests} requests ({self.unavailable} with the candidate unavailable), {overlap}"]
        if self.marked_right:
            said.append(f"bad ratings with a marked right document: {self.marked_right}; the candidate retrieves it "
                        f"in {self.candidate_found} ({self.candidate_found / self.marked_right:.0%}), the champion "
                        f"served it in {self.champion_found}")
        else:
            said.append("bad ratings with a marked right document: none yet")
        if self.good_docs:
            said.append(f"documents of good ratings: {self.good_docs}; the candidate keeps {self.candidate_kept} "
                        f"({self.candidate_kept / self.good_docs:.0%}) in its top k")
        else:
            said.append("good ratings: none yet")
        return said


def shadow_summary(records: Iterable[TrafficRecord]) -> ShadowSummary:
    rows = [r for r in records if r.mode == "shadow"]
    ran = [r for r in rows if r.status == "ok" and r.candidate is not None]
    overlaps = [len(set(r.champion[:r.k]) & set((r.candidate or [])[:r.k])) / r.k for r in ran]
    marked = champion_found = candidate_found = good = kept = 0
    for r in ran:
        top = set(r.candidate[:r.k]) if r.candidate else set()
        for rating in r.ratings:
            if rating.rating == "bad" and rating.correct_doc_id:
                marked += 1
                champion_found += rating.correct_doc_id in r.champion
                candidate_found += rating.correct_doc_id in top
            elif rating.rating == "good":
                docs = set(rating.used_doc_ids) or set(r.champion)
                good += len(docs)
                kept += len(docs & top)
    return ShadowSummary(len(rows), len(rows) - len(ran), sum(overlaps) / len(overlaps) if overlaps else None,
                         marked, champion_found, candidate_found, good, kept)


@dataclass(frozen=True)
class InterleaveSummary:
    """Interleaved requests: the sign test over per-query preferences, and the credit each side got, by source."""

    requests: int
    unavailable: int
    test: SignTest
    credit: dict[str, dict[str, int]]
    """source (feedback, citations) -> side -> credited documents"""

    def lines(self) -> list[str]:
        by_source = "; ".join(f"{source}: champion {sides[CHAMPION]}, candidate {sides[CANDIDATE]}"
                              for source, sides in self.credit.items())
        head = (f"interleave: {self.requests} requests ({self.unavailable} served by the champion alone: candidate "
                f"unavailable)")
        return [head, self.test.line(), f"credited documents by source: {by_source}"]


def interleave_summary(records: Iterable[TrafficRecord]) -> InterleaveSummary:
    rows = [r for r in records if r.mode == "interleave"]
    merged = [r for r in rows if r.status == "ok" and r.shown]
    totals = {source: {CHAMPION: 0, CANDIDATE: 0} for source in CREDIT_SOURCES}
    outcomes = []
    for r in merged:
        shown = r.shown or []
        per_source = {"feedback": credit(shown, r.feedback_docs()), "citations": credit(shown, r.cited or [])}
        for source, sides in per_source.items():
            for side, count in sides.items():
                totals[source][side] += count
        outcomes.append(preference(credit(shown, r.feedback_docs() | set(r.cited or []))))
    return InterleaveSummary(len(rows), len(rows) - len(merged), sign_test(outcomes), totals)
