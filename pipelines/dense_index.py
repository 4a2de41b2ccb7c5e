"""FAISS vector index: exact inner product (default) or HNSW; on GPU when faiss-gpu sees one."""

from __future__ import annotations

import numpy as np

from pipelines.device import faiss_gpu_count
from pipelines.scored import ScoredLists


class DenseIndex:
    def __init__(self, kind: str = "flat", hnsw_m: int = 32, ef_search: int = 128):
        self.kind, self.hnsw_m, self.ef_search = kind, hnsw_m, ef_search
        self._index = None
        self.on_gpu = False

    def build(self, vectors: np.ndarray) -> "DenseIndex":
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = self.ef_search
        else:
            index = faiss.IndexFlatIP(dim)
            if faiss_gpu_count() > 0:  # flat IP is what faiss-gpu accelerates best
                index = faiss.index_cpu_to_all_gpus(index)
                self.on_gpu = True
        index.add(vectors)
        self._index = index
        self.size = len(vectors)
        return self

    def updated(self, keep: np.ndarray, added: np.ndarray) -> "DenseIndex | None":
        """A new index holding the kept rows (in order) then ``added``, from a copy of this one: ids stay positions,
        and this index keeps serving meanwhile. None where the kind cannot delete (HNSW with removals): rebuild."""
        import faiss

        removed = np.flatnonzero(~keep)
        if self.kind == "hnsw" and len(removed):
            return None
        index = faiss.clone_index(faiss.index_gpu_to_cpu(self._index) if self.on_gpu else self._index)
        if len(removed):
            index.remove_ids(faiss.IDSelectorBatch(removed.astype(np.int64)))  # flat: the rest moves up, in order
        if len(added):
            index.add(np.ascontiguousarray(added, dtype=np.float32))
        copy = DenseIndex(self.kind, self.hnsw_m, self.ef_search)
        if self.on_gpu:
            index = faiss.index_cpu_to_all_gpus(index)
            copy.on_gpu = True
        copy._index, copy.size = index, int(keep.sum()) + len(added)
        return copy

    def search(self, query_vectors: np.ndarray, k: int) -> ScoredLists:
        k = min(k, self.size)
        scores, ids = self._index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), k)
        return ScoredLists(ids.astype(np.int64), scores.astype(np.float64))

    def nbytes(self) -> int:
        import faiss

        index = faiss.index_gpu_to_cpu(self._index) if self.on_gpu else self._index
        return int(faiss.serialize_index(index).nbytes)
