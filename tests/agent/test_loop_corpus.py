"""The loop follows a living corpus: a new version re-scores the champion before anything is proposed, queries of
removed documents are dropped with a count, held-back queries stay held back, and synthesis adds questions for new
and changed documents only."""

import json

from agent.loop import nodes
from agent.loop.runtime import AgentPaths, BudgetClock
from agent.loop.state import AgentContext
from agent.project import open_project
from evalsets import load_evalset
from evalsets.ingest import CorpusFolder, ingest
from evalsets.synthesize import synthesize
from experiments import tune_and_heldout
from pipelines import Components, PipelineConfig
from pipelines.llm import LLMClient, LLMSettings


class Scripted(LLMClient):
    """The real client (structured output, validation) answering with scripted replies; records what it was sent."""

    def __init__(self, replies):
        super().__init__(LLMSettings(base_url="http://127.0.0.1:9/v1", model="scripted"))
        self.replies, self.seen = list(replies), []

    def _call(self, messages, params, timeout=None):
        self.seen.append(messages)
        return self.replies.pop(0)

TOPICS = ["vacation days", "payroll date", "vpn port", "printer setup", "parking permit", "lunch hours",
          "expense claims", "laptop refresh", "badge access", "guest wifi", "travel booking", "security training"]


def living_set(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    for number, topic in enumerate(TOPICS):
        (drive / f"{number:02d}.md").write_text(f"# {topic}\n\nThe policy on {topic} changed in week {number}; "
                                                f"ask desk {number} about {topic}.\n", "utf-8")
    corpus = tmp_path / "corpus"
    version = ingest([drive], corpus, workers=1).version
    (corpus / "queries.jsonl").write_text("".join(json.dumps({"query_id": f"q{n:02d}", "text": f"who knows about "
                                                              f"{topic}"}) + "\n" for n, topic in enumerate(TOPICS)))
    (corpus / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\n"
                                      + "".join(f"q{n:02d}\tdrive/{n:02d}.md\t1\n" for n in range(len(TOPICS))))
    return drive, corpus, version


def test_a_new_corpus_version_rescores_the_champion_and_drops_queries_of_removed_documents(tmp_path):
    drive, corpus, first = living_set(tmp_path)
    champion = PipelineConfig.model_validate({"name": "bm25", "lexical": {"tokenizer": "english"},
                                              "fusion": {"kind": "none"}})
    (tmp_path / "start.yaml").write_text(champion.to_yaml())
    project = open_project(tmp_path / "project", None, tmp_path / "start.yaml")
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps({"spent_seconds": 0.0}))
    said = []
    from guardrails import load_policy

    ctx = AgentContext(project, AgentPaths(tmp_path / "project"), BudgetClock(run_file, 600), corpus, load_policy(None),
                       Components(tmp_path / "cache.sqlite"), None, say=said.append)
    state = {"run_id": "r", "iteration": 0}
    state |= nodes.observe_champion(ctx, state)
    assert state["corpus_version"] == first and not any("corpus changed" in line for line in said)
    held_before = {q.query_id for q in ctx.split.heldout[0].queries}
    state |= {"champion_heldout": 0.9, "champion_heldout_sha256": champion.sha256()}  # as the guard step leaves it
    state |= nodes.observe_champion(ctx, {**state, "iteration": 1})
    assert state["champion_heldout"] == 0.9, "the same corpus: the measurement stands"

    (drive / "03.md").unlink()
    (drive / "07.md").unlink()
    second = ingest([drive], corpus, workers=1).version
    state |= nodes.observe_champion(ctx, {**state, "iteration": 2})
    assert state["corpus_version"] == second != first
    assert state["champion_heldout"] is None and state["champion_heldout_sha256"] is None  # the guard measures again
    assert any(f"corpus changed: version {first} -> {second}, 10 documents; 2 evaluation queries dropped" in line
               for line in said)
    assert "mean ndcg@10" in state["observation"]
    # the proposers see what each model costs to embed this corpus here, and the budget left
    assert "cost of embedding this corpus (whole chunks)" in state["observation"] and "min of budget left" in \
        state["observation"]
    assert set(state["model_costs"]) >= {"all-MiniLM-L6-v2"} and all(v > 0 for v in state["model_costs"].values())
    kept = {q.query_id for part in (ctx.split.tune, *ctx.split.heldout) for q in part.queries}
    assert kept == {f"q{n:02d}" for n in range(len(TOPICS))} - {"q03", "q07"}
    assert {q.query_id for q in ctx.split.heldout[0].queries} == held_before - {"q03", "q07"}


