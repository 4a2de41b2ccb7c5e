"""Models served over the network: the project's model registry file, the HTTP client of each protocol, the
fingerprint that notices other weights behind a name, and a GGUF export for llama.cpp servers.

Public API::

    from pipelines.remote import (RemoteModel, RegistryError, RemoteError, RemoteModelChanged, RemoteClient,
                                  load_registry, export_bert_gguf, redact)

Served embedders load through ``pipelines.embedders`` (loader ``remote``), served rerankers through
``pipelines.rerankers`` (kind ``remote``); both cache through the embedding store.
"""

from pipelines.remote.client import RemoteClient, RemoteError
from pipelines.remote.fingerprint import (PROBE_QUERY, PROBE_TEXTS, RemoteModelChanged, check, fingerprint_of,
                                         identity, verified)
from pipelines.remote.gguf_export import export_bert_gguf
from pipelines.remote.redact import redact
from pipelines.remote.registry import (EMBEDDING_PROTOCOLS, REGISTRY_ENV, REGISTRY_FILE, RERANK_PROTOCOLS,
                                       ModelRegistryFile, RegistryError, RemoteModel, load_registry)

__all__ = ["EMBEDDING_PROTOCOLS", "PROBE_QUERY", "PROBE_TEXTS", "REGISTRY_ENV", "REGISTRY_FILE", "RERANK_PROTOCOLS",
           "ModelRegistryFile", "RegistryError", "RemoteClient", "RemoteError", "RemoteModel", "RemoteModelChanged",
           "check", "export_bert_gguf", "fingerprint_of", "identity", "load_registry", "redact", "verified"]
