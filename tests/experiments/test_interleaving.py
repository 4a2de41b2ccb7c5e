"""Team-draft interleaving and the sign test (experiments.interleaving)."""

import random

import pytest
from scipy.stats import binomtest

from experiments.interleaving import (
    CANDIDATE,
    CHAMPION,
    Pick,
    binomial_two_sided_p,
    credit,
    preference,
    sign_test,
    team_draft,
)


def test_team_draft_alternates_sides_and_keeps_each_rankings_order():
    champion = ["a", "b", "c", "d", "e"]
    candidate = ["b", "x", "a", "y", "z"]
    for seed in range(50):
        merged = team_draft(champion, candidate, 6, random.Random(seed))
        ids = [p.doc_id for p in merged]
        assert len(ids) == len(set(ids)) == 6
        sides = [p.side for p in merged]
        # after every pair of picks the teams are the same size (the draft's defining property)
        for end in range(2, 7, 2):
            assert sides[:end].count(CHAMPION) == sides[:end].count(CANDIDATE)
        for side, ranking in ((CHAMPION, champion), (CANDIDATE, candidate)):
            mine = [p.doc_id for p in merged if p.side == side]
            assert mine == sorted(mine, key=ranking.index)  # each side picks in its own order
            # a side's pick is its best document not already shown when it picked
            for pick_index, pick in enumerate(merged):
                if pick.side == side:
                    before = {p.doc_id for p in merged[:pick_index]}
                    assert pick.doc_id == next(d for d in ranking if d not in before)


def test_team_draft_coin_is_fair_and_seeded():
    firsts = [team_draft(["a"], ["b"], 1, random.Random(seed))[0].side for seed in range(2000)]
    assert 900 < firsts.count(CANDIDATE) < 1100
    assert team_draft(list("abcdef"), list("fedcba"), 4, random.Random(3)) == \
        team_draft(list("abcdef"), list("fedcba"), 4, random.Random(3))


def test_team_draft_when_one_side_runs_out_and_identical_rankings():
    merged = team_draft(["a"], ["b", "c", "d"], 10, random.Random(0))
    assert sorted(p.doc_id for p in merged) == ["a", "b", "c", "d"]
    assert [p.side for p in merged if p.doc_id == "a"] == [CHAMPION]
    same = team_draft(["a", "b", "c"], ["a", "b", "c"], 3, random.Random(1))
    assert [p.doc_id for p in same] == ["a", "b", "c"]  # identical rankings: the list the user would see anyway
    with pytest.raises(ValueError, match="k must be at least 1"):
        team_draft(["a"], ["b"], 0, random.Random(0))


def test_credit_counts_used_documents_per_side_and_ignores_unshown():
    merged = [Pick("a", CHAMPION), Pick("x", CANDIDATE), Pick("b", CHAMPION), Pick("y", CANDIDATE)]
    assert credit(merged, ["x", "y", "a", "zzz"]) == {CHAMPION: 1, CANDIDATE: 2}
    assert preference(credit(merged, ["x", "y", "a"])) == "win"
    assert preference(credit(merged, ["a", "a"])) == "loss"  # one document used twice is one credit
    assert preference(credit(merged, [])) == "tie"
    assert preference(credit(merged, ["a", "x"])) == "tie"


def test_sign_test_on_a_known_split():
    # 15 wins against 5 losses: P(X<=5 | n=20, 1/2) = 21700/1048576, two-sided 0.04139
    result = sign_test(["win"] * 15 + ["loss"] * 5 + ["tie"] * 7)
    assert (result.wins, result.losses, result.ties, result.n, result.queries) == (15, 5, 7, 20, 27)
    assert result.p_value == pytest.approx(2 * 21700 / 2 ** 20)
    assert result.p_value == pytest.approx(binomtest(15, 20, 0.5).pvalue)
    assert not result.loses_significantly(0.05)
    mirrored = sign_test(["win"] * 5 + ["loss"] * 15)
    assert mirrored.loses_significantly(0.05) and not mirrored.loses_significantly(0.01)
    assert "5 wins, 15 losses, 0 ties over 20 interleaved queries (sign test p=0.0414, n=20)" == mirrored.line()


@pytest.mark.parametrize("wins,trials", [(0, 0), (0, 1), (3, 6), (10, 10), (48, 100), (61, 100), (0, 30)])
def test_binomial_p_matches_scipy(wins, trials):
    expected = 1.0 if trials == 0 else binomtest(wins, trials, 0.5).pvalue
    assert binomial_two_sided_p(wins, trials) == pytest.approx(expected, rel=1e-9)


def test_no_preferences_is_p_one():
    result = sign_test(["tie"] * 4)
    assert result.n == 0 and result.p_value == 1.0 and not result.loses_significantly(0.05)
