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
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from experiments import StudyPlaces
    from pipelines import ModelCatalog


class Below:
    """A path attribute of a layout class: ``parts`` below the path another attribute (``base``) names, so each file of
    the layout is one line, and moving a folder moves everything below it."""

    def __init__(self, base: str, *parts: str):
        self.base, self.parts = base, parts

    @overload
    def __get__(self, obj: None, owner: type) -> Below: ...

    @overload
    def __get__(self, obj: object, owner: type) -> Path: ...

    def __get__(self, obj: object | None, owner: type) -> Below | Path:
        return self if obj is None else getattr(obj, self.base).joinpath(*self.parts)


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @classmethod
    def of(cls, project_dir: Path | str) -> "ProjectPaths":
        return cls(Path(project_dir).resolve())

    # --- chosen by people ---------------------------------------------------------------------------
    champion = Below("root", "champion.yaml")

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
    mlruns = Below("root", "mlruns")
    mlflow_artifacts = Below("mlruns", "artifacts")

    def tracking_uri(self, given: str | None = None) -> str:
        """The given tracking URI (a server on a cluster), else the project's SQLite store in mlruns/."""
        from experiments import sqlite_tracking_uri

        return given or sqlite_tracking_uri(self.mlruns)

    # --- evolve's state -----------------------------------------------------------------------------
    state = Below("root", ".evolve")
    decision_log = Below("state", "audit.duckdb")

    @property
    def embedding_cache(self) -> Path:
        """EVOLVE_EMBEDDING_CACHE (one cache shared by several projects), else in the project."""
        override = os.environ.get("EVOLVE_EMBEDDING_CACHE")
        return Path(override) if override else self.state / "cache" / "embeddings.sqlite"

    score_cache = Below("state", "cache", "scores.sqlite")
    """Per-query scores of every pipeline this project scored (a repeat reads them back, searches nothing)."""

    @property
    def trained_models(self) -> Path:
        """Models evolve trained (`evolve train`), content-addressed; $EVOLVE_TRAINED_MODELS overrides."""
        override = os.environ.get("EVOLVE_TRAINED_MODELS")
        return Path(override) if override else self.state / "models"

    model_registry = Below("root", "models.yaml")
    """Models served over the network (vLLM, llama.cpp, TEI, Ollama endpoints): `models.yaml` in the project."""
    optuna = Below("state", "optuna.db")

    @property
    def catalog(self) -> ModelCatalog:
        """What this project's model names resolve to (its trained models, its `models.yaml`), for everything that
        loads models here; $EVOLVE_TRAINED_MODELS and $EVOLVE_MODEL_REGISTRY, where set, still win."""
        from pipelines import ModelCatalog

        return ModelCatalog.for_project(self.trained_models, self.model_registry)

    def optuna_url(self, given: str | None = None) -> str:
        """The given Optuna storage URL (PostgreSQL shared by workers), else the project's SQLite file."""
        from experiments import sqlite_storage

        return given or sqlite_storage(self.optuna)

    studies = Below("state", "studies")

    def study_places(self, tracking_uri: str | None = None) -> StudyPlaces:
        """Where this project's studies write: their folders, MLflow, the embedding and score caches."""
        from experiments import StudyPlaces

        return StudyPlaces(self.studies, self.tracking_uri(tracking_uri), self.mlflow_artifacts, self.embedding_cache,
                           self.score_cache, self.catalog)

    results = Below("state", "results")
    feedback_db = Below("state", "feedback.duckdb")
    server_info = Below("state", "server.json")
    llm_cache = Below("state", "llm_cache.duckdb")
    judge_calibration = Below("state", "judge_calibration.duckdb")
    """Agreement of each judge model with human labels (`evolve judge calibrate`), read by the guard step."""
    llm_log = Below("state", "local-llm.log")
    agent = Below("state", "agent")
    """The loop's folder: checkpoints, live status, the stop request, the current run, summaries."""
