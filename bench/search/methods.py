"""Hyper-parameter search methods replayed against a precomputed grid table, to compare what each finds per compute.

    .venv/bin/python -m bench.search.methods        # self-check on a synthetic table (about 30 s on 2 cores)

Another script scores every config of a retrieval-pipeline grid once and writes a table (a JSON dict: "factors",
"resources", "configs", each config with its factors, the resources it needs, evaluate_s, tune and heldout).
Replaying a search against that table costs no model time, so many methods x budgets x seeds are cheap, and every
method is charged the same way:

- a resource (chunking, embedding a corpus with a model, a BM25 index) costs its seconds the first time a run
  uses it and nothing afterwards (caches, like evolve's embedding cache); evaluate_s (scoring the tuning
  queries) is paid for every new config;
- a run starts cold and stops when the next new evaluation would exceed the budget (that evaluation is not
  counted), or when every config was evaluated; re-evaluating a config costs 0 and is not a new point;
- a method selects on `tune` only; `heldout` is read only to report what the selection is worth.

Methods (`run(table, budget_s, seed) -> Trajectory`): random_search, tpe_search, greedy_stages (AutoRAG-like
stage-wise coordinate descent), cost_aware_search (the cost-aware rule, see its docstring). grid_best,
compute_to_within, summarize and plot turn runs into the benchmark's numbers and figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FACTORS = ("chunker", "dense", "lexical", "fusion", "reranker")
NONE = "none"
_EPS = 1e-9


# --------------------------------------------------------------------------------------------- the table


class Grid:
    """An index over a table: lookups by id and by factor tuple, so methods never scan the config list."""

    def __init__(self, table: Mapping[str, Any]) -> None:
        self.table = table
        self.resources: dict[str, float] = {k: float(v) for k, v in table.get("resources", {}).items()}
        self.configs: list[dict] = list(table["configs"])
        if not self.configs:
            raise ValueError("the table has no configs")
        self.by_id: dict[int, dict] = {}
        self.by_key: dict[tuple[str, ...], int] = {}
        for config in self.configs:
            cid = int(config["id"])
            if cid in self.by_id:
                raise ValueError(f"duplicate config id {cid}")
            for name in config.get("needs", []):
                if name not in self.resources:  # a grid run that found it cached could not time it
                    warnings.warn(f"config {cid} needs {name!r}, which the table does not price: counted as 0 s")
                    self.resources[name] = 0.0
            self.by_id[cid] = config
            self.by_key.setdefault(self.key(config["factors"]), cid)  # a duplicate tuple: the first one wins
        self.ids: list[int] = [int(c["id"]) for c in self.configs]
        # levels in the table's declared order, then any level only the configs use; only levels some config has
        used = {f: {c["factors"][f] for c in self.configs} for f in FACTORS}
        declared = table.get("factors", {})
        self.levels: dict[str, list[str]] = {}
        for f in FACTORS:
            order = [lv for lv in declared.get(f, []) if lv in used[f]]
            order += sorted(used[f] - set(order))
            self.levels[f] = order

    @staticmethod
    def key(factors: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(str(factors[f]) for f in FACTORS)

    def lookup(self, factors: Mapping[str, str]) -> int | None:
        return self.by_key.get(self.key(factors))

    def cold_cost(self, config: Mapping[str, Any]) -> float:
        """What scoring this one config costs from a cold cache: its resources, then its evaluation."""
        return sum(self.resources[r] for r in set(config.get("needs", []))) + float(config["evaluate_s"])

    def compute_s(self) -> float:
        """What the exhaustive grid pays: every resource some config needs, once, plus every evaluation."""
        needed = {r for c in self.configs for r in c.get("needs", [])}
        return sum(self.resources[r] for r in needed) + sum(float(c["evaluate_s"]) for c in self.configs)


Table = Mapping[str, Any] | Grid
"""A table dict as the grid script writes it, or its Grid (built once, shared by many runs)."""


def _grid(table: Table) -> Grid:
    return table if isinstance(table, Grid) else Grid(table)


def grid_best(table: Table) -> dict:
    """What exhaustive search gives (best tune; ties: first in the table) and the oracle best heldout (reference)."""
    grid = _grid(table)
    selected = max(grid.configs, key=lambda c: float(c["tune"]))  # max keeps the first of equal maxima
    oracle = max(grid.configs, key=lambda c: float(c["heldout"]))
    return {"selected_id": int(selected["id"]), "selected_factors": dict(selected["factors"]),
            "selected_tune": float(selected["tune"]), "selected_heldout": float(selected["heldout"]),
            "oracle_id": int(oracle["id"]), "oracle_heldout": float(oracle["heldout"]),
            "compute_s": grid.compute_s(), "configs": len(grid.configs)}


def least_compute_to_within(table: Table, share: float = 0.01) -> dict:
    """An oracle's floor, for reporting only: the cheapest single config (from a cold cache) whose heldout is within
    `share` of the grid pick's. No method that scores configs can get there for less."""
    grid = _grid(table)
    target = (1 - share) * grid_best(grid)["selected_heldout"]
    good = [c for c in grid.configs if float(c["heldout"]) >= target - _EPS]
    cheapest = min(good, key=grid.cold_cost)
    seconds = grid.cold_cost(cheapest)
    return {"seconds": seconds, "fraction": seconds / grid.compute_s(), "factors": dict(cheapest["factors"])}


