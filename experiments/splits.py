"""Which queries a study tunes on and which it holds back for the final report.

A set with a ``train`` split tunes on it and reports on the default (test) queries. A set without
one is split once, by a seeded shuffle of its query ids, so every trial and every worker sees the
same tune / held-back partition.
"""

from __future__ import annotations

import random
from pathlib import Path

from evalsets import EvalSet, available_splits, load_evalset


def tune_and_heldout(path: Path | str, holdout_fraction: float = 0.3, seed: int = 0,
                     use_train_split: bool = True) -> tuple[EvalSet, EvalSet]:
    if use_train_split and "train" in available_splits(path):
        return load_evalset(path, "train"), load_evalset(path, "default")
    full = load_evalset(path)
    ids = sorted(q.query_id for q in full.queries)
    random.Random(seed).shuffle(ids)
    held = max(1, round(len(ids) * holdout_fraction)) if len(ids) > 1 else 0
    return full.subset(ids[held:], split=f"tune@{seed}"), full.subset(ids[:held], split=f"heldout@{seed}")


def seeded_order(evalset: EvalSet, seed: int) -> list[str]:
    """A fixed shuffled order of query ids: pruning evaluates growing prefixes of it."""
    ids = [q.query_id for q in evalset.queries]
    random.Random(seed + 1).shuffle(ids)
    return ids