def test_a_growing_living_set_keeps_its_held_back_queries_held_back(tmp_path):
    _, corpus, _ = living_set(tmp_path)
    tune, held = tune_and_heldout(corpus)
    assert held.queries and tune.queries
    lines = (corpus / "queries.jsonl").read_text()
    (corpus / "queries.jsonl").write_text(lines + "".join(json.dumps({"query_id": f"new{n}", "text": f"desk {n}"})
                                                          + "\n" for n in range(30)))
    (corpus / "qrels.tsv").write_text((corpus / "qrels.tsv").read_text()
                                      + "".join(f"new{n}\tdrive/00.md\t1\n" for n in range(30)))
    tune_after, held_after = tune_and_heldout(corpus)
    old = {q.query_id for q in held.queries}
    assert old <= {q.query_id for q in held_after.queries}
    assert not old & {q.query_id for q in tune_after.queries}


def test_synthesis_since_a_version_asks_only_about_new_and_changed_documents(tmp_path):
    drive, corpus, first = living_set(tmp_path)
    (drive / "05.md").write_text("# lunch hours\n\nLunch is now served from 11:00 to 14:00.\n", "utf-8")
    (drive / "20.md").write_text("# bike storage\n\nBikes go to the basement rack B2.\n", "utf-8")
    second = ingest([drive], corpus, workers=1).version
    only = set(CorpusFolder(corpus).changed_since(first))
    assert only == {"drive/05.md", "drive/20.md"}
    replies = ['{"question": "Where do bikes go?", "answer": "basement rack B2"}',  # in sampling order: each
               '{"reason": "stated", "answerable": 1}',  # answer must be in its own passage
               '{"question": "When is lunch served now?", "answer": "11:00 to 14:00"}',
               '{"reason": "stated", "answerable": 1}']
    llm = Scripted(replies)
    report = synthesize(corpus, corpus, llm, n=10, only=only, corpus_version=second)
    assert report.sampled == 2 and report.kept == 2
    asked = " ".join(m["content"] for call in llm.seen for m in call)
    assert "basement rack" in asked and "week 3" not in asked  # unchanged documents were not sent
    evalset = load_evalset(corpus)
    assert len(evalset.queries) == len(TOPICS) + 2  # the questions the set had are kept
    new = [q for q in evalset.queries if q.query_id.startswith("syn-")]
    assert {q.metadata["source_doc"] for q in new} == only and all(q.metadata["corpus_version"] == second for q in new)
    assert (corpus / "corpus.jsonl").read_text().count("\n") == 13  # the corpus itself was not copied or changed


def test_a_cold_first_observation_stops_between_batches_on_evolve_stop_and_keeps_them(tmp_path):
    """Observing the champion on a cold cache embeds the corpus: `evolve stop` ends it between batches, the run
    goes to its summary, and the batches done are in the cache."""
    from agent.loop.graph import build_graph

    drive = tmp_path / "drive"
    drive.mkdir()
    for number in range(300):
        (drive / f"{number:03d}.md").write_text(f"# note {number}\n\nroom {number} is booked for team {number % 7}.\n")
    corpus = tmp_path / "corpus"
    ingest([drive], corpus, workers=1)
    (corpus / "queries.jsonl").write_text(json.dumps({"query_id": "q", "text": "room 5"}) + "\n")
    (corpus / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq\tdrive/005.md\t1\n")
    champion = PipelineConfig.model_validate({"name": "dense", "dense": {"model": "all-MiniLM-L6-v2"}})
    (tmp_path / "start.yaml").write_text(champion.to_yaml())
    project = open_project(tmp_path / "project", None, tmp_path / "start.yaml")
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps({"spent_seconds": 0.0}))
    from guardrails import load_policy

    paths = AgentPaths(tmp_path / "project")
    said = []

    def say(line):
        said.append(line)
        if "embedding chunks" in line and not line.endswith(" 0/300"):  # the first batch is in: `evolve stop`
            paths.stop.write_text("now")

    components = Components(tmp_path / "cache.sqlite")
    ctx = AgentContext(project, paths, BudgetClock(run_file, 3600), corpus, load_policy(None), components, None,
                       say=say)
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    graph = build_graph(ctx, SqliteSaver(sqlite3.connect(tmp_path / "checkpoints.sqlite", check_same_thread=False)))
    final = graph.invoke({"run_id": "r", "iteration": 0, "history": [], "proposals": {}, "trials_run": 0,
                          "budget_seconds": 3600}, {"configurable": {"thread_id": "r"}})
    assert final["stop_reason"] == "stop" and "a stop was requested" in final["observation_abandoned"]
    assert not final.get("proposal"), "nothing was proposed"
    stored = components.store.count()
    assert 0 < stored < 300 and stored % (4 * 32) == 0  # whole batches of 4 x batch_size, each kept
    assert any("the embedded batches are cached" in line for line in said)
