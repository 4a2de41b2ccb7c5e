"""A trial another process failed as stale (its heartbeat was missed on a loaded node) does not end the process
that ran it: Optuna refuses to record its result twice, and the runner goes on with the next trial until the
study holds its target."""

from __future__ import annotations

import optuna

from experiments.study import StudyRunner, StudySpec

BM25_SPACE = {"name": "bm25", "dense_models": ["none"], "chunkers": [{"kind": "whole"}],
              "lexical": {"tokenizers": ["english", "regex"]}, "fusion": {"kinds": ["rrf"]}}


def test_a_trial_failed_by_another_process_is_not_the_end_of_this_one(tiny_scifact, tmp_path):
    spec = StudySpec(study_name="taken-back", evalset=str(tiny_scifact), space=BM25_SPACE, n_trials=3, seed=1,
                     prune=False)
    runner = StudyRunner(spec, f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path)
    taken: list[int] = []

    class TakenBackOnce:
        """The real objective; its first trial is failed by "another process" while it runs."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def __call__(self, trial: optuna.Trial) -> float:
            value = self.real(trial)
            if not taken:  # what another worker's fail_stale_trials does to a trial whose heartbeat it found stale
                runner.study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
                taken.append(trial.number)
            return value

    runner.objective = TakenBackOnce(runner.objective)
    runner.run()
    states = [t.state for t in runner.study.get_trials(deepcopy=False)]
    assert taken == [0] and states[0] == optuna.trial.TrialState.FAIL
    assert runner.finished_count() == 3  # the target, reached after the trial taken back