def honest_floor(table: Table, share: float = 0.01) -> dict:
    """The floor for a method that selects on tune queries and scores whole groups (every config a set of dense
    embeddings allows): over every set of embedding resources, what scoring all configs needing no others costs and
    whether their best-tune config is within `share` of the grid pick's heldout. The cheapest such set (None: only
    the whole grid), with the best-tune heldout each cheaper set reaches. A lucky method that skips the group's
    best-tune config can do better; one that searches a group fully cannot."""
    grid = _grid(table)
    target = (1 - share) * grid_best(grid)["selected_heldout"]
    embeds_of = [(c, {r for r in c.get("needs", []) if r.startswith("embed|")}) for c in grid.configs]
    embeds = sorted(set().union(*(e for _, e in embeds_of)))
    options = []
    for size in range(len(embeds) + 1):
        for chosen in itertools.combinations(embeds, size):
            group = [c for c, needs in embeds_of if needs <= set(chosen)]
            if not group:
                continue
            needed = {r for c in group for r in c.get("needs", [])}
            seconds = sum(grid.resources[r] for r in needed) + sum(float(c["evaluate_s"]) for c in group)
            pick = max(group, key=lambda c: float(c["tune"]))
            options.append({"embeddings": list(chosen), "fraction": seconds / grid.compute_s(),
                            "heldout": float(pick["heldout"]), "within": float(pick["heldout"]) >= target - _EPS})
    options.sort(key=lambda o: o["fraction"])
    first = next((o for o in options if o["within"]), None)
    cheaper = [o for o in options if first is None or o["fraction"] < first["fraction"]]
    return {"target": target, "fraction": first["fraction"] if first else None,
            "embeddings": first["embeddings"] if first else None,
            "best_cheaper_heldout": max((o["heldout"] for o in cheaper), default=None)}


# --------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Point:
    """The state after one new evaluation."""

    compute: float
    """Seconds spent so far in this run (resources first paid + evaluations)."""
    config_id: int
    """The config just evaluated."""
    best_id: int
    """The config with the best tune so far (what the method would select now)."""
    best_tune: float
    best_heldout: float


@dataclass
class Trajectory:
    """One run of one method: a point per new evaluation, in order."""

    method: str
    budget_s: float
    seed: int
    points: list[Point] = field(default_factory=list)
    stop: str = ""
    """Why the run ended: "budget", "exhausted" (every config evaluated), "converged", "stalled"."""

    @property
    def spent(self) -> float:
        return self.points[-1].compute if self.points else 0.0

    @property
    def evaluated(self) -> list[int]:
        return [p.config_id for p in self.points]

    @property
    def best(self) -> Point | None:
        return self.points[-1] if self.points else None

    def rows(self) -> list[tuple[float, int, float]]:
        """(compute spent, best-so-far id, its heldout) after each evaluation."""
        return [(p.compute, p.best_id, p.best_heldout) for p in self.points]


class _Run:
    """The shared accounting: a cold cache, the budget rule, and the best-so-far bookkeeping."""

    def __init__(self, grid: Grid, method: str, budget_s: float, seed: int) -> None:
        self.grid = grid
        self.budget_s = float(budget_s)
        self.paid: set[str] = set()
        self.scores: dict[int, float] = {}
        self.trajectory = Trajectory(method, float(budget_s), seed)
        self.spent = 0.0
        self.best_id: int | None = None
        self.stopped = False

    def cost(self, cid: int) -> float:
        """What evaluating cid would cost now (0 if already evaluated)."""
        if cid in self.scores:
            return 0.0
        config = self.grid.by_id[cid]
        return sum(self.grid.resources[r] for r in set(config.get("needs", [])) if r not in self.paid) \
            + float(config["evaluate_s"])

    def affordable(self, cost: float) -> bool:
        return self.spent + cost <= self.budget_s + _EPS * max(1.0, self.budget_s)  # float sums, same order or not

    @property
    def done(self) -> bool:
        return self.stopped or len(self.scores) == len(self.grid.configs)

    def evaluate(self, cid: int) -> float | None:
        """The config's tune, paying what it costs; None (and the run stops) if that would exceed the budget."""
        if cid in self.scores:
            return self.scores[cid]
        if self.stopped:
            return None
        cost = self.cost(cid)
        if not self.affordable(cost):
            self.stop("budget")
            return None
        config = self.grid.by_id[cid]
        self.paid.update(config.get("needs", []))
        self.spent += cost
        tune = float(config["tune"])
        self.scores[cid] = tune
        if self.best_id is None or tune > self.scores[self.best_id]:
            self.best_id = cid
        best = self.grid.by_id[self.best_id]
        self.trajectory.points.append(Point(self.spent, cid, self.best_id, float(best["tune"]),
                                            float(best["heldout"])))
        if len(self.scores) == len(self.grid.configs):
            self.stop("exhausted")
        return tune

    def stop(self, reason: str) -> None:
        if not self.stopped:
            self.stopped = True
            self.trajectory.stop = reason

    def finish(self, reason: str) -> Trajectory:
        self.stop(reason)
        return self.trajectory


