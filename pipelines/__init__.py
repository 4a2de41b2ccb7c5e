"""Retrieval pipelines: a typed config, the parts it names, and what builds, runs and serves them.

What the package holds today:

- ``config`` (``PipelineConfig``: chunking, dense, lexical, fusion, reranker, generation, k), its strict YAML
  loader (``strict_yaml``) and the packaged configs (``configs/default.yaml``, ``configs/demo.yaml``);
- one subpackage a component kind, each a registry with one file a variant: ``chunking``, ``embedders`` (the
  packaged models, the embedding cache, query adapters, served embedders), ``lexical`` (BM25 with regex,
  English and Korean kiwi tokens), ``fusion`` (RRF, weighted), ``rerankers`` (embedding, cross-encoder, memory,
  served); ``registry`` is the dispatch they share;
- building and running: ``components`` (memoised parts, so trials pay only for what changed), ``dense_index``
  (FAISS), ``retriever`` (chunks -> candidates -> fusion -> rerank -> documents), ``scored`` (ranked arrays);
- models outside the packages: ``remote`` (``models.yaml``: served models, their HTTP clients, fingerprints, a
  GGUF export for llama.cpp), ``trained`` (the content-addressed models evolve trains), ``catalog`` (one
  project's trained-model folder and registry file, passed down to what resolves model names);
- answers and serving: ``llm`` (the one OpenAI-protocol client, its cache, the local llama.cpp server),
  ``generator`` (answers that cite chunks), ``serving`` (the FastAPI app: /search, /answer, /feedback, /health),
  ``http_deadline`` (whole-request deadlines), ``device`` (CPU or GPU).

Public API::

    from pipelines import PipelineConfig, load_config, Components, Retriever

Each kind of component is a subpackage with its own front (``pipelines.chunking``, ``.embedders``,
``.lexical``, ``.fusion``, ``.rerankers``, ``.llm``); other packages import from these fronts, never from
their modules. The server app (FastAPI) loads on first use.
"""

from pipelines.catalog import ModelCatalog, catalog_or_env
from pipelines.components import Components, Progress, StageLog, corpus_fingerprint
from pipelines.config import ConfigError, GenerationConfig, LexicalConfig, PipelineConfig, load_config, save_config
from pipelines.device import torch_device
from pipelines.registry import ConfigRegistry, KindConfig, Registry, import_kinds
from pipelines.retriever import RankedChunk, Retriever
from pipelines.strict_yaml import load_model, problems_of, validate_as
from pipelines.trained import (ROOT_ENV as TRAINED_ROOT_ENV, TrainedModel, TrainedModelError, TrainedModelStore,
                               is_trained)

__all__ = ["Answer", "Components", "ConfigError", "ConfigRegistry", "GenerationConfig", "Generator", "KindConfig",
           "LexicalConfig", "LiveRetriever", "ModelCatalog", "catalog_or_env", "PASSAGES_SYSTEM", "PipelineConfig", "Progress", "RankedChunk", "Registry", "Retriever",
           "ServeLimits", "StageLog", "TRAINED_ROOT_ENV", "Traffic", "best_chunk_per_doc", "TrainedModel", "TrainedModelError", "TrainedModelStore",
           "context_block", "corpus_fingerprint", "create_app", "import_kinds", "is_trained", "load_config", "load_model", "problems_of",
           "save_config", "torch_device", "validate_as"]

_LAZY = {"ServeLimits": "pipelines.serving", "Traffic": "pipelines.serving", "best_chunk_per_doc": "pipelines.serving", "LiveRetriever": "pipelines.serving", "create_app": "pipelines.serving", "Answer": "pipelines.generator",
         "Generator": "pipelines.generator", "PASSAGES_SYSTEM": "pipelines.generator",
         "context_block": "pipelines.generator"}
"""Heavy modules (a web framework) load on first use, so importing the package stays light."""


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
