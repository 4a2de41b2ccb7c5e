"""Cost-aware studies: the cost table reads the real cache and the measured rate; a study starts with what is cheap
and never starts a cold embedding its time left cannot pay for."""

import time

import optuna
import pytest

from evalsets import load_evalset
from experiments import cost_table
from experiments.costs import PRIOR_SECONDS_PER_KCHAR
from experiments.study import StudyRunner, StudySpec
from pipelines import Components
from pipelines.chunking import ChunkingConfig
from pipelines.embedders import resolve_model

MINILM = "all-MiniLM-L6-v2"
SPACE = {"name": "costs", "dense_models": [MINILM, "none"], "chunkers": [{"kind": "whole"}],
         "lexical": {"tokenizers": ["english"]}, "fusion": {"kinds": ["rrf"]}}


def whole() -> ChunkingConfig:
    from pipelines.chunking import WholeChunking

    return WholeChunking()


def chunk_texts(corpus) -> list[str]:
    from pipelines.chunking import make_chunker

    return [c.text for c in make_chunker(whole()).chunk_all(corpus)]


def test_cost_table_counts_what_the_cache_holds_at_the_rate_measured_here(tiny_scifact, tmp_path):
    corpus = load_evalset(tiny_scifact).corpus
    components = Components(tmp_path / "cache.sqlite")
    [before] = cost_table([MINILM, "none"], corpus, whole(), components)
    assert before.cached == 0 and not before.measured and before.texts == len(corpus)
    assert before.cold_chars >= sum(len(d.text) for d in corpus)
    assert before.expected_seconds == pytest.approx(before.cold_chars / 1000 * PRIOR_SECONDS_PER_KCHAR)
    components.embedder(MINILM).embed(chunk_texts(corpus[: len(corpus) // 2]), "passage")
    seconds_per_text, _ = components.store.rate(resolve_model(MINILM).name)
    assert seconds_per_text > 0
    [after] = cost_table([MINILM], corpus, whole(), components)
    assert after.measured and 0 < after.cached < after.texts
    assert "cached" in after.line() and "measured here" in after.line()


def test_a_study_starts_cheap_and_does_not_start_a_cold_embedding_it_cannot_finish(tiny_scifact, tmp_path):
    spec = StudySpec(study_name="costs", evalset=str(tiny_scifact), space=SPACE, n_trials=6, seed=1)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    # this machine embeds slowly (as measured on a 2-core CPU for a large model): far more than the minute left
    runner.components.store.record_rate(resolve_model(MINILM).name, "passage", 10, 1000, 60.0)
    runner.abandon_at = time.time() + 60
    runner.run(n_trials=6)
    trials = sorted(runner.study.trials, key=lambda t: t.number)
    assert trials[0].params.get("dense_model") == "none" and trials[0].state == optuna.trial.TrialState.COMPLETE
    dense = [t for t in trials if t.params.get("dense_model") == MINILM]
    assert dense, "the sampler drew the dense model"
    for trial in dense:
        assert trial.state == optuna.trial.TrialState.PRUNED
        assert trial.user_attrs["abandoned"].startswith("cold embedding not started: all-MiniLM-L6-v2")
    assert runner.components.store.count() == 0, "not one batch of the cold embedding was started"


def test_models_the_cache_holds_come_right_after_bm25(tiny_scifact, tmp_path):
    spec = StudySpec(study_name="cached-first", evalset=str(tiny_scifact),
                     space={**SPACE, "dense_models": ["multilingual-e5-small", MINILM, "none"]}, n_trials=3, seed=1)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    runner.components.embedder(MINILM).embed(chunk_texts(runner.tune.corpus), "passage")  # cached beforehand
    assert runner.enqueue_first() == [{"dense_model": "none"}, {"dense_model": MINILM}]
    runner.run(n_trials=2)
    trials = sorted(runner.study.trials, key=lambda t: t.number)
    assert [t.params.get("dense_model") for t in trials[:2]] == ["none", MINILM]
    assert trials[1].user_attrs["counts"]["chunk_embeddings_computed"] == 0
