"""Where one project's model names resolve: its trained models and its served-model registry file.

A :class:`ModelCatalog` is a value, built once by whoever knows the project (the CLI, from ``--project-dir``) and
passed down to what loads models (``Components``, the rerankers, training, the guard's registry), so two projects
in one process resolve the same name to their own models. The process environment is only read, never written:
``from_env`` is the catalog of a process started with the variables (a worker, a server unit, a process the CLI
started with :meth:`ModelCatalog.environ` in its ``env``), else the working directory's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipelines.remote import REGISTRY_ENV, REGISTRY_FILE, RegistryError, RemoteModel, load_registry
from pipelines.trained import ROOT_ENV, TrainedModelStore

DEFAULT_TRAINED = Path(".evolve") / "models"
"""The trained-model folder below a working directory (a project's is ``<project>/.evolve/models``)."""


@dataclass(frozen=True)
class ModelCatalog:
    """The trained-model folder and the served-model registry file (None: no model is served) model names
    resolve to."""

    trained_root: Path
    registry: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> ModelCatalog:
        """``$EVOLVE_TRAINED_MODELS`` and ``$EVOLVE_MODEL_REGISTRY`` where set, else the working directory's
        ``.evolve/models`` and ``models.yaml`` (when it exists)."""
        here = Path.cwd() if cwd is None else cwd
        return cls.for_project(here / DEFAULT_TRAINED, here / REGISTRY_FILE, environ)

    @classmethod
    def for_project(cls, trained_root: Path, registry: Path, environ: Mapping[str, str] | None = None
                    ) -> ModelCatalog:
        """A project's folders (the registry file only when it exists); a variable the user set still wins."""
        env = os.environ if environ is None else environ
        named = env.get(REGISTRY_ENV)
        return cls(Path(env.get(ROOT_ENV) or trained_root),
                   Path(named) if named else registry if registry.is_file() else None)

    def environ(self) -> dict[str, str]:
        """The variables that make :meth:`from_env` in a child process give this catalog: for the ``env`` of a
        process this one starts (``{**os.environ, **catalog.environ()}``), never for this process's own."""
        out = {ROOT_ENV: str(self.trained_root.resolve())}
        if self.registry is not None:
            out[REGISTRY_ENV] = str(self.registry.resolve())
        return out

    def trained(self) -> TrainedModelStore:
        """The store of this catalog's trained models."""
        return TrainedModelStore(self.trained_root)

    def served(self) -> dict[str, RemoteModel]:
        """The served models by name (empty without a registry file; re-read when the file changes)."""
        if self.registry is None:
            return {}
        if not self.registry.is_file():
            raise RegistryError(f"{self.registry}: model registry file not found (${REGISTRY_ENV})")
        return _cached(str(self.registry), self.registry.stat().st_mtime)

    def served_model(self, name: str | None) -> RemoteModel | None:
        return self.served().get(name) if name else None


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float) -> dict[str, RemoteModel]:
    return load_registry(path)


def catalog_or_env(catalog: ModelCatalog | None) -> ModelCatalog:
    """``catalog``, else the one this process was started with (:meth:`ModelCatalog.from_env`)."""
    return catalog if catalog is not None else ModelCatalog.from_env()
