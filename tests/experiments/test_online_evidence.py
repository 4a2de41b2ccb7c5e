"""What live traffic says about a candidate: rows written to a real feedback store (DuckDB), read back the way
`evolve feedback compare` reads them, summarised; and the policy's online rule on the result."""

import pytest

from agent.online import TRAFFIC_SQL, traffic_records
from evalsets import FeedbackEvent
from evalsets.feedback import FeedbackStore
from experiments.interleaving import sign_test
from experiments.online import interleave_summary, shadow_summary
from guardrails import Policy, policy_sha256
from guardrails.traffic import online_rule


def served(store, kind="search"):
    return store.record_request(kind, "q", [], "1", "champ", 1.0)


@pytest.fixture
def store(tmp_path):
    opened = FeedbackStore(tmp_path / "feedback.duckdb")
    yield opened
    opened.close()


def rate(store, request_id, rating, correct=None, used=None):
    event = FeedbackEvent(rating=rating, request_id=request_id, correct_doc_id=correct, used_doc_ids=used)
    store.record_feedback([store.vouch(event)], source="api")


def test_citations_and_feedback_credit_the_side_that_showed_the_document(store, tmp_path):
    shown = [{"doc_id": "a", "side": "champion"}, {"doc_id": "x", "side": "candidate"},
             {"doc_id": "b", "side": "champion"}, {"doc_id": "y", "side": "candidate"}]
    # 1: the answer cites two candidate documents -> a win from citations alone
    one = served(store, "answer")
    store.record_traffic(one, "interleave", "4", 4, ["a", "b"], ["x", "y"], shown, cited=["x", "y"])
    # 2: the user used a champion document -> a loss from feedback
    two = served(store)
    store.record_traffic(two, "interleave", "4", 4, ["a", "b"], ["x", "y"], shown)
    rate(store, two, "good", used=["a"])
    # 3: a bad rating marks a candidate document right, the answer cited a champion one -> a tie
    three = served(store, "answer")
    store.record_traffic(three, "interleave", "4", 4, ["a", "b"], ["x", "y"], shown, cited=["b"])
    rate(store, three, "bad", correct="y")
    # 4: the candidate was unavailable: served by the champion alone, no preference
    four = served(store)
    store.record_traffic(four, "interleave", "4", 4, ["a", "b"], None, None, status="candidate_unavailable")
    # another version's traffic is not this one's
    store.record_traffic(served(store), "interleave", "5", 4, ["a"], ["x"], shown, cited=["x"])

    records = traffic_records(store.rows(TRAFFIC_SQL.format(version="4")))
    summary = interleave_summary(records)
    assert (summary.requests, summary.unavailable) == (4, 1)
    assert (summary.test.wins, summary.test.losses, summary.test.ties) == (1, 1, 1)
    assert summary.credit == {"feedback": {"champion": 1, "candidate": 1},
                              "citations": {"champion": 1, "candidate": 2}}
    assert "1 wins, 1 losses, 1 ties over 3 interleaved queries (sign test p=1, n=2)" in summary.lines()


def test_shadow_summary_overlap_right_documents_and_kept_good_ones(store):
    first = served(store)  # champion a b c, candidate a x y: overlap 1/3; the bad rating's right doc x is found
    store.record_traffic(first, "shadow", "4", 3, ["a", "b", "c"], ["a", "x", "y"])
    rate(store, first, "bad", correct="x")
    second = served(store)  # identical rankings; the good rating used b and c, both kept
    store.record_traffic(second, "shadow", "4", 3, ["a", "b", "c"], ["a", "b", "c"])
    rate(store, second, "good", used=["b", "c"])
    rate(store, second, "bad", correct="z")  # not retrieved by either
    store.record_traffic(served(store), "shadow", "4", 3, ["a"], None, status="candidate_unavailable")
    summary = shadow_summary(traffic_records(store.rows(TRAFFIC_SQL.format(version="4"))))
    assert (summary.requests, summary.unavailable) == (3, 1)
    assert summary.mean_overlap == pytest.approx((1 / 3 + 1) / 2)
    assert (summary.marked_right, summary.candidate_found, summary.champion_found) == (2, 1, 0)
    assert (summary.good_docs, summary.candidate_kept) == (2, 2)


def test_online_rule_off_pending_fail_pass():
    losing = sign_test(["loss"] * 15 + ["win"] * 3 + ["tie"] * 2)  # p = 0.0075
    off = online_rule(Policy(), losing)
    assert off.passed and off.limit == "off"
    on = Policy(online={"min_queries": 20, "max_loss_p": 0.05})
    assert not online_rule(on, losing).passed
    assert "loses to the champion on live traffic" in online_rule(on, losing).why
    pending = online_rule(Policy(online={"min_queries": 200}), losing)
    assert pending.passed and pending.why.startswith("pending: 20 of 200 interleaved queries")
    assert online_rule(on, sign_test(["loss"] * 12 + ["win"] * 8)).passed  # a loss, not a significant one
    assert online_rule(on, None).passed


def test_the_online_section_absent_keeps_the_policys_address():
    assert Policy().online is None
    assert policy_sha256(Policy()) != policy_sha256(Policy(online={}))
    import hashlib
    import json
    data = {k: v for k, v in Policy().model_dump(mode="json").items() if k not in ("online", "answers", "looks_gate")}
    assert policy_sha256(Policy()) == hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"))
                                                     .encode()).hexdigest()
