"""Accelerator detection: GPU paths are chosen automatically, CPU is the fallback everywhere."""

from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def torch_device() -> str:
    """'cuda' when torch sees a GPU (unless EVOLVE_DEVICE overrides), else 'cpu'."""
    forced = os.environ.get("EVOLVE_DEVICE")
    if forced:
        return forced
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=1)
def faiss_gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu, or when EVOLVE_DEVICE=cpu)."""
    if os.environ.get("EVOLVE_DEVICE") == "cpu":
        return 0
    import faiss

    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return int(get_num_gpus()) if get_num_gpus else 0


def cpu_threads() -> int:
    return int(os.environ.get("EVOLVE_THREADS", os.cpu_count() or 1))
