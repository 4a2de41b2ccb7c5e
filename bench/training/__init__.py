"""evolve's own trained models (adapters, embedder, reranker, memory) against the fixed configs."""