def truncate(trajectory: Trajectory, budget_s: float) -> Trajectory:
    """The same run under a smaller budget, for methods whose choices do not depend on the budget.

    Such a run is a prefix of the longer one: it stops at the first evaluation that would cross the budget.
    """
    limit = budget_s + _EPS * max(1.0, budget_s)
    points = []
    for p in trajectory.points:
        if p.compute > limit:
            break
        points.append(p)
    stop = trajectory.stop if len(points) == len(trajectory.points) else "budget"
    return Trajectory(trajectory.method, float(budget_s), trajectory.seed, points, stop)


# --------------------------------------------------------------------------------------------- methods


def random_search(table: Table, budget_s: float, seed: int) -> Trajectory:
    """Uniformly random configs without replacement: the baseline every other method must beat."""
    grid = _grid(table)
    run = _Run(grid, "random", budget_s, seed)
    order = list(grid.ids)
    random.Random(seed).shuffle(order)
    for cid in order:
        if run.evaluate(cid) is None:
            break
    return run.finish("exhausted")


random_search.budget_independent = True  # type: ignore[attr-defined]


def tpe_search(table: Table, budget_s: float, seed: int, *, n_startup_trials: int = 10,
               max_repeats: int = 50) -> Trajectory:
    """Optuna TPE over the five factors as categoricals, as evolve's studies sample (multivariate, grouped).

    Every trial suggests all five factors (a fixed search space, so TPE models them jointly). A suggestion with
    neither retriever is told PRUNED at zero cost (TPE ranks pruned trials below completed ones, so it learns to
    avoid them); with one retriever, fusion is mapped to "none" before the lookup; a tuple still absent from the
    grid is pruned too. A repeat of an evaluated config is told its known tune at zero cost. The run also ends
    after max_repeats suggestions in a row that brought nothing new (repeats or pruned), since TPE has converged.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = _grid(table)
    run = _Run(grid, "tpe", budget_s, seed)
    choices = _tpe_choices(grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group=True is experimental
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True,
                                             group=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    streak = 0
    cap = 20 * len(grid.configs) + 1000  # a guard against a sampler that never converges
    for _ in range(cap):
        if run.done:
            break
        trial = study.ask()
        factors = {f: trial.suggest_categorical(f, choices[f]) for f in FACTORS}
        if factors["dense"] == NONE and factors["lexical"] == NONE:
            cid = None
        else:
            if factors["dense"] == NONE or factors["lexical"] == NONE:
                factors["fusion"] = NONE
            cid = grid.lookup(factors)
        if cid is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            streak += 1
        elif cid in run.scores:
            study.tell(trial, run.scores[cid])
            streak += 1
        else:
            tune = run.evaluate(cid)
            if tune is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            study.tell(trial, tune)
            streak = 0
        if streak >= max_repeats:
            return run.finish("stalled")
    return run.finish("stalled")


tpe_search.budget_independent = True  # type: ignore[attr-defined]


def _tpe_choices(grid: Grid) -> dict[str, list[str]]:
    """The grid's levels per factor; fusion without "none" when the grid has hybrids (none is implied there)."""
    choices = {f: list(grid.levels[f]) for f in FACTORS}
    hybrid = [lv for lv in choices["fusion"] if lv != NONE]
    if hybrid:
        choices["fusion"] = hybrid
    return choices


def greedy_stages(table: Table, budget_s: float, seed: int, *,
                  default: Mapping[str, str] | None = None) -> Trajectory:
    """Stage-wise search as AutoRAG optimizes, then repeated as coordinate descent until nothing changes.

    From a default config (the table's first config equal to `default`, else the cheapest config, as
    `start_config`), each stage in order - chunker, retriever (every dense x lexical pair the grid
    has for the chosen chunker), fusion (hybrids only), reranker - evaluates every option that exists in the grid
    with the other choices fixed and keeps the best tune (the current choice wins ties). A hybrid retriever option
    takes the current fusion, else the last fusion chosen, else the most common one. Passes repeat until one
    changes nothing. The seed only orders the options within a stage (which matters when the budget cuts a stage).
    """
    grid = _grid(table)
    rng = random.Random(seed)
    run = _Run(grid, "greedy", budget_s, seed)
    current = _default_config(grid, default)
    fusion_counts = Counter(c["factors"]["fusion"] for c in grid.configs if c["factors"]["fusion"] != NONE)
    preferred = grid.by_id[current]["factors"]["fusion"]
    if preferred == NONE:
        preferred = max(grid.levels["fusion"], key=lambda lv: fusion_counts.get(lv, 0)) if fusion_counts else NONE
    if run.evaluate(current) is None:
        return run.finish("budget")
    while not run.done:
        changed = False
        for stage in ("chunker", "retriever", "fusion", "reranker"):
            options = _stage_options(grid, grid.by_id[current]["factors"], stage, preferred)
            rng.shuffle(options)
            best, best_tune = current, run.scores[current]
            for cid in options:
                tune = run.evaluate(cid)
                if tune is None:
                    return run.trajectory
                if tune > best_tune:
                    best, best_tune = cid, tune
            if best != current:
                current, changed = best, True
                if grid.by_id[current]["factors"]["fusion"] != NONE:
                    preferred = grid.by_id[current]["factors"]["fusion"]
            if run.done:
                break
        if not changed:
            return run.finish("converged")
    return run.finish("exhausted")


