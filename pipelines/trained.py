"""Models evolve trained itself: content-addressed folders under the project, named ``trained:<kind>-<hash12>``.

A trained model is a folder ``<root>/<id>/`` holding ``model/`` (the weights, in the format its kind loads) and
``manifest.json`` (kind, base model, licence, the training data summary, hyper-parameters, seed, time, the sha256 of
the weights alone as ``weights_sha256``, and ``sha256``, the model's hash). The hash covers the whole folder: the
manifest and every other file in it, by relative path and bytes (:func:`model_sha256`). It leaves out exactly two
things, both derived from the hash itself and so checked against it rather than hashed: the manifest's own ``id``
and ``sha256`` fields (the manifest is hashed as :func:`render_manifest` writes it without them, and the file must
hold exactly what :func:`render_manifest` writes, so no byte of it goes unchecked). The id is derived from that hash,
so a config naming a trained model names exactly those weights *and* that manifest (its base model, and through it
the licence the guard reads): a folder whose files no longer match its id is refused, and so is one holding anything
but ``manifest.json`` and ``model/`` (:data:`ENTRIES`, the only entries copied or restored). Folders are written to a
temporary name and renamed into place: a crash leaves no half model. The manifest's record of when and how long the
model trained (:data:`UNHASHED`) is left out, so the same training gives the same id.

Models trained before the hash covered the manifest (their manifest has no ``"hashed": "folder"``) are verified under
the old rule, where the id covers ``model/`` only, and only while their manifest is consistent: its id, kind and
``sha256`` are the folder's, the folder holds nothing else, the base fingerprint it records is that of the base model
it names, and the licence it records is that base's (an edited ``base_model`` that leaves either alone is refused).
Such a manifest is not hashed, so an edit of all three together cannot be told, nor can the decision log tell it
(it recorded the weights' hash): retrain a model whose origin matters (``evolve train``) to have it hashed whole. A
new manifest without the marker is no way around the rule: its id would then have to be the hash of its weights
alone, which names another model.

The root is given: a project's ``.evolve/models`` through its :class:`pipelines.catalog.ModelCatalog`
(``$EVOLVE_TRAINED_MODELS`` where a process was started with it).
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
ENTRIES = (MANIFEST, WEIGHTS)
"""Everything a model folder holds: what its hash covers, and all that copying or restoring one takes along."""
HASHED = ("hashed", "folder")
"""The manifest entry of a model whose id covers its whole folder (without it: the old rule, weights only)."""
DERIVED = ("id", "sha256")
"""Manifest fields derived from the hash itself, so left out of it (and checked against it)."""
UNHASHED = ("created", "training")
"""Manifest fields that say when and how long a model trained (a clock, a run's seconds and memory), left out of the
hash so the same training gives the same id; what the model is (kind, base model, licence, fingerprint, settings,
seed, data, weights) is all hashed."""
TrainedKind = Literal["adapter", "embedder", "reranker", "memory"]
KINDS: tuple[str, ...] = ("adapter", "embedder", "reranker", "memory")
ID_PATTERN = re.compile(r"trained:(adapter|embedder|reranker|memory)-([0-9a-f]{12})")


class TrainedModelError(KeyError):
    """A trained model that cannot be used: unknown id, missing folder, or weights that do not match their id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def is_trained(name: str | None) -> bool:
    return bool(name) and str(name).startswith(PREFIX)


def content_sha256(folder: Path) -> str:
    """sha256 over every file under ``folder``: relative path and bytes, in sorted order (a model's weights alone)."""
    return _files_sha256(hashlib.sha256(), folder, folder).hexdigest()


def _files_sha256(digest: Any, folder: Path, relative_to: Path, skip: Path | None = None) -> Any:
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p != skip):
        digest.update(path.relative_to(relative_to).as_posix().encode("utf-8") + b"\x00")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\x00")
    return digest


def render_manifest(manifest: dict[str, Any]) -> str:
    """A manifest as ``manifest.json`` holds it (the one way it is written, so re-rendering what was read gives the
    file's bytes back)."""
    return json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n"


