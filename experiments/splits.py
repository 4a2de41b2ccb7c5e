"""Which queries a study tunes on and which it holds back for the final report.

A set with a ``train`` split tunes on it and reports on the default (test) queries. A set without
one is split once, by a seeded shuffle of its query ids, so every trial and every worker sees the
same tune / held-back partition.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from evalsets import EvalSet, available_splits, load_evalset


HOLDOUT_FRACTION = 0.3
"""Share of the queries a set without a train split holds back (a study's default)."""
CROSSFIT_BELOW = 1000
"""`auto` decisions cross-fit sets with fewer queries than this (and no train split): a 30% hold-back of a
small set is too few queries to detect any realistic gain."""


def tune_and_heldout(path: Path | str, holdout_fraction: float = HOLDOUT_FRACTION, seed: int = 0,
                     use_train_split: bool = True, fold: int | None = None,
                     folds: int = 5) -> tuple[EvalSet, EvalSet]:
    """(tuning queries, held-back queries). With ``fold``: cross-fitting, where the seeded shuffle is cut into
    ``folds`` parts, ``fold`` is held back and the others tune, so each query is held back in exactly one fold."""
    if use_train_split and "train" in available_splits(path):
        return load_evalset(path, "train"), load_evalset(path, "default")
    full = load_evalset(path)
    if (Path(path) / "manifest.json").is_file():
        return _stable_split(full, holdout_fraction, seed, fold, folds)
    ids = sorted(q.query_id for q in full.queries)
    random.Random(seed).shuffle(ids)
    if fold is not None:
        if not 0 <= fold < folds:
            raise ValueError(f"fold {fold} is not one of 0..{folds - 1}")
        held_ids = set(ids[fold::folds])
        return (full.subset([i for i in ids if i not in held_ids], split=f"crossfit{folds}-tune{fold}@{seed}"),
                full.subset(held_ids, split=f"crossfit{folds}-fold{fold}@{seed}"))
    held = max(1, round(len(ids) * holdout_fraction)) if len(ids) > 1 else 0
    return full.subset(ids[held:], split=f"tune@{seed}"), full.subset(ids[:held], split=f"heldout@{seed}")


def _place(seed: int, query_id: str) -> float:
    """A query's fixed place in [0, 1): from its id alone, so it never moves when other queries come or go."""
    return int(hashlib.sha256(f"{seed}:{query_id}".encode()).hexdigest()[:13], 16) / 16 ** 13


def _stable_split(full: EvalSet, holdout_fraction: float, seed: int, fold: int | None,
                  folds: int) -> tuple[EvalSet, EvalSet]:
    """The split of a living set (`evolve ingest` keeps its corpus, `evolve evalset synthesize --since` adds
    questions): a shuffle would move held-back queries into tuning as the set grows, so each query's side is
    fixed by its id."""
    places = {q.query_id: _place(seed, q.query_id) for q in full.queries}
    if fold is not None:
        if not 0 <= fold < folds:
            raise ValueError(f"fold {fold} is not one of 0..{folds - 1}")
        held_ids = {i for i, place in places.items() if int(place * folds) == fold}
        return (full.subset([i for i in places if i not in held_ids], split=f"crossfit{folds}-tune{fold}@{seed}"),
                full.subset(held_ids, split=f"crossfit{folds}-fold{fold}@{seed}"))
    held_ids = {i for i, place in places.items() if place < holdout_fraction}
    if not held_ids and len(places) > 1:  # a tiny set: hold back at least the query placed first
        held_ids = {min(places, key=places.__getitem__)}
    return (full.subset([i for i in places if i not in held_ids], split=f"tune@{seed}"),
            full.subset(held_ids, split=f"heldout@{seed}"))


def decision_folds(path: Path | str, mode: str = "auto", folds: int = 5) -> int | None:
    """How a loop decides on this set: None for one fixed hold-back, else the number of cross-fitting folds.

    ``auto`` cross-fits a set without a train split and with fewer than :data:`CROSSFIT_BELOW` queries.
    """
    if mode == "fixed":
        return None
    has_train = "train" in available_splits(path)
    if mode == "crossfit":
        if has_train:
            raise ValueError(f"{path} has a train split: its test queries are held back already; use --decision fixed")
        return folds
    if mode != "auto":
        raise ValueError(f"unknown decision mode {mode!r}: auto, fixed or crossfit")
    return folds if not has_train and len(load_evalset(path).queries) < CROSSFIT_BELOW else None


@dataclass(frozen=True)
class DecisionSplit:
    """How a loop that decides on one set splits it, as the studies it runs split it."""

    tune: EvalSet
    """Queries that tune some study: what may be looked at while proposing (all of them when cross-fitting)."""
    heldout: list[EvalSet]
    """The held-back queries of each study: one set, or one fold per study when cross-fitting."""


def decision_split(path: Path | str, folds: int | None = None, holdout_fraction: float = HOLDOUT_FRACTION,
                   seed: int = 0) -> DecisionSplit:
    """The split of a decision on ``path``: one fixed hold-back (``folds`` None), else cross-fitting over
    ``folds`` studies, study ``f`` holding back fold ``f``; the same parts :func:`tune_and_heldout` gives each
    study with these settings."""
    if not folds:
        tune, heldout = tune_and_heldout(path, holdout_fraction, seed)
        return DecisionSplit(tune, [heldout])
    return DecisionSplit(load_evalset(path), [tune_and_heldout(path, holdout_fraction, seed, fold=fold, folds=folds)[1]
                                              for fold in range(folds)])


def seeded_order(evalset: EvalSet, seed: int) -> list[str]:
    """A fixed shuffled order of query ids: pruning evaluates growing prefixes of it."""
    ids = [q.query_id for q in evalset.queries]
    random.Random(seed + 1).shuffle(ids)
    return ids
