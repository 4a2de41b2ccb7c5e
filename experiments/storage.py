"""Where studies live: Optuna's RDB storage with heartbeats, and what can be read back from it alone.

A study keeps its spec (``SPEC_ATTR``) in its user attrs, so a worker on another machine rebuilds the
same objective from the storage; ``CLOSED_ATTR`` tells workers that follow the storage to leave it.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Any

import optuna

SPEC_ATTR = "evolve.spec"
CLOSED_ATTR = "evolve.closed"
"""Set when the process that owns a study is done with it (workers following the storage skip it)."""
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
"""Trial states a study counts as done (pruned trials count: they used their budget)."""


def sqlite_storage(path: Path) -> str:
    """The URL of a SQLite Optuna storage at ``path`` (its folder is created)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class HeartbeatStorage(optuna.storages.RDBStorage):
    """RDB storage whose stale-trial check also covers trials that never got a heartbeat.

    A process killed between Optuna's ask (the trial row) and its first heartbeat leaves a RUNNING
    trial with no heartbeat row, and Optuna's check skips those, so it stayed RUNNING forever. Here it
    is stale once older than the grace period, and Optuna fails (and retries) it before the next trial
    like any other stale trial.
    """

    def orphaned_trial_ids(self, study_id: int) -> list[int]:
        import sqlalchemy

        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        cutoff = datetime.datetime.now() - datetime.timedelta(seconds=grace)  # datetime_start is the client's now
        old = [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False,
                                                        states=(optuna.trial.TrialState.RUNNING,))
               if t.datetime_start is not None and t.datetime_start < cutoff]
        if not old:
            return []
        query = sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids").bindparams(
            sqlalchemy.bindparam("ids", expanding=True))
        with self.engine.connect() as connection:
            beating = {row[0] for row in connection.execute(query, {"ids": old})}
        return [trial_id for trial_id in old if trial_id not in beating]

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [trial_id for trial_id in self.orphaned_trial_ids(study_id) if trial_id not in stale]


def open_storage(url: str, heartbeat: int | None = None, grace: int | None = None) -> optuna.storages.BaseStorage:
    """RDB storage with heartbeats: a trial whose process died is failed and retried once with its params.

    A trial is stale after ``grace`` seconds without a heartbeat (EVOLVE_OPTUNA_HEARTBEAT / _GRACE
    override the 10 s / 60 s defaults), or, if it never got one, ``grace`` seconds after it started.
    """
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    heartbeat = heartbeat or int(os.environ.get("EVOLVE_OPTUNA_HEARTBEAT", 10))
    grace = grace or int(os.environ.get("EVOLVE_OPTUNA_GRACE", 60))
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return HeartbeatStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                                    grace_period=grace,
                                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
        except (IntegrityError, ProgrammingError, OperationalError):
            # processes starting together race to create the schema (PostgreSQL: duplicate type); the loser retries
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials a study counts as done, whichever process ran them."""
    return study.get_trials(deepcopy=False, states=FINISHED)


def _studies(storage: optuna.storages.BaseStorage) -> list[Any]:
    """Summaries of every study in the storage, oldest first."""
    return optuna.get_all_study_summaries(storage, include_best_trial=False)


def open_studies(storage_url: str) -> list[str]:
    """Studies with a stored spec and a trial target they have not reached, newest first."""
    storage = open_storage(storage_url)
    names = []
    for summary in reversed(_studies(storage)):
        spec = summary.user_attrs.get(SPEC_ATTR)
        if not spec or not spec.get("n_trials") or summary.user_attrs.get(CLOSED_ATTR):
            continue
        if len(finished(optuna.load_study(study_name=summary.study_name, storage=storage))) < spec["n_trials"]:
            names.append(summary.study_name)
    return names


def finished_trials(storage_url: str, name_prefix: str = "") -> int:
    """Finished trials of every study whose name starts with ``name_prefix`` (e.g. all studies of one loop run),
    from the storage alone: what a process that holds no runner (a hard stop) can still count."""
    storage = open_storage(storage_url)
    return sum(len(finished(optuna.load_study(study_name=summary.study_name, storage=storage)))
               for summary in _studies(storage) if summary.study_name.startswith(name_prefix))


def stored_spec(study_name: str, storage_url: str, wait_seconds: float = 0.0) -> dict[str, Any]:
    """The spec a study was created with, waiting up to ``wait_seconds`` for the study to appear (a worker may
    start before `evolve tune`). KeyError when there is none by then."""
    storage = open_storage(storage_url)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
            if SPEC_ATTR in study.user_attrs:
                return dict(study.user_attrs[SPEC_ATTR])
        except KeyError:
            pass
        if time.monotonic() >= deadline:
            raise KeyError(f"no study named {study_name!r} in {storage_url}")
        time.sleep(1.0)