def model_sha256(folder: Path, manifest: dict[str, Any]) -> str:
    """A model's hash: ``manifest`` (rendered without its :data:`DERIVED` fields) as ``manifest.json``, then every
    other file under ``folder``, each by relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    hashed = {k: v for k, v in manifest.items() if k not in DERIVED + UNHASHED}
    digest.update(MANIFEST.encode("utf-8") + b"\x00" + render_manifest(hashed).encode("utf-8") + b"\x00")
    return _files_sha256(digest, folder, folder, skip=folder / MANIFEST).hexdigest()


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

    @property
    def hashed_whole(self) -> bool:
        """False for a model trained before the hash covered its manifest (see the module's docstring)."""
        return self.manifest.get(HASHED[0]) == HASHED[1]


class TrainedModelStore:
    """The folder of trained models: save (content-addressed, atomic), get (verified once per process), list."""

    _verified: set[tuple[str, str, str, str]] = set()

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def save(self, kind: str, weights: Path, manifest: dict[str, Any]) -> TrainedModel:
        """Moves the folder ``weights`` into the store under the id of its whole content (weights and manifest);
        the same folder saved twice gives the same model (the first copy is kept)."""
        if kind not in KINDS:
            raise ValueError(f"unknown trained model kind {kind!r}: one of {', '.join(KINDS)}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        shutil.move(str(weights), staging / WEIGHTS)
        full = {**{k: v for k, v in manifest.items() if k not in DERIVED}, "kind": kind,
                "weights_sha256": content_sha256(staging / WEIGHTS), HASHED[0]: HASHED[1]}
        full = json.loads(render_manifest(full))  # as it will read back (``default=str`` values become strings)
        sha = model_sha256(staging, full)
        model_id = f"{PREFIX}{kind}-{sha[:12]}"
        full = {"id": model_id, **full, "sha256": sha}
        folder = self.root / self.folder_name(model_id)
        if folder.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
            return self.get(model_id)
        (staging / MANIFEST).write_text(render_manifest(full), encoding="utf-8")
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
        """The model ``model_id``, its folder checked against its id: once per process while nothing in it changes
        (any byte of the manifest, or the size or time of any file, and it is checked again)."""
        folder = self.root / self.folder_name(model_id)
        if not (folder / MANIFEST).is_file():
            raise TrainedModelError(f"trained model {model_id} is not in {self.root} (train it with `evolve train`, "
                                    f"or name the folder that holds it with --project-dir or {ROOT_ENV})")
        model, raw = _read(folder, model_id)
        if verify:
            key = (str(folder), model_id, hashlib.sha256(raw).hexdigest(), _stat_signature(folder))
            if key not in self._verified:
                _verify(model, raw)
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

    def copy_to(self, model_id: str, other: "TrainedModelStore", expected: str | None = None) -> TrainedModel:
        """The model in ``other`` too (for serving, archiving, restoring): only its :data:`ENTRIES` are copied (a
        stray file or folder beside them stays behind), and the copy is verified against its id, and against
        ``expected`` (the full sha256 it must have) when given, before it is renamed into place."""
        source = self.root / self.folder_name(model_id)
        target = other.root / self.folder_name(model_id)
        if not target.is_dir():
            if not (source / MANIFEST).is_file():
                raise TrainedModelError(f"trained model {model_id} is not in {self.root}")
            other.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=other.root))
            try:
                shutil.copy2(source / MANIFEST, staging / MANIFEST)
                if (source / WEIGHTS).is_dir():
                    shutil.copytree(source / WEIGHTS, staging / WEIGHTS)
                _check_expected(_verify(*_read(staging, model_id)), expected)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        model = other.get(model_id)
        _check_expected(model, expected)
        return model

    def with_bases(self, ids: list[str], fetch: Callable[[str, Path], Path] | None = None,
                   expected: dict[str, str] | None = None) -> tuple[dict[str, TrainedModel], list[str]]:
        """Every model in ``ids`` and the trained bases they were trained from (an adapter on a trained embedder
        needs both), read from this store and verified: (model by id, the ids fetched). Without ``fetch`` a missing
        model is a TrainedModelError; with it, ``fetch(model_id, scratch)`` puts the model into the scratch folder
        and returns a store root holding it (or raises TrainedModelError), and it is copied in (:meth:`copy_to`).
        ``expected`` (model id -> full sha256, from the decision log): a model it names must have that sha256,
        fetched or found here, and a model it does not name is never fetched."""
        models: dict[str, TrainedModel] = {}
        fetched, queue = [], list(ids)
        while queue:
            model_id = queue.pop(0)
            if model_id in models:
                continue
            try:
                model = self.get(model_id)
            except TrainedModelError:
                if fetch is None or (self.root / self.folder_name(model_id) / MANIFEST).is_file():
                    raise  # nothing to fetch with, or a model here that fails its check: never copied over
                want = None if expected is None else expected.get(model_id)
                if expected is not None and not want:
                    raise TrainedModelError(f"trained model {model_id} is not in {self.root}, and the decision log "
                                            "records no sha256 for it: refusing to fetch it unchecked") from None
                with tempfile.TemporaryDirectory() as scratch:
                    model = TrainedModelStore(fetch(model_id, Path(scratch))).copy_to(model_id, self, want)
                fetched.append(model_id)
            _check_expected(model, (expected or {}).get(model_id))
            models[model_id] = model
            if is_trained(model.base):
                queue.append(model.base)
        return models, fetched

    def ensure(self, ids: list[str], fetch: Callable[[str, Path], Path],
               expected: dict[str, str] | None = None) -> list[str]:
        """Every model in ``ids`` and its trained bases in this store, fetching what is missing (see
        :meth:`with_bases`). Returns the ids fetched."""
        return self.with_bases(ids, fetch, expected)[1]


