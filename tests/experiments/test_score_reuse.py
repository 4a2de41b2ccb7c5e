"""Compute once across trials and studies: a pipeline scored on these queries is read back, not searched again;
the champion is trial 0 of a study and every candidate's per-query tuning differences from it are kept."""

import pytest

import experiments.objective as objective_module
from experiments.study import ROLE_ATTR, StudyRunner, StudySpec
from pipelines import PipelineConfig, Retriever

BM25_SPACE = {
    "name": "bm25",
    "dense_models": ["none"],
    "chunkers": [{"kind": "whole"}],
    "lexical": {"tokenizers": ["english", "regex"], "k1": {"low": 0.8, "high": 2.0}},
    "fusion": {"kinds": ["rrf"]},
}


@pytest.fixture
def builds(monkeypatch):
    """How many retrievers the objective built (each build is a retrieval: chunk, embed, index)."""
    built = []

    class Counting(Retriever):
        def build(self, *args, **kwargs):
            built.append(self.config.behaviour_sha256())
            return super().build(*args, **kwargs)

    monkeypatch.setattr(objective_module, "Retriever", Counting)
    return built


def _runner(evalset, tmp_path, name, space=BM25_SPACE, trials=4):
    spec = StudySpec(study_name=name, evalset=str(evalset), space=space, n_trials=trials, seed=5, prune=False)
    return StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)


def test_a_repeated_pipeline_reuses_its_scores_and_runs_no_retrieval(tiny_scifact, tmp_path, builds):
    first = _runner(tiny_scifact, tmp_path, "first")
    first.run()
    assert builds, "the first study searched"
    assert first.reused_count() == 0
    built_first = len(builds)
    second = _runner(tiny_scifact, tmp_path, "second")  # same space, same seed: the same pipelines again
    second.run()
    assert len(builds) == built_first, "a repeat built a retriever: retrieval ran again"
    assert second.reused_count() == 4
    values = sorted(t.values[0] for t in first.study.trials)
    assert sorted(t.values[0] for t in second.study.trials) == values
    for trial in second.study.trials:
        assert trial.user_attrs["reused_scores"] is True
        assert trial.user_attrs["counts"]["reused_query_scores"] == trial.user_attrs["metrics"]["queries"]
        assert len(trial.user_attrs["per_query"]) == trial.user_attrs["metrics"]["queries"]


def test_a_name_does_not_make_a_pipeline_new_but_a_setting_does():
    config = PipelineConfig.model_validate({"name": "a", "lexical": {"tokenizer": "english"},
                                            "fusion": {"kind": "none"}})
    renamed = config.model_copy(update={"name": "b"})
    assert renamed.behaviour_sha256() == config.behaviour_sha256()
    assert renamed.sha256() != config.sha256()  # decisions still name the exact config
    changed = PipelineConfig.model_validate({"name": "a", "lexical": {"tokenizer": "english", "k1": 1.0},
                                             "fusion": {"kind": "none"}})
    assert changed.behaviour_sha256() != config.behaviour_sha256()


def test_the_champion_is_trial_0_and_candidates_are_compared_with_it_query_by_query(tiny_scifact, tmp_path,
                                                                                   builds):
    champion = PipelineConfig.model_validate({"name": "champion", "lexical": {"tokenizer": "regex", "k1": 0.3,
                                                                              "b": 0.1}, "fusion": {"kind": "none"}})
    runner = _runner(tiny_scifact, tmp_path, "with-champion", trials=5)
    runner.run(champion=champion)
    zero = min(runner.study.trials, key=lambda t: t.number)
    assert zero.number == 0 and zero.user_attrs[ROLE_ATTR] == "champion"
    assert PipelineConfig.model_validate(zero.user_attrs["config"]).behaviour_sha256() == champion.behaviour_sha256()
    assert runner.champion_trial().number == 0
    assert runner.tuning_differences(champion) == [0.0] * len(runner.query_order)
    best, value = runner.best()
    differences = runner.tuning_differences(best)
    assert len(differences) == len(runner.query_order)
    assert sum(differences) / len(differences) == pytest.approx(value - zero.values[0], abs=1e-5)
