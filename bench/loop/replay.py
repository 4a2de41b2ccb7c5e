"""evolve's loop replayed against a search grid: the real heuristic proposer, each proposal a study in the grid.

    .venv/bin/python -m bench.loop.replay [--set korquad] [--budget 0.4] [--seed 0]   # one run, printed

bench/search/methods.py replays generic search methods against a grid table (bench/search/grid.py); this module
adds the method the benchmark exists for, evolve's own loop, charged the same way (a cold cache, each resource
paid once, each new config's evaluation paid):

1. the champion is the config that costs least cold (BM25 alone; greedy stage-by-stage search starts there too),
   scored first; it stays the champion for the whole run (the real loop's champion changes only when a human
   approves a candidate);
2. each iteration calls ``agent.loop.proposers.heuristic_proposal`` as the loop does, with the champion, the best
   config so far (None before the first study), whether the last study improved, the history the loop keeps (each
   iteration's ``move`` and ``base`` from its Proposal, ``covered`` from ``coverage(space)``, its ``outcome``), the
   cost table (seconds to embed the corpus with each model, 0 once paid) and the budget left, so its move order
   and cost rule are the ones under test;
3. the proposed space is projected onto the grid: a level of a factor is in it when the space allows that value
   (a model listed, a chunker of that kind whose sizes admit it, k1/b/weights inside the ranges, a reranker of
   that model admitting top 20 and blend 0.5). A factor none of whose grid levels the space admits keeps the
   best config's level (the grid cannot score what lies outside it: the fixed-size chunkers of the "chunking"
   move, for one);
4. a study of ``trials`` trials runs in that part of the grid as evolve's study does: the champion as trial 0
   (StudyRunner.enqueue_first: its score is known, so it costs nothing, and the study's best so far starts from
   it; like the real loop's fixed-config trial it carries no sampled parameters), then BM25 alone, then the models
   already embedded, then Optuna TPE (multivariate, grouped, 8 startup trials, as experiments/study.py);
   a trial whose cold embedding does not fit the budget left is refused at no cost (Objective's rule); a trial
   that lands on a config scored before gets its score at no cost (as every method here is charged; in the real
   loop such a trial explores settings between the grid's levels, which the grid can neither price nor score);
5. the study's best by tuning score becomes the best so far when it beats it ("promoted"; the real loop's guard
   also asks for significance on its held-back queries, which a method compared here may not look at).

The run ends when nothing fits the budget left, or when ``stall`` iterations in a row (a round of the heuristic's
moves) brought no new config: the proposer has nothing more to try in this grid. Selection uses tuning scores
only; held-back scores are reported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from agent.loop.proposers import Proposal, coverage, heuristic_proposal, models_for
from bench import RESULTS
from bench.search.grid import FUSIONS, SETS, config_of
from bench.search.methods import FACTORS, NONE, Grid, Table, Trajectory, _grid, _Run, start_config

LANGUAGES = {"korquad": "ko", "scifact": "en"}
RERANK_TOP, RERANK_BLEND, RRF_K = 20, 0.5, 60
Proposer = Callable[..., Proposal]
"""(iteration, language, champion, best, improved_last, tried, costs, seconds_left) -> a Proposal (its space, and
for the heuristic its move and base)."""


def heuristic(iteration: int, language: str, champion: dict, best: dict | None, improved_last: bool | None,
              tried: list[dict], costs: dict[str, float], seconds_left: float) -> Proposal:
    return heuristic_proposal(iteration, language, champion, best, improved_last, tried,
                              costs=costs, seconds_left=seconds_left)


class LLMProposer:
    """The LLM proposer as the loop calls it (``agent.loop.proposers.llm_proposal``: the whole space schema as the
    response format, one retry on a schema error), with the heuristic taking over when it gives nothing usable.

    The observation is what the grid knows: the best config's tuning score and the cost table with the budget
    left (the real loop adds its worst queries, which the grid's means cannot give); the history says what each
    earlier space covered, as the loop's does. Counts every reply."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.asked = self.valid_first = self.valid = 0
        self.notes: list[str] = []

    def __call__(self, iteration: int, language: str, champion: dict, best: dict | None, improved_last: bool | None,
                 tried: list[dict], costs: dict[str, float], seconds_left: float) -> Proposal:
        from agent.loop.nodes import history_text
        from agent.loop.proposers import llm_proposal

        current = best or champion
        lines = [f"champion {current['name']}: mean ndcg@10 {current['tune']:.4f} on the tuning queries ({language})",
                 f"cost of embedding this corpus ({current['chunking']['kind']} chunks) with each model on this "
                 f"machine; BM25, fusion and cached models cost seconds; {seconds_left / 60:.0f} min of budget left:"]
        lines += [f"- {model}: ~{seconds:.0f} s to embed the rest" for model, seconds in costs.items()
                  if not math.isinf(seconds)]  # a model the grid lacks is not offered to the LLM either
        # the loop's own words (agent.loop.nodes.propose_space): what each earlier space covered, and not to repeat it
        history = history_text([{"iteration": i, "space_name": t["space"], "proposer": t["proposer"],
                                 "covered": t.get("covered"), "best_tune_value": t["best_tune"],
                                 "outcome": t["outcome"]} for i, t in enumerate(tried)])
        self.asked += 1
        proposal, notes = llm_proposal(self.client, "\n".join(lines), language, history, iteration)
        self.notes += notes
        if proposal is not None:
            self.valid += 1
            self.valid_first += not any("rejected" in n for n in notes)
            return proposal
        return heuristic(iteration, language, champion, best, improved_last, tried, costs, seconds_left)


class AutoProposer:
    """``evolve start --proposer auto`` (agent.loop.proposer_choice): the LLM and the heuristic take turns, then
    the one whose iterations raised the best tuning score faster per compute second proposes. An iteration's
    seconds are the grid compute its study spent (the LLM's own time is not charged, as for ``LLMProposer``)."""

    def __init__(self, llm: LLMProposer) -> None:
        self.llm = llm
        self.asked: list[str] = []

    def __call__(self, iteration: int, language: str, champion: dict, best: dict | None, improved_last: bool | None,
                 tried: list[dict], costs: dict[str, float], seconds_left: float) -> Proposal:
        from agent.loop.proposer_choice import choose_proposer, iteration_credit
        from agent.loop.records import IterationRecord

        history = [IterationRecord(iteration=i, proposer=who, asked=who,
                                   **iteration_credit(tried[i - 1]["best_tune"] if i else None, entry["best_tune"],
                                                      entry["seconds"]))
                   for i, (who, entry) in enumerate(zip(self.asked, tried))]
        who, _ = choose_proposer(history, iteration, True)
        self.asked.append(who)
        chosen = self.llm if who == "llm" else heuristic
        return chosen(iteration, language, champion, best, improved_last, tried, costs, seconds_left)


def _admits(allowed: Any, value: Any) -> bool:
    """A space value (a range dict, a list of choices, a single value, or absent) admits a grid value."""
    if allowed is None:
        return True
    if isinstance(allowed, Mapping):
        return float(allowed["low"]) - 1e-9 <= float(value) <= float(allowed["high"]) + 1e-9
    if isinstance(allowed, list):
        return value in allowed
    return value == allowed


def admitted_levels(space: Mapping[str, Any], levels: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Per factor, the grid levels the proposed space admits (step 3 of the module's docstring)."""
    dense_models = space.get("dense_models") or []
    lexical = space.get("lexical")
    tokenizers = (lexical or {}).get("tokenizers", [])
    fusion = space.get("fusion") or {}
    rerankers = space.get("rerankers") or [{"kind": "none"}]
    found: dict[str, set[str]] = {f: set() for f in FACTORS}
    for name, chunking in levels["chunker"].items():
        for spec in space.get("chunkers") or []:
            if spec.get("kind") == chunking["kind"] and all(
                    _admits(spec.get(k), v) for k, v in chunking.items() if k != "kind"):
                found["chunker"].add(name)
    for name, model in levels["dense"].items():
        if (model or NONE) in dense_models:
            found["dense"].add(name)
    for name, bm25 in levels["lexical"].items():
        if bm25 is None:
            if lexical is None or NONE in tokenizers:
                found["lexical"].add(name)
        elif lexical is not None and bm25["tokenizer"] in tokenizers and _admits(lexical.get("k1"), bm25["k1"]) \
                and _admits(lexical.get("b"), bm25["b"]):
            found["lexical"].add(name)
    found["fusion"].add(NONE)  # implied when one retriever is off
    for name, body in FUSIONS.items():
        if body["kind"] in fusion.get("kinds", []) and (
                _admits(fusion.get("rrf_k"), RRF_K) if body["kind"] == "rrf"
                else _admits(fusion.get("dense_weight"), body["dense_weight"])):
            found["fusion"].add(name)
    for name, model_level in levels["reranker"].items():
        model = levels["dense"][model_level] if model_level else None
        for spec in rerankers:
            if model is None and spec.get("kind") == NONE:
                found["reranker"].add(name)
            elif model is not None and spec.get("kind") == "embedding" and spec.get("model") == model \
                    and _admits(spec.get("top_n"), RERANK_TOP) and _admits(spec.get("blend"), RERANK_BLEND):
                found["reranker"].add(name)
    return found


def subgrid(grid: Grid, space: Mapping[str, Any], levels: Mapping[str, Mapping[str, Any]],
            base: Mapping[str, str]) -> list[int]:
    """The grid configs inside the space; a factor with no admitted level keeps the base config's level."""
    admitted = admitted_levels(space, levels)
    for factor in FACTORS:
        if not admitted[factor] - ({NONE} if factor == "fusion" else set()):
            admitted[factor].add(base[factor])
    inside = [int(c["id"]) for c in grid.configs if all(c["factors"][f] in admitted[f] for f in FACTORS)]
    return inside or [grid.lookup(base)]


def _costs(run: _Run, levels: Mapping[str, Mapping[str, Any]], chunker: str, language: str) -> dict[str, float]:
    """The cost table the proposer sees: seconds to embed the corpus (and the queries) with each model, 0 once paid.
    A model outside the grid gets an infinite cost: the grid can neither price nor score it (SciFact leaves USE and
    e5 out because they take hours on it), and left out of the table it would pass for one already embedded."""
    by_model = {model: name for name, model in levels["dense"].items() if model}
    costs: dict[str, float] = {}
    for model in models_for(language):
        name = by_model.get(model)
        if name is None:
            costs[model] = math.inf
            continue
        costs[model] = sum(run.grid.resources.get(r, 0.0) for r in (f"embed|{name}|{chunker}", f"queries|{name}")
                           if r not in run.paid)
    return costs


def _study(run: _Run, inside: list[int], trials: int, seed: int, champion: int | None = None) -> list[int]:
    """One study in the part of the grid the space admits (step 4), ``champion`` its trial 0 (scored before: no
    cost); returns the configs its trials scored, the champion first."""
    import optuna

    grid = run.grid
    configs = [grid.by_id[cid] for cid in inside]
    choices = {f: sorted({c["factors"][f] for c in configs}, key=grid.levels[f].index) for f in FACTORS}
    hybrid = [lv for lv in choices["fusion"] if lv != NONE]
    choices["fusion"] = hybrid or [NONE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    allowed = set(inside)
    scored: list[int] = []
    counted = attempts = 0
    if champion is not None:  # trial 0: the champion as it is (a fixed config, no sampled parameters), known score
        study.tell(study.ask(), run.scores[champion])
        scored.append(champion)
        counted += 1
    if NONE in choices["dense"] and any(lv != NONE for lv in choices["lexical"]):
        study.enqueue_trial({"dense": NONE})
    first_chunker = choices["chunker"][0]
    for level in choices["dense"]:
        if level != NONE and f"embed|{level}|{first_chunker}" in run.paid:
            study.enqueue_trial({"dense": level})
    cheapest = min(float(c["evaluate_s"]) for c in configs)
    while counted < trials and attempts < 20 * trials and not run.stopped:
        attempts += 1
        trial = study.ask()
        factors = {f: trial.suggest_categorical(f, choices[f]) for f in FACTORS}
        if NONE in (factors["dense"], factors["lexical"]):
            factors["fusion"] = NONE
        cid = grid.lookup(factors)
        if cid is None or cid not in allowed:  # outside the space (the sampler cannot know the grid's holes)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        counted += 1
        if cid in run.scores:  # a repeat: its known score at no cost, as every method here is charged
            study.tell(trial, run.scores[cid])
            scored.append(cid)
            continue
        if not run.affordable(run.cost(cid)):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # refused: its cold embedding cannot finish
            if not run.affordable(cheapest):
                run.stop("budget")
            continue
        study.tell(trial, run.evaluate(cid))
        scored.append(cid)
    return scored


def evolve_loop(table: Table, budget_s: float, seed: int, *, proposer: Proposer = heuristic,
                trials: int = 20, method: str = "evolve_heuristic", stall: int = 5,
                trace: list[dict[str, Any]] | None = None) -> Trajectory:
    """evolve's loop against the grid (the module's docstring); ``proposer`` returns each iteration's proposal.
    ``trace``: filled with each iteration's history entry (and the configs its study scored anew)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = _grid(table)
    levels = SETS[grid.table["set"]]
    language = LANGUAGES[grid.table["set"]]
    run = _Run(grid, method, budget_s, seed)
    champion_id = start_config(grid)
    if run.evaluate(champion_id) is None:
        return run.finish("budget")

    def config(cid: int) -> dict[str, Any]:
        """The config as the proposer reads it, with its tuning score (what the loop's observation states)."""
        return {**config_of(grid.by_id[cid]["factors"], levels).model_dump(mode="json"), "tune": run.scores[cid]}

    best_id, improved, tried, idle = champion_id, None, [], 0
    for iteration in itertools.count():
        if run.stopped or idle >= stall:
            break
        known = len(run.scores)
        best_factors = grid.by_id[best_id]["factors"]
        costs = _costs(run, levels, best_factors["chunker"], language)
        started = run.spent
        proposal = proposer(iteration, language, config(champion_id), config(best_id) if iteration else None,
                            improved, tried, costs, run.budget_s - run.spent)
        space = proposal.space
        scored = _study(run, subgrid(grid, space, levels, best_factors), trials, seed * 1000 + iteration,
                        champion_id)
        study_best = max(scored, key=lambda cid: run.scores[cid], default=None)
        improved = study_best is not None and run.scores[study_best] > run.scores[best_id]
        if improved:
            best_id = study_best
        tried.append({"space": space.get("name"), "proposer": proposal.proposer,
                      "outcome": "promoted" if improved else "kept",
                      "move": proposal.move, "base": proposal.base, "covered": coverage(space),
                      "best_tune": run.scores[best_id], "seconds": run.spent - started})
        if trace is not None:
            trace.append({**tried[-1], "new": len(run.scores) - known, "spent": run.spent,
                          "best": dict(grid.by_id[best_id]["factors"]), "rationale": proposal.rationale})
        idle = 0 if len(run.scores) > known else idle + 1
    return run.finish("stalled" if idle >= stall else "budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="korquad", choices=sorted(LANGUAGES))
    parser.add_argument("--budget", type=float, default=0.4, help="share of the grid's compute")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = json.loads((RESULTS / f"search-grid-{args.set}.json").read_text())
    grid = Grid(table)
    total = grid.compute_s()
    trace: list[dict[str, Any]] = []
    run = evolve_loop(grid, args.budget * total, args.seed, trace=trace)
    for i, entry in enumerate(trace):
        print(f"iteration {i}: {entry['move']} ({entry['space']}), {entry['new']} new configs, {entry['outcome']}; "
              f"spent {entry['spent'] / total:.3f} of the grid's compute; best {json.dumps(entry['best'])} "
              f"tune {entry['best_tune']:.4f}")
    for point in run.points:
        factors = grid.by_id[point.config_id]["factors"]
        print(f"{point.compute:8.1f} s ({point.compute / total:.3f})  {json.dumps(factors)}  "
              f"tune {grid.by_id[point.config_id]['tune']:.4f}  best held-back {point.best_heldout:.4f}")
    print(f"{len(run.points)} configs, {run.spent:.0f} of {args.budget * grid.compute_s():.0f} s, stop: {run.stop}")


if __name__ == "__main__":
    main()