greedy_stages.budget_independent = True  # type: ignore[attr-defined]


def _default_config(grid: Grid, default: Mapping[str, str] | None) -> int:
    """The table's first config equal to default, else the cheapest config on a cold cache (BM25 alone on a
    retrieval grid; ties: table order): where evolve's loop starts when nothing is cached, so every method that
    needs a starting point gets the same one."""
    if default is not None:
        for config in grid.configs:
            if all(config["factors"].get(f) == default.get(f) for f in FACTORS):
                return int(config["id"])
    return start_config(grid)


def start_config(grid: Grid) -> int:
    """The config that costs least from a cold cache (its resources + its evaluation); ties: table order."""
    return int(min(grid.configs, key=grid.cold_cost)["id"])


def _stage_options(grid: Grid, factors: Mapping[str, str], stage: str, preferred: str) -> list[int]:
    """Grid configs that differ from `factors` only in this stage's factor(s)."""
    found: list[int] = []

    def add(candidate: dict[str, str]) -> None:
        cid = grid.lookup(candidate)
        if cid is not None and cid not in found:
            found.append(cid)

    if stage == "chunker":
        for lv in grid.levels["chunker"]:
            add({**factors, "chunker": lv})
    elif stage == "retriever":
        pairs = sorted({(c["factors"]["dense"], c["factors"]["lexical"]) for c in grid.configs
                        if c["factors"]["chunker"] == factors["chunker"]})
        for dense, lexical in pairs:
            candidate = {**factors, "dense": dense, "lexical": lexical}
            if NONE in (dense, lexical):
                add({**candidate, "fusion": NONE})
                continue
            for fusion in [factors["fusion"], preferred, *grid.levels["fusion"]]:
                if fusion != NONE and grid.lookup({**candidate, "fusion": fusion}) is not None:
                    add({**candidate, "fusion": fusion})
                    break
    elif stage == "fusion":
        if factors["fusion"] != NONE:
            for lv in grid.levels["fusion"]:
                if lv != NONE:
                    add({**factors, "fusion": lv})
    elif stage == "reranker":
        for lv in grid.levels["reranker"]:
            add({**factors, "reranker": lv})
    else:
        raise ValueError(stage)
    return found


def _is_heavy(resource: str) -> bool:
    """Embedding a corpus: the resource that dominates a retrieval grid's compute."""
    return resource.startswith("embed|")


