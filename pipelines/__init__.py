"""Retrieval pipelines: chunking, embedders (+ cache), FAISS, BM25, fusion, rerankers.

Public API::

    from pipelines import PipelineConfig, load_config, Components, Retriever
"""

from pipelines.components import Components, StageLog
from pipelines.config import ConfigError, PipelineConfig, load_config, save_config
from pipelines.retriever import RankedChunk, Retriever

__all__ = ["Components", "ConfigError", "PipelineConfig", "RankedChunk", "Retriever", "StageLog", "load_config",
           "save_config"]