def _read(folder: Path, model_id: str) -> tuple[TrainedModel, bytes]:
    """The model in ``folder`` (unverified) and its manifest's bytes."""
    raw = (folder / MANIFEST).read_bytes()
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise TrainedModelError(f"trained model {model_id}: {folder / MANIFEST} is not a JSON object; refusing to "
                                "use it")
    return TrainedModel(model_id, folder, manifest), raw


def _verify(model: TrainedModel, raw: bytes) -> TrainedModel:
    """``model`` when its folder is what its id names; else a TrainedModelError saying what differs."""
    problem = _mismatch(model, raw)
    if problem:
        raise TrainedModelError(f"trained model {model.model_id}: {problem}; refusing to use it")
    return model


def _check_expected(model: TrainedModel, expected: str | None) -> None:
    if expected and model.sha256 != expected:
        raise TrainedModelError(f"trained model {model.model_id} has sha256 {model.sha256}, but the decision log "
                                f"records {expected} for it: not the model that was evaluated; refusing it")


def _stat_signature(folder: Path) -> str:
    """Every path under ``folder`` with its size and modification time: what changes when any file does."""
    entries = []
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        entries.append(f"{path.relative_to(folder).as_posix()}\x00{stat.st_size}\x00{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()


def _mismatch(model: TrainedModel, raw: bytes) -> str | None:
    """Why the folder is not the model its id names (None: it is), by the rule its manifest was written under."""
    manifest, folder, model_id = model.manifest, model.folder, model.model_id
    match = ID_PATTERN.fullmatch(model_id)
    if match is None:
        return "not a trained model id"
    stray = sorted(p.name for p in folder.iterdir() if p.name not in ENTRIES)
    if stray:
        return (f"{folder} holds {', '.join(stray)} besides {' and '.join(ENTRIES)}, which no model evolve trains "
                "has: it was changed since it was trained")
    if manifest.get("id") != model_id or manifest.get("kind") != match.group(1):
        return (f"its manifest names id {manifest.get('id')!r} and kind {manifest.get('kind')!r}: it was changed "
                "since it was trained")
    if model.hashed_whole:
        if raw != render_manifest(manifest).encode("utf-8"):
            return f"its manifest {folder / MANIFEST} was rewritten since it was trained (not as evolve writes it)"
        sha = model_sha256(folder, manifest)
        if sha != manifest.get("sha256") or not model_id.endswith(sha[:12]):
            return (f"its manifest or weights in {folder} changed since it was trained (sha256 {sha[:12]}...; the "
                    f"manifest names base model {manifest.get('base_model')!r})")
        return None
    sha = content_sha256(model.weights)
    if sha != manifest.get("sha256") or not model_id.endswith(sha[:12]):
        return f"its weights in {model.weights} changed since it was trained (sha256 {sha[:12]}...)"
    return _unhashed_manifest_mismatch(manifest)


def _unhashed_manifest_mismatch(manifest: dict[str, Any]) -> str | None:
    """For a model trained before the hash covered its manifest: the base fingerprint it recorded must name the base
    model it names (its recorded licence is checked where licences are read, :func:`check_recorded_licence`)."""
    base = str(manifest.get("base_model"))
    fingerprint = manifest.get("base_fingerprint")
    if fingerprint is not None and str(fingerprint).split("|")[0] not in (base, f"remote:{base}"):
        return (f"it was trained before manifests were hashed, and its manifest is not consistent: it names base "
                f"model {base!r} but records the fingerprint of {str(fingerprint).split('|')[0]!r}; it was changed "
                "since it was trained (retrain it with `evolve train` to have it hashed whole)")
    return None


def check_recorded_licence(model: TrainedModel, licence_of: Callable[[str], str]) -> TrainedModel:
    """``model``, unless it was trained before manifests were hashed and the licence its manifest records is not
    its base model's (``licence_of(base)``, from the model catalog that resolves names; a trained base's licence is
    its own chain's, checked when that model is resolved): then a TrainedModelError."""
    manifest, base = model.manifest, model.base
    if model.hashed_whole or is_trained(base) or manifest.get("licence") is None:
        return model
    try:
        licence = licence_of(base)
    except (KeyError, ValueError) as err:
        problem = (f"it was trained before manifests were hashed, and the base model its manifest names ({base!r}) "
                   f"cannot be resolved ({err}): retrain it with `evolve train`")
    else:
        if manifest["licence"] == licence:
            return model
        problem = (f"it was trained before manifests were hashed, and its manifest is not consistent: it names base "
                   f"model {base!r}, whose licence is {licence!r}, but records licence {manifest['licence']!r}; it "
                   "was changed since it was trained (retrain it with `evolve train` to have it hashed whole)")
    raise TrainedModelError(f"trained model {model.model_id}: {problem}; refusing to use it")