def cost_aware_search(table: Table, budget_s: float, seed: int, *, bonus: float = 0.02,
                      margin: float = 0.002, ridge: float = 1.0, pair_bonus: float | None = None) -> Trajectory:
    """Evolve's cost-aware rule: learn from cheap configs, pay for an embedding only when it looks worth it.

    Surrogate: an additive model of tune, fitted by ridge regression (strength `ridge`, in observations) on the
    configs evaluated so far, with one effect per level of chunker, dense, lexical, fusion, reranker and of the
    (chunker, dense) pair - the pair is the embedding itself, so a model that helps on one chunking is not assumed
    to help on another. A config's optimistic estimate is mean tune + its levels' effects, where a level never
    seen yet gets the best seen effect of its factor + `bonus` (optimism in the face of the unknown; `pair_bonus`,
    default `bonus`, for an unseen (chunker, dense) pair: raise it to hedge against a model preferring another
    chunking than BM25 does, at the price of paying for more embeddings). Cost: the
    seconds of its resources not paid yet + evaluate_s. Each step, among the unevaluated configs within the
    remaining budget:

    1. the first step takes the cheapest config (lexical-only: no embedding);
    2. promising = estimate > best tune so far + `margin`; among promising configs take the largest
       (estimate - best) / cost - expected gain per second, so cheap configs (no unpaid embedding) that teach a
       level come first and an embedding is paid for only when no cheaper config promises as much per second;
    3. when nothing is promising: the best estimate among configs needing no unpaid embedding, and only when
       none remains, the best estimate among those that do (the search has converged; it spends what is left).

    Ties go by a seeded random order, so a run is deterministic given the seed. Runs stop when nothing left fits
    the remaining budget (a cheaper config may still fit after an expensive one does not).
    """
    grid = _grid(table)
    run = _Run(grid, "cost_aware", budget_s, seed)
    rng = np.random.default_rng(seed)
    n = len(grid.configs)
    ids = np.array(grid.ids)
    tie = rng.permutation(n)  # lower = earlier among equals
    # design: factor -> level index per config; the pair factor is (chunker, dense)
    columns: dict[str, list[str]] = {f: [c["factors"][f] for c in grid.configs] for f in FACTORS}
    columns["chunker x dense"] = [f"{c['factors']['chunker']}|{c['factors']['dense']}" for c in grid.configs]
    codes: list[np.ndarray] = []
    offsets = [0]
    for values in columns.values():
        levels = sorted(set(values))
        index = {lv: i for i, lv in enumerate(levels)}
        codes.append(np.array([index[v] for v in values]) + offsets[-1])
        offsets.append(offsets[-1] + len(levels))
    width = offsets[-1]
    onehot = np.zeros((n, width))
    for code in codes:
        onehot[np.arange(n), code] = 1.0
    evaluate_s = np.array([float(c["evaluate_s"]) for c in grid.configs])
    needs = [sorted(set(c.get("needs", []))) for c in grid.configs]
    tune = np.array([float(c["tune"]) for c in grid.configs])
    seen = np.zeros(n, dtype=bool)
    bonuses = [bonus] * len(FACTORS) + [bonus if pair_bonus is None else pair_bonus]

    while not run.done:
        remaining = run.budget_s - run.spent
        cost = evaluate_s + np.array([sum(grid.resources[r] for r in rs if r not in run.paid) for rs in needs])
        heavy = np.array([any(_is_heavy(r) and r not in run.paid for r in rs) for rs in needs])
        open_ = ~seen & (cost <= remaining + _EPS * max(1.0, run.budget_s))
        if not open_.any():
            run.stop("budget")
            break
        if not seen.any():
            pick = _argbest(open_, -cost, tie)
        else:
            estimate = _optimistic(onehot, codes, offsets, tune[seen], seen, ridge, bonuses)
            best = float(tune[seen].max())
            gain = estimate - best
            promising = open_ & (gain > margin)
            if promising.any():
                pick = _argbest(promising, gain / np.maximum(cost, _EPS), tie)
            elif (open_ & ~heavy).any():
                pick = _argbest(open_ & ~heavy, estimate, tie)
            else:
                pick = _argbest(open_, estimate, tie)
        if run.evaluate(int(ids[pick])) is None:  # cannot happen (the pick fits); kept as a guard
            break
        seen[pick] = True
    return run.finish("budget")


def _argbest(mask: np.ndarray, value: np.ndarray, tie: np.ndarray) -> int:
    """Index of the largest value under mask; ties by the seeded order."""
    candidates = np.flatnonzero(mask)
    order = np.lexsort((tie[candidates], -value[candidates]))
    return int(candidates[order[0]])


def _optimistic(onehot: np.ndarray, codes: list[np.ndarray], offsets: list[int], y: np.ndarray,
                seen: np.ndarray, ridge: float, bonuses: Sequence[float]) -> np.ndarray:
    """Ridge additive fit on the seen configs; unseen levels get their factor's best seen effect + its bonus."""
    x = onehot[seen]
    mean = float(y.mean())
    effects = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ (y - mean))
    observed = x.sum(axis=0) > 0
    for start, stop, bonus in zip(offsets[:-1], offsets[1:], bonuses):
        block = slice(start, stop)
        top = effects[block][observed[block]].max() if observed[block].any() else 0.0
        effects[block] = np.where(observed[block], effects[block], top + bonus)
    return mean + sum(effects[code] for code in codes)


METHODS: dict[str, Callable[..., Trajectory]] = {
    "random": random_search, "tpe": tpe_search, "greedy": greedy_stages, "cost_aware": cost_aware_search}


# --------------------------------------------------------------------------------------------- measures


def compute_to_within(trajectory: Trajectory, target: float, share: float = 0.01) -> float | None:
    """Least compute from which the selection's heldout stays >= (1 - share) * target to the run's end.

    "Stays": the best-tune config can change to one with a worse heldout, so reaching the band once is not enough.
    """
    threshold = (1.0 - share) * target
    reached: float | None = None
    for p in trajectory.points:
        if p.best_heldout >= threshold - _EPS:
            if reached is None:
                reached = p.compute
        else:
            reached = None
    return reached


def _resolve(methods: Mapping[str, Callable[..., Trajectory]] | Iterable[str]) -> dict[str, Callable[..., Trajectory]]:
    if isinstance(methods, Mapping):
        return dict(methods)
    return {name: METHODS[name] for name in methods}


