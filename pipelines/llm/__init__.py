"""The LLM client (OpenAI protocol: vLLM, llama.cpp), its request cache, and the local CPU server."""

from pipelines.llm.cache import LLMCache
from pipelines.llm.client import LLMAuthError, LLMClient, LLMConfigError, LLMError, LLMSettings, LLMUnavailable
from pipelines.llm.local_server import LocalLLMServer
from pipelines.llm.models import ModelUnavailable, resolve_gguf

__all__ = ["LLMAuthError", "LLMCache", "LLMClient", "LLMConfigError", "LLMError", "LLMSettings", "LLMUnavailable",
           "LocalLLMServer", "ModelUnavailable", "resolve_gguf"]
