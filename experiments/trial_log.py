"""Every finished trial of a study into MLflow, exactly once, whichever process ran it.

The process that ran a trial logs it from an Optuna callback; :meth:`TrialLog.sync` logs the ones a
killed process never did. The storage decides what counts as finished, so MLflow never holds a trial
the study does not count.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
from pathlib import Path

import optuna

from experiments.objective import trial_folder
from experiments.storage import FINISHED
from experiments.tracking import StudyTracker


class TrialLog:
    def __init__(self, tracker: StudyTracker, storage: optuna.storages.BaseStorage, study: optuna.Study,
                 parent_run_id: str, folder: Path):
        self.tracker, self.storage, self.study = tracker, storage, study
        self.parent_run_id, self.folder = parent_run_id, folder

    def _log(self, trial: optuna.trial.FrozenTrial) -> None:
        """Log the trial with its files; once MLflow holds them, the local copy goes (kept when logging fails, so
        :meth:`sync` can log it later): a 48-hour loop writes some 80 KB of per-query results per trial on a
        100-query set, and two copies of each doubled what a long run leaves on disk."""
        folder = trial_folder(self.folder, trial.number)
        self.tracker.log_trial(self.parent_run_id, self.study.study_name, trial, folder)
        shutil.rmtree(folder, ignore_errors=True)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: log the trial this process just finished."""
        if trial.state not in FINISHED:
            return
        # under load another worker may have failed this trial as stale (missed heartbeats) and queued a retry;
        # the storage decides, so MLflow never holds a trial the study does not count
        if self.storage.get_trial(trial._trial_id).state in FINISHED:
            self._log(trial)

    def sync(self) -> int:
        """Log every finished trial that MLflow lacks (after a crash, say). Returns how many."""
        logged = self.tracker.logged_trials(self.study.study_name)
        missing = [t for t in self.study.get_trials(deepcopy=False, states=FINISHED)
                   if t.number not in logged and not its_worker_will_log(t)]
        for trial in missing:
            self._log(trial)
        return len(missing)


def its_worker_will_log(trial: optuna.trial.FrozenTrial) -> bool:
    """Another live worker finished this trial and is logging it now (don't log it twice).

    Same host: ask whether its process is alive. Another host: trust it for a while after the trial ended.
    """
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    ended = trial.datetime_complete or datetime.datetime.now()
    return (datetime.datetime.now() - ended).total_seconds() < 120
