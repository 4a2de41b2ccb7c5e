"""Models evolve trained itself: content-addressed folders under the project, named ``trained:<kind>-<hash12>``.

A trained model is a folder ``<root>/<id>/`` holding ``model/`` (the weights, in the format its kind loads) and
``manifest.json`` (kind, base model, licence, the training data summary, hyper-parameters, seed, time, and the
sha256 of every weight file). The id is derived from that content hash, so a config naming a trained model names
exactly those weights, embedding-cache keys carry the hash, and a folder whose files no longer match its id is
refused. Folders are written to a temporary name and renamed into place: a crash leaves no half model.

The root is ``$EVOLVE_TRAINED_MODELS`` (the CLI sets it to the project's ``.evolve/models``, so every process of a
project, workers and the server too, sees the same models), else ``./.evolve/models``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

PREFIX = "trained:"
ROOT_ENV = "EVOLVE_TRAINED_MODELS"
MANIFEST = "manifest.json"
WEIGHTS = "model"
TrainedKind = Literal["adapter", "embedder", "reranker", "memory"]
KINDS: tuple[str, ...] = ("adapter", "embedder", "reranker", "memory")
ID_PATTERN = re.compile(r"trained:(adapter|embedder|reranker|memory)-([0-9a-f]{12})")


class TrainedModelError(KeyError):
    """A trained model that cannot be used: unknown id, missing folder, or weights that do not match their id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def is_trained(name: str | None) -> bool:
    return bool(name) and str(name).startswith(PREFIX)


def trained_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or Path.cwd() / ".evolve" / "models")


def use_trained_root(path: Path | str) -> None:
    """Makes ``path`` this process's (and its children's) trained-model folder."""
    os.environ[ROOT_ENV] = str(Path(path).resolve())


def content_sha256(folder: Path) -> str:
    """sha256 over every file under ``folder``: relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\x00")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True)
class TrainedModel:
    """One stored model: where it is and what its manifest says."""

    model_id: str
    folder: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS

    @property
    def base(self) -> str:
        return str(self.manifest["base_model"])

    @property
    def licence(self) -> str:
        return str(self.manifest.get("licence") or "unknown")

    @property
    def sha256(self) -> str:
        return str(self.manifest["sha256"])


class TrainedModelStore:
    """The folder of trained models: save (content-addressed, atomic), get (verified once per process), list."""

    _verified: set[tuple[str, str]] = set()

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else trained_root()

    def save(self, kind: str, weights: Path, manifest: dict[str, Any]) -> TrainedModel:
        """Moves the folder ``weights`` into the store under its content id; the same weights saved twice give the
        same model (the first copy is kept)."""
        if kind not in KINDS:
            raise ValueError(f"unknown trained model kind {kind!r}: one of {', '.join(KINDS)}")
        sha = content_sha256(weights)
        model_id = f"{PREFIX}{kind}-{sha[:12]}"
        folder = self.root / self.folder_name(model_id)
        if folder.is_dir():
            shutil.rmtree(weights, ignore_errors=True)
            return self.get(model_id)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        shutil.move(str(weights), staging / WEIGHTS)
        full = {**manifest, "id": model_id, "kind": kind, "sha256": sha}
        (staging / MANIFEST).write_text(json.dumps(full, indent=2, ensure_ascii=False, default=str) + "\n",
                                        encoding="utf-8")
        os.replace(staging, folder)
        return TrainedModel(model_id, folder, full)

    @staticmethod
    def folder_name(model_id: str) -> str:
        match = ID_PATTERN.fullmatch(model_id)
        if not match:
            raise TrainedModelError(f"{model_id!r} is not a trained model id (trained:<{'|'.join(KINDS)}>-"
                                    f"<12 hex digits>)")
        return f"{match.group(1)}-{match.group(2)}"

    def get(self, model_id: str, verify: bool = True) -> TrainedModel:
        folder = self.root / self.folder_name(model_id)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise TrainedModelError(f"trained model {model_id} is not in {self.root} (train it with `evolve train`, "
                                    f"or set {ROOT_ENV} to the folder that holds it)")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        model = TrainedModel(model_id, folder, manifest)
        key = (str(folder), model_id)
        if verify and key not in self._verified:
            sha = content_sha256(model.weights)
            if sha != manifest.get("sha256") or not model_id.endswith(sha[:12]):
                raise TrainedModelError(f"trained model {model_id}: its weights in {model.weights} changed since it "
                                        f"was trained (sha256 {sha[:12]}...); refusing to use them")
            self._verified.add(key)
        return model

    def list(self) -> list[TrainedModel]:
        if not self.root.is_dir():
            return []
        models = []
        for folder in sorted(self.root.iterdir()):
            if (folder / MANIFEST).is_file() and not folder.name.startswith("."):
                manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
                models.append(TrainedModel(str(manifest["id"]), folder, manifest))
        return sorted(models, key=lambda m: str(m.manifest.get("created", "")))

    def copy_to(self, model_id: str, other: "TrainedModelStore") -> TrainedModel:
        """The model in ``other`` too (for serving or archiving elsewhere), copied whole and re-verified."""
        model = self.get(model_id)
        target = other.root / self.folder_name(model_id)
        if not target.is_dir():
            other.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=other.root))
            shutil.copytree(model.folder, staging, dirs_exist_ok=True)
            os.replace(staging, target)
        return other.get(model_id)

    def with_bases(self, ids: list[str], fetch: Callable[[str, Path], Path] | None = None
                   ) -> tuple[dict[str, TrainedModel], list[str]]:
        """Every model in ``ids`` and the trained bases they were trained from (an adapter on a trained embedder
        needs both), read from this store and verified: (model by id, the ids fetched). Without ``fetch`` a missing
        model is a TrainedModelError; with it, ``fetch(model_id, scratch)`` puts the model into the scratch folder
        and returns a store root holding it (or raises TrainedModelError), and it is copied in and verified."""
        models: dict[str, TrainedModel] = {}
        fetched, queue = [], list(ids)
        while queue:
            model_id = queue.pop(0)
            if model_id in models:
                continue
            try:
                model = self.get(model_id)
            except TrainedModelError:
                if fetch is None:
                    raise
                with tempfile.TemporaryDirectory() as scratch:
                    model = TrainedModelStore(fetch(model_id, Path(scratch))).copy_to(model_id, self)
                fetched.append(model_id)
            models[model_id] = model
            if is_trained(model.base):
                queue.append(model.base)
        return models, fetched

    def ensure(self, ids: list[str], fetch: Callable[[str, Path], Path]) -> list[str]:
        """Every model in ``ids`` and its trained bases in this store, fetching what is missing (see
        :meth:`with_bases`). Returns the ids fetched."""
        return self.with_bases(ids, fetch)[1]
