"""Which weights answer behind an endpoint's name: fixed probe inputs, their outputs stored at first contact and
compared at every start.

A server can swap the weights behind the same model name (a new checkpoint deployed under ``bge-m3``). Vectors of
the old weights must then never mix with the new ones in the cache, nor cached rerank scores with new scores, so
each process probes once before its first use: outputs within ``fingerprint_tolerance`` of the stored ones are the
same weights (their fingerprint, part of every cache key, is reused); anything else is refused with
:class:`RemoteModelChanged` until the entry's ``revision`` is raised, which starts a new fingerprint.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np

from pipelines.remote.client import RemoteError
from pipelines.remote.registry import RemoteModel

PROBE_TEXTS = ("evolve probe: retrieval quality is measured on held-back queries.",
               "검색 품질은 보류된 질문으로 측정합니다.",
               "0 1 2 3 4 5 6 7 8 9 + - * / = ( ) [ ] { } < > ? !")
PROBE_QUERY = "how is retrieval quality measured?"
log = logging.getLogger("evolve.remote")


class RemoteModelChanged(RemoteError):
    """The endpoint's outputs for the probe differ from those stored for its name: other weights answer."""


def identity(model: RemoteModel) -> str:
    """The stored probe's key: the entry's name, the served model id and the revision."""
    return f"{model.kind}:{model.name}|{model.model}|r{model.revision}"


def fingerprint_of(model: RemoteModel, probe: np.ndarray) -> str:
    rounded = np.round(np.asarray(probe, dtype=np.float64), 3)
    digest = hashlib.sha256(identity(model).encode("utf-8") + rounded.tobytes() + str(rounded.shape).encode())
    return digest.hexdigest()[:16]


def difference(stored: np.ndarray, fresh: np.ndarray, kind: str) -> float:
    """1 - the smallest cosine over probe vectors (embedders), or the largest relative score change (rerankers)."""
    if stored.shape != fresh.shape:
        return float("inf")
    if kind == "embedder":
        a = stored / np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
        b = fresh / np.maximum(np.linalg.norm(fresh, axis=1, keepdims=True), 1e-12)
        return float(1.0 - np.min(np.sum(a * b, axis=1)))
    return float(np.max(np.abs(stored - fresh) / (1.0 + np.abs(stored))))


def finite(model: RemoteModel, fresh: np.ndarray) -> np.ndarray:
    """``fresh`` probe outputs, or RemoteError when any is NaN or infinite (no fingerprint can be taken of them,
    and none compared: a NaN difference is no evidence of the same weights)."""
    fresh = np.asarray(fresh, dtype=np.float64)
    if not np.isfinite(fresh).all():
        raise RemoteError(f"{model.endpoint}: the server returned non-finite values (NaN or infinity) for the fixed "
                          f"probe; its weights cannot be checked and nothing it returns is used")
    return fresh


def check(model: RemoteModel, stored: np.ndarray | None, fresh: np.ndarray) -> None:
    """Raises RemoteModelChanged when ``fresh`` probe outputs are not the ``stored`` ones (within tolerance), and
    RemoteError when they are not finite (never a pass)."""
    fresh = finite(model, fresh)
    if stored is None:
        return
    gap = difference(stored, fresh, model.kind)
    if not gap <= model.fingerprint_tolerance:  # NaN (a stored probe that is not finite) is a difference too
        shape = "" if stored.shape == fresh.shape else f" (shape {stored.shape} -> {fresh.shape})"
        raise RemoteModelChanged(
            f"{model.endpoint} now answers the fixed probe differently than when evolve first used it "
            f"(difference {gap:.4g} > tolerance {model.fingerprint_tolerance:g}{shape}): other weights are served "
            f"under this name. Its cached {'vectors' if model.kind == 'embedder' else 'scores'} are kept apart and "
            f"nothing new is mixed in. If the change is intended, raise 'revision' of {model.name} in the model "
            f"registry (now {model.revision}); otherwise restore the model the server served before.")


def verified(model: RemoteModel, fresh: np.ndarray, store: Any = None) -> str:
    """The fingerprint of the weights that produced ``fresh`` probe outputs: the one stored at first contact when
    they match it (RemoteModelChanged when not), else a new one, stored. ``store``: an ``EmbeddingStore`` (its
    ``probe`` / ``put_probe``), None to check nothing and store nothing."""
    fresh = finite(model, fresh)
    known = store.probe(identity(model)) if store is not None else None
    if known and not np.isfinite(known[1]).all():
        # taken by a version that did not check: compare with nothing; a new fingerprint (new cache keys) is taken
        log.warning("%s: the probe stored for it holds non-finite values; dropped, and a new one taken (vectors "
                    "cached under the old fingerprint are not used)", model.endpoint)
        store.drop_probe(identity(model))
        known = None
    check(model, known[1] if known else None, fresh)
    if known:
        return known[0]
    fingerprint = fingerprint_of(model, fresh)
    return store.put_probe(identity(model), fingerprint, fresh) if store is not None else fingerprint
