"""Which proposer the loop asks: turns first, then the one whose iterations raise the best tuning score faster."""

from __future__ import annotations

from agent.loop.proposer_choice import CREDITED_LOOKS, REVISIT, choose_proposer, credit, iteration_credit
from agent.loop.records import IterationRecord


def entry(asked: str, gain: float | None, seconds: float = 600.0, answered: str | None = None) -> IterationRecord:
    return IterationRecord(iteration=0, asked=asked, proposer=answered or asked, gain=gain, seconds=seconds)


def run(history: list[IterationRecord], iteration: int | None = None) -> str:
    return choose_proposer(history, len(history) if iteration is None else iteration, True)[0]


def test_without_an_llm_or_with_a_fixed_mode_the_record_is_not_read():
    rich_llm = [entry("llm", 0.05)] * 4 + [entry("heuristic", 0.0)] * 4
    assert choose_proposer(rich_llm, 9, False)[0] == "heuristic"
    assert choose_proposer(rich_llm, 9, True, "heuristic")[0] == "heuristic"
    assert choose_proposer([entry("heuristic", 0.1)] * 4, 9, True, "llm")[0] == "llm"


def test_they_take_turns_until_each_has_its_credited_looks_the_llm_first():
    history: list[IterationRecord] = []
    asked = []
    for iteration in range(2 * CREDITED_LOOKS + 1):
        who = run(history)
        asked.append(who)
        # the first iteration has nothing to improve on: no gain is credited
        history.append(entry(who, None if iteration == 0 else 0.0))
    assert asked[:4] == ["llm", "heuristic", "llm", "heuristic"]
    assert credit(history, "llm").looks >= CREDITED_LOOKS and credit(history, "heuristic").looks >= CREDITED_LOOKS


def test_the_faster_gainer_proposes_and_the_other_gets_a_look_every_few_iterations():
    llm_wins = [entry("llm", None), entry("heuristic", 0.0), entry("llm", 0.02), entry("heuristic", 0.001),
                entry("llm", 0.01), entry("heuristic", 0.0)]
    picks = {i: choose_proposer(llm_wins, i, True)[0] for i in range(6, 6 + REVISIT)}
    assert [picks[i] for i in picks if i % REVISIT] == ["llm"] * (REVISIT - 1)
    assert [picks[i] for i in picks if i % REVISIT == 0] == ["heuristic"]
    # the same gains bought with ten times the time: the heuristic gains faster per hour
    slow = [e.model_copy(update={"seconds": 6000.0}) if e.asked == "llm" else e for e in llm_wins]
    slow[3] = entry("heuristic", 0.006)  # 0.012/h against the LLM's 0.03 in 3.3 h, 0.009/h
    assert run(slow, 7) == "heuristic" and run(slow, 8) == "llm"


def test_a_tie_and_no_gains_at_all_go_to_the_heuristic_which_costs_nothing_to_ask():
    flat = [entry("llm", None)] + [entry(w, 0.0) for w in ("heuristic", "llm", "heuristic", "llm")]
    assert run(flat, 5) == "heuristic"
    assert "higher gain per hour" in choose_proposer(flat, 5, True)[1]


def test_a_refused_llm_proposal_counts_against_the_llm_which_spent_the_time():
    history = [entry("llm", 0.03, answered="heuristic"), entry("llm", 0.0, answered="heuristic")]
    assert credit(history, "llm").looks == 2 and credit(history, "heuristic").looks == 0
    assert credit(history, "llm").gain == 0.03


def test_an_iterations_gain_is_the_rise_of_the_runs_best_and_never_negative():
    assert iteration_credit(None, 0.7, 120.0) == {"gain": None, "seconds": 120.0}
    assert iteration_credit(0.70, 0.73, 60.0)["gain"] == 0.73 - 0.70
    assert iteration_credit(0.70, 0.65, 60.0)["gain"] == 0.0
    assert iteration_credit(0.70, None, 60.0)["gain"] == 0.0  # no trial finished: nothing gained, time spent