def run_all(table: Table, methods: Mapping[str, Callable[..., Trajectory]] | Iterable[str],
            budgets: Sequence[float], seeds: Sequence[int]) -> dict[str, dict[float, list[Trajectory]]]:
    """Trajectories per method, budget fraction and seed; a budget-independent method runs once per seed."""
    grid = _grid(table)
    total = grid.compute_s()
    out: dict[str, dict[float, list[Trajectory]]] = {}
    for name, method in _resolve(methods).items():
        out[name] = {float(b): [] for b in budgets}
        for seed in seeds:
            if getattr(method, "budget_independent", False):
                full = method(grid, max(budgets) * total, seed)
                for b in budgets:
                    out[name][float(b)].append(truncate(full, b * total))
            else:
                for b in budgets:
                    out[name][float(b)].append(method(grid, b * total, seed))
    return out


def summarize(table: Table, methods: Mapping[str, Callable[..., Trajectory]] | Iterable[str],
              budgets: Sequence[float] = (0.05, 0.1, 0.2, 0.4, 1.0), seeds: Sequence[int] = range(10),
              share: float = 0.01, runs: Mapping[str, Mapping[float, list[Trajectory]]] | None = None) -> dict:
    """Per method and budget fraction of the grid's compute, over seeds: heldout reached and compute to the grid best.

    "to_within" is the compute (as a fraction of the grid's) from which the selection stays within `share` of
    the heldout of the config the exhaustive grid selects; "curves" keep each seed's run at the largest budget
    for plot(). `runs` (from run_all with the same budgets and seeds) skips running the methods again. A value
    no seed has (nothing fitted the budget) is None, so the dict dumps as strict JSON.
    """
    grid = _grid(table)
    best = grid_best(grid)
    total = best["compute_s"]
    target = best["selected_heldout"]
    runs = runs if runs is not None else run_all(grid, methods, budgets, list(seeds))
    summary: dict[str, Any] = {"set": grid.table.get("set"), "metric": grid.table.get("metric"), "grid": best,
                               "floor": least_compute_to_within(grid, share),
                               "honest_floor": honest_floor(grid, share),
                               "budgets": [float(b) for b in budgets], "seeds": list(seeds), "share": share,
                               "methods": {}}
    for name, by_budget in runs.items():
        rows = []
        for b, trajectories in by_budget.items():
            heldout = [t.best.best_heldout if t.best else math.nan for t in trajectories]
            reach = [compute_to_within(t, target, share) for t in trajectories]
            got = [r / total for r in reach if r is not None]
            rows.append({
                "fraction": b, "budget_s": b * total,
                "with_selection": sum(1 for t in trajectories if t.best),  # seeds where something fitted the budget
                "heldout_mean": _nanmean(heldout), "heldout_min": _nanmin(heldout), "heldout_max": _nanmax(heldout),
                "tune_mean": _nanmean([t.best.best_tune if t.best else math.nan for t in trajectories]),
                "evaluated_mean": float(np.mean([len(t.points) for t in trajectories])),
                "spent_fraction_mean": float(np.mean([t.spent for t in trajectories])) / total,
                "selected_grid_best": sum(1 for t in trajectories if t.best and t.best.best_id == best["selected_id"]),
                "to_within": {"median": float(np.median(got)) if got else None,
                              "min": min(got) if got else None, "max": max(got) if got else None,
                              "reached": len(got), "of": len(trajectories)},
            })
        largest = by_budget[max(by_budget)]
        summary["methods"][name] = {
            "budgets": rows,
            "curves": [{"seed": t.seed, "stop": t.stop,
                        "points": [[p.compute / total, p.best_heldout, p.best_id] for p in t.points]}
                       for t in largest]}
    return summary


def _nanmean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else None


