import json

import pytest

from evalsets import EvalSetError, available_splits, load_evalset
from helpers import DEMO_SET, shared_set, write_evalset

DOCS = [{"doc_id": "d1", "title": "T1", "text": "alpha"}, {"doc_id": "d2", "title": "", "text": "beta"}]
QUERIES = [{"query_id": "q1", "text": "alpha?", "answers": ["alpha"]}]


def test_loads_shared_sets_with_splits():
    scifact = load_evalset(shared_set("scifact"))
    assert (len(scifact.corpus), len(scifact.queries)) == (5183, 300)
    train = load_evalset(shared_set("scifact"), "train")
    assert len(train.queries) == 809 and sum(len(v) for v in train.qrels.values()) == 919
    assert available_splits(shared_set("scifact")) == ["default", "train"]
    korquad = load_evalset(shared_set("korquad-v1-dev"))
    assert korquad.queries[0].answers and korquad.document("kq-000-00").title


def test_bundled_demo_set_is_valid_and_keeps_its_licence():
    demo = load_evalset(DEMO_SET)
    assert (len(demo.corpus), len(demo.queries)) == (232, 100)
    assert "Copyright (c) 2023 Anthropic" in (DEMO_SET / "LICENSE").read_text()


def test_sample_is_seeded_and_keeps_qrels(tmp_path):
    demo = load_evalset(DEMO_SET)
    a, b = demo.sample(10, seed=3), demo.sample(10, seed=3)
    assert [q.query_id for q in a.queries] == [q.query_id for q in b.queries]
    assert set(a.qrels) == {q.query_id for q in a.queries}
    assert [q.query_id for q in demo.sample(10, seed=4).queries] != [q.query_id for q in a.queries]


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: (d / "corpus.jsonl").unlink(), r"corpus\.jsonl: file not found"),
    (lambda d: (d / "corpus.jsonl").write_text('{"doc_id": "d1", "text": "x"}\n{broken\n'),
     r"corpus\.jsonl:2: bad JSON"),
    (lambda d: (d / "corpus.jsonl").write_text('{"doc_id": "d1"}\n'), r"corpus\.jsonl:1: field 'text' missing"),
    (lambda d: (d / "corpus.jsonl").write_text(""), r"corpus\.jsonl: corpus is empty"),
    (lambda d: (d / "corpus.jsonl").write_text('{"doc_id": "d1", "text": "a"}\n{"doc_id": "d1", "text": "b"}\n'),
     r"corpus\.jsonl:2: duplicate doc_id 'd1'"),
    (lambda d: (d / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq1\tnope\t1\n"),
     r"qrels\.tsv:2: doc_id 'nope' is not in the corpus"),
    (lambda d: (d / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq1\td1\tyes\n"),
     r"qrels\.tsv:2: relevance 'yes' is not an integer"),
    (lambda d: (d / "qrels.tsv").write_text("q\td\tr\nq1\td1\t1\n"), r"qrels\.tsv:1: first line must be the header"),
    (lambda d: (d / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq1\td1\t0\n"),
     r"queries\.jsonl: 1 queries have no relevant document"),
    (lambda d: (d / "queries.jsonl").write_bytes(b'{"query_id": "q1", "text": "\xff"}\n'), r"not valid UTF-8"),
    (lambda d: (d / "queries.jsonl").write_text(json.dumps({"query_id": "q1", "text": "x", "answers": "a"}) + "\n"),
     r"queries\.jsonl:1: field 'answers' must be a list of strings"),
])
def test_user_mistakes_name_file_and_line(tmp_path, mutate, expected):
    folder = write_evalset(tmp_path / "set", DOCS, QUERIES, [("q1", "d1", 1)])
    mutate(folder)
    with pytest.raises(EvalSetError, match=expected):
        load_evalset(folder)


def test_unknown_split_lists_the_splits_found(tmp_path):
    folder = write_evalset(tmp_path / "set", DOCS, QUERIES, [("q1", "d1", 1)])
    with pytest.raises(EvalSetError, match=r"no split 'train' here \(splits found: default\)"):
        load_evalset(folder, "train")
    with pytest.raises(EvalSetError, match="folder not found"):
        load_evalset(tmp_path / "missing")
