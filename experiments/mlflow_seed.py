"""A new project's MLflow SQLite store, copied from a migrated empty store instead of migrated again.

MLflow creates a SQLite store by running its whole chain of schema migrations, 5-20 s of CPU on a small machine, and
evolve makes one per project (the first command in a new project pays it; a test suite pays it in every test that
makes a project). The empty store is the same for every project of one MLflow version but for the Default
experiment's artifact location (the working directory's ./mlruns/0 at creation), so it is migrated once per MLflow
version into ``~/.cache/evolve`` and copied, with that location rewritten as MLflow would have written it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

TEMPLATE_ENV = "EVOLVE_MLFLOW_TEMPLATE_DIR"


def template_dir() -> Path:
    """Where the migrated empty stores are kept: $EVOLVE_MLFLOW_TEMPLATE_DIR, else ~/.cache/evolve/mlflow."""
    override = os.environ.get(TEMPLATE_ENV)
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evolve" / "mlflow"


def _template() -> Path:
    """The migrated empty store of the installed MLflow, made on first use (atomically: concurrent makers agree)."""
    folder = template_dir()
    path = folder / f"empty-{version('mlflow')}.db"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        from mlflow import MlflowClient

        made = Path(scratch) / "mlflow.db"
        MlflowClient(f"sqlite:///{made}").search_experiments()  # creates and migrates the tables
        os.replace(made, path)
    return path


def seed_sqlite_store(db: Path) -> bool:
    """Creates ``db`` (absent) as a copy of the migrated empty store; False where that is not possible (no cache
    folder, another process made ``db`` first), and MLflow then creates or opens it itself."""
    try:
        template = _template()
        with tempfile.NamedTemporaryFile(dir=db.parent, prefix=".mlflow-seed-", delete=False) as handle:
            staged = Path(handle.name)
        try:
            shutil.copyfile(template, staged)
            shutil.copymode(template, staged)  # the permissions MLflow's own file gets, not the temp file's 0600
            with sqlite3.connect(staged) as connection:
                now = int(time.time() * 1000)
                connection.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                                   "last_update_time = ? WHERE experiment_id = 0",
                                   (os.path.abspath(os.path.join("mlruns", "0")), now, now))
            connection.close()
            os.link(staged, db)  # fails where db appeared meanwhile: that one stays
            return True
        finally:
            staged.unlink(missing_ok=True)
    except (OSError, sqlite3.Error):
        return False
