"""Every file evolve keeps for a project, named once.

The lower layers take explicit paths; this is the only place that knows the project's layout:

    <project>/champion.yaml       the audited champion, written from the decision log
    <project>/default.yaml        optional: the champion before any approval (else the packaged default)
    <project>/policy.yaml         optional: the project's policy (else $EVOLVE_POLICY, else the packaged one)
    <project>/mlruns/             MLflow: mlflow.db (tracking + registry), artifacts/
    <project>/.evolve/            evolve's own state (below; trained models in .evolve/models/)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines import ModelCatalog


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @classmethod
    def of(cls, project_dir: Path | str) -> "ProjectPaths":
        return cls(Path(project_dir).resolve())

    # --- chosen by people ---------------------------------------------------------------------------
    @property
    def champion(self) -> Path:
        return self.root / "champion.yaml"

    @property
    def default_config(self) -> Path | None:
        path = self.root / "default.yaml"
        return path if path.is_file() else None

    @property
    def policy(self) -> Path | None:
        """$EVOLVE_POLICY, else <project>/policy.yaml when it exists (None: the packaged policy)."""
        if os.environ.get("EVOLVE_POLICY"):
            return Path(os.environ["EVOLVE_POLICY"])
        path = self.root / "policy.yaml"
        return path if path.is_file() else None

    # --- MLflow -------------------------------------------------------------------------------------
    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlruns / "artifacts"

    def tracking_uri(self, given: str | None = None) -> str:
        """The given tracking URI (a server on a cluster), else the project's SQLite store in mlruns/."""
        from experiments import sqlite_tracking_uri

        return given or sqlite_tracking_uri(self.mlruns)

    # --- evolve's state -----------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return self.root / ".evolve"

    @property
    def decision_log(self) -> Path:
        return self.state / "audit.duckdb"

    @property
    def embedding_cache(self) -> Path:
        """EVOLVE_EMBEDDING_CACHE (one cache shared by several projects), else in the project."""
        override = os.environ.get("EVOLVE_EMBEDDING_CACHE")
        return Path(override) if override else self.state / "cache" / "embeddings.sqlite"

    @property
    def score_cache(self) -> Path:
        """Per-query scores of every pipeline this project scored (a repeat reads them back, searches nothing)."""
        return self.state / "cache" / "scores.sqlite"

    @property
    def trained_models(self) -> Path:
        """Models evolve trained (`evolve train`), content-addressed; $EVOLVE_TRAINED_MODELS overrides."""
        override = os.environ.get("EVOLVE_TRAINED_MODELS")
        return Path(override) if override else self.state / "models"

    @property
    def model_registry(self) -> Path:
        """Models served over the network (vLLM, llama.cpp, TEI, Ollama endpoints): `models.yaml` in the project."""
        return self.root / "models.yaml"

    @property
    def catalog(self) -> ModelCatalog:
        """What this project's model names resolve to (its trained models, its `models.yaml`), for everything that
        loads models here; $EVOLVE_TRAINED_MODELS and $EVOLVE_MODEL_REGISTRY, where set, still win."""
        from pipelines import ModelCatalog

        return ModelCatalog.for_project(self.trained_models, self.model_registry)

    @property
    def optuna(self) -> Path:
        return self.state / "optuna.db"

    def optuna_url(self, given: str | None = None) -> str:
        """The given Optuna storage URL (PostgreSQL shared by workers), else the project's SQLite file."""
        from experiments import sqlite_storage

        return given or sqlite_storage(self.optuna)

    @property
    def studies(self) -> Path:
        return self.state / "studies"

    def study_places(self, tracking_uri: str | None = None) -> Any:
        """Where this project's studies write: their folders, MLflow, the embedding and score caches."""
        from experiments import StudyPlaces

        return StudyPlaces(self.studies, self.tracking_uri(tracking_uri), self.mlflow_artifacts, self.embedding_cache,
                           self.score_cache, self.catalog)

    @property
    def results(self) -> Path:
        return self.state / "results"

    @property
    def feedback_db(self) -> Path:
        return self.state / "feedback.duckdb"

    @property
    def server_info(self) -> Path:
        return self.state / "server.json"

    @property
    def llm_cache(self) -> Path:
        return self.state / "llm_cache.duckdb"

    @property
    def judge_calibration(self) -> Path:
        """Agreement of each judge model with human labels (`evolve judge calibrate`), read by the guard step."""
        return self.state / "judge_calibration.duckdb"

    @property
    def llm_log(self) -> Path:
        return self.state / "local-llm.log"

    @property
    def agent(self) -> Path:
        """The loop's folder: checkpoints, live status, the stop request, the current run, summaries."""
        return self.state / "agent"