def _nanmin(values: Sequence[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return min(finite) if finite else None


def _nanmax(values: Sequence[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else None


def held_range(row: Mapping[str, Any]) -> str | None:
    """A summary row's held-back scores over the seeds, 'mean [min, max]'; None where no seed selected anything."""
    if row["heldout_mean"] is None:
        return None
    return f"{row['heldout_mean']:.4f} [{row['heldout_min']:.4f}, {row['heldout_max']:.4f}]"


def replay_arguments(description: str | None, seeds: int) -> argparse.ArgumentParser:
    """The options of a benchmark replayed on the search grids: which sets' grids, how many seeds."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["korquad", "scifact"])
    parser.add_argument("--seeds", type=int, default=seeds)
    return parser


def plot(data: Mapping[str, Any], path: str, grid: Mapping[str, Any] | None = None, title: str | None = None) -> None:
    """Best heldout so far vs compute (fraction of the grid's, log x): median over seeds and a min-max band.

    The median is drawn from where at least half the seeds have evaluated something (before that it would be the
    median of the lucky few); the band from the first seed that has.

    `data` is a summary() dict, or {method: [Trajectory, ...]} with `grid` = grid_best(table).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "methods" in data:
        info = data["grid"]
        curves = {name: [[(x, y) for x, y, _ in c["points"]] for c in m["curves"]]
                  for name, m in data["methods"].items()}
        title = title or f"{data.get('set') or 'grid'}: {data.get('metric') or 'metric'} vs compute"
    else:
        if grid is None:
            raise ValueError("plotting trajectories needs grid=grid_best(table)")
        info = grid
        total = info["compute_s"]
        curves = {name: [[(p.compute / total, p.best_heldout) for p in t.points] for t in runs]
                  for name, runs in data.items()}
        title = title or "best heldout vs compute"
    target = info["selected_heldout"]
    xs = [x for runs in curves.values() for run in runs for x, _ in run if x > 0]
    low = max(min(xs) if xs else 1e-3, 1e-6)
    high = max(max(xs) if xs else 1.0, 1.0)
    axis = np.geomspace(low, high, 400)
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, runs in curves.items():
        values = np.full((len(runs), len(axis)), np.nan)
        for i, run in enumerate(runs):
            if not run:
                continue
            cx = np.array([x for x, _ in run])
            cy = np.array([y for _, y in run])
            at = np.searchsorted(cx, axis, side="right") - 1  # the last point at or before each x: a step curve
            values[i] = np.where(at >= 0, cy[np.clip(at, 0, None)], np.nan)
        count = (~np.isnan(values)).sum(axis=0)
        started, most = count > 0, 2 * count >= len(runs)
        if not started.any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # columns where some seeds have not started
            median = np.nanmedian(values, axis=0)
            lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        line, = ax.step(axis[most], median[most], where="post", label=name)
        ax.fill_between(axis[started], lo[started], hi[started], step="post", alpha=0.2, color=line.get_color())
    ax.axhline(target, linestyle="--", color="black", linewidth=1, label=f"grid best ({target:.4f})")
    ax.axhline(0.99 * target, linestyle="--", color="gray", linewidth=1, label="99% of grid best")
    ax.set_xscale("log")
    ax.set_xlabel("compute (fraction of the full grid's)")
    ax.set_ylabel("heldout of the best-tune config so far")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------- self-check


def synthetic_table(seed: int = 0, noise: float = 0.003) -> dict:
    """A small grid with additive scores and costs shaped like search_grid.py's (embedding ~100x a BM25 index).

    Needs mirror search_grid.needs_of: the e5-top20 reranker embeds the chunks with e5 too.
    """
    rng = np.random.default_rng(seed)
    chunkers = ["whole", "sentence-400", "token-256"]
    dense = ["none", "e5", "use"]
    lexical = ["none", "kiwi-k0.9-b0.5", "kiwi-k1.2-b0.75", "regex-k1.2-b0.75"]
    fusion = ["rrf", "w0.3", "w0.5", "w0.7"]
    rerankers = ["none", "e5-top20"]
    effect = {"chunker": dict(zip(chunkers, [0.0, 0.03, -0.02])), "dense": {"none": 0.0, "e5": 0.12, "use": 0.06},
              "lexical": dict(zip(lexical, [0.0, 0.10, 0.08, 0.04])),
              "fusion": dict(zip(fusion, [0.02, 0.0, 0.03, 0.01])),
              "reranker": {"none": 0.0, "e5-top20": 0.025}}
    resources: dict[str, float] = {}
    configs = []
    for d in dense[1:]:
        resources[f"queries|{d}"] = float(rng.uniform(2, 4))
    for c in chunkers:
        resources[f"chunk|{c}"] = 0.1
        for d in dense[1:]:
            resources[f"embed|{d}|{c}"] = float(rng.uniform(60, 100))
        for tokenizer in ("kiwi", "regex"):
            resources[f"tokens|{tokenizer}|{c}"] = float(rng.uniform(1, 3))
        for lx in lexical[1:]:
            resources[f"bm25|{c}|{lx}"] = float(rng.uniform(0.6, 1.0))
        for d in dense:
            for lx in lexical:
                if d == NONE and lx == NONE:
                    continue
                for fu in (fusion if NONE not in (d, lx) else [NONE]):
                    for rr in rerankers:
                        factors = {"chunker": c, "dense": d, "lexical": lx, "fusion": fu, "reranker": rr}
                        base = 0.45 + sum(effect[f].get(factors[f], 0.0) for f in FACTORS)
                        needs = [f"chunk|{c}"]
                        for model in dict.fromkeys(([d] if d != NONE else []) + (["e5"] if rr != NONE else [])):
                            needs += [f"embed|{model}|{c}", f"queries|{model}"]
                        if lx != NONE:
                            needs += [f"tokens|{lx.split('-')[0]}|{c}", f"bm25|{c}|{lx}"]
                        evaluate_s = float(rng.uniform(0.8, 1.2)) * (3.0 if rr != NONE else 1.0)  # reranking: slower
                        configs.append({"id": len(configs), "factors": factors, "needs": needs,
                                        "evaluate_s": round(evaluate_s, 3),
                                        "tune": float(base + rng.normal(0, noise)),
                                        "heldout": float(base + rng.normal(0, noise))})
    return {"set": "synthetic", "metric": "ndcg@10",
            "factors": {"chunker": chunkers, "dense": dense, "lexical": lexical, "fusion": fusion,
                        "reranker": rerankers},
            "resources": resources, "configs": configs}


def _check(table: dict, seeds: Sequence[int], budgets: Sequence[float]) -> dict[str, dict[float, list[Trajectory]]]:
    """The invariants every method must keep; returns the runs so the summary need not repeat them."""
    grid = Grid(table)
    best = grid_best(grid)
    total = best["compute_s"]
    keys = set(grid.by_key)
    runs = run_all(grid, METHODS, budgets, seeds)
    for name, by_budget in runs.items():
        for b, trajectories in by_budget.items():
            for t in trajectories:
                assert t.spent <= b * total + 1e-6, (name, b, t.spent)
                computes = [p.compute for p in t.points]
                assert all(x < y for x, y in itertools.pairwise(computes)), (name, b, "compute not increasing")
                tunes = [p.best_tune for p in t.points]
                assert all(x <= y for x, y in itertools.pairwise(tunes)), (name, b, "best tune decreased")
                assert len(set(t.evaluated)) == len(t.evaluated), (name, b, "a config counted twice")
                assert all(grid.key(grid.by_id[c]["factors"]) in keys for c in t.evaluated)
                for i, p in enumerate(t.points):  # the best so far: the best tune evaluated up to there
                    assert p.best_tune == max(float(grid.by_id[c]["tune"]) for c in t.evaluated[:i + 1])
                if b >= 1.0:
                    assert t.best is not None and t.best.best_id == best["selected_id"], (name, t.seed, t.best)
                    if name == "random":
                        assert len(t.points) == len(grid.configs) and t.stop == "exhausted"
    # a budget-independent method's truncated run equals a run at that budget
    for method in (random_search, tpe_search, greedy_stages):
        full = method(grid, total, seeds[0])
        small = method(grid, 0.1 * total, seeds[0])
        assert truncate(full, 0.1 * total).points == small.points, method.__name__
    # the cost accounting: a resource is paid once, re-evaluation is free
    run = _Run(grid, "check", total, 0)
    first = next(c for c in grid.configs if c["factors"]["dense"] != NONE)
    twin = next(c for c in grid.configs if c is not first and set(c["needs"]) >= set(first["needs"])
                and len(c["needs"]) == len(first["needs"]))
    run.evaluate(int(first["id"]))
    spent = run.spent
    assert abs(spent - (sum(grid.resources[r] for r in first["needs"]) + first["evaluate_s"])) < 1e-9
    run.evaluate(int(first["id"]))
    assert run.spent == spent and len(run.trajectory.points) == 1
    run.evaluate(int(twin["id"]))
    assert abs(run.spent - spent - twin["evaluate_s"]) < 1e-9
    # compute_to_within needs the band to hold to the end
    t = Trajectory("x", 10, 0, [Point(1, 0, 0, 0.5, 1.0), Point(2, 1, 1, 0.6, 0.5), Point(3, 2, 2, 0.7, 0.995)])
    assert compute_to_within(t, 1.0) == 3 and compute_to_within(t, 2.0) is None
    assert compute_to_within(Trajectory("x", 10, 0, t.points[:1]), 1.0) == 1
    return runs


def main() -> None:
    started = time.perf_counter()
    table = synthetic_table()
    seeds = [0, 1, 2]
    budgets = [0.05, 0.1, 0.2, 0.4, 1.0]
    runs = _check(table, seeds, budgets)
    summary = summarize(table, METHODS, budgets, seeds, runs=runs)
    json.dumps(summary, allow_nan=False)
    g = summary["grid"]
    print(f"synthetic grid: {g['configs']} configs, {g['compute_s']:.0f} s; selected id {g['selected_id']} "
          f"heldout {g['selected_heldout']:.4f} (oracle {g['oracle_heldout']:.4f})")
    print(f"{'method':<11}{'budget':>7}{'heldout mean [min, max]':>34}{'evals':>7}{'spent':>7}{'=grid':>6}"
          f"{'to within 1%: median [min, max] (n)':>40}")
    for name, m in summary["methods"].items():
        for row in m["budgets"]:
            w = row["to_within"]
            reach = (f"{w['median']:.3f} [{w['min']:.3f}, {w['max']:.3f}] ({w['reached']}/{w['of']})"
                     if w["reached"] else f"- (0/{w['of']})")
            held = held_range(row) or "- (nothing fitted)"
            if 0 < row["with_selection"] < len(seeds):
                held = f"{row['with_selection']}/{len(seeds)}: {held}"
            print(f"{name:<11}{row['fraction']:>7.2f}{held:>34}{row['evaluated_mean']:>7.1f}"
                  f"{row['spent_fraction_mean']:>7.2f}{row['selected_grid_best']:>6}{reach:>40}")
    import tempfile
    from pathlib import Path

    path = Path(tempfile.gettempdir()) / "search_methods_selfcheck.png"
    plot(summary, str(path))
    assert path.stat().st_size > 0
    print(f"plot: {path}; self-check passed in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
