"""The CPU's FAST index: IVF lists of 4-bit PQ codes (FAISS fast scan) find
candidates, and the shard's master copy scores them exactly.

Why not IVF-Flat: it keeps a second full copy of every face (2 GB at 1M
faces of 512-d) and reads each vector a query visits. Fast-scan codes are
dim/8 bytes a face (16 for 128-d), scored from in-register lookup tables:
at 2.5M faces of 128-d on two cores, visiting 10% of the lists costs 2.5 ms
a query, rescoring included, against IVF-Flat's 8.8 ms, and both find the
best person on every one of 400 queries (`python -m bench.fast_index`,
bench/RESULTS.md). The rescoring makes every score returned exact, as
IVF-Flat's were.

FAISS's fast-scan lists do not remove ids (remove_ids answers 0 and keeps
them), so removed ids are marked in a bitmap that the scan skips through an
IDSelector; the shard rebuilds the index once they reach its `max_removed`
share. Ids are never reused, so a face added later is never marked.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np
import numpy.typing as npt

# The exact vectors of FAISS ids: the shard's master copy.
VectorsOf = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]]

# Candidates scored exactly beyond the k asked for: 4-bit codes order the
# best faces only roughly. At 2.5M faces of 128-d (10% of the lists visited)
# 64 found ACCURATE's best person on 99.5% of 400 queries, 256 on all of them,
# for 0.45 ms more (bench/RESULTS.md, "FAST at 2.5M faces a shard").
SPARE = 256
# The same for FAST's second look (shard.Look.SECOND), which is for weak
# best matches: there 1,024 found the best person for 2-4 more of 1,500
# real photos than 256 did, at 2.5M faces and 10-20% of the lists
# (bench/RESULTS.md, "FAST on 1,500 real queries").
SECOND_SPARE = 1024
# Dimensions a 4-bit code covers. One per 8 dimensions (8 B a face at 128-d)
# found ACCURATE's best person on 97-99% of queries at 2.5M faces whatever
# the lists visited: the codes, not the lists, lost the rest.
DIMS_PER_CODE = 4
# FAISS's fast-scan kernels: for a few queries, scanning each query's lists
# in turn (implementation 10) beats its default, which groups the queries
# by list: at 2.5M faces of 128-d, 10% of the lists visited, one query took
# 2.54 against 3.04 ms, rescoring included, and 4 at once 1.20 against 1.31
# ms a query; at 16 at once the default won (1.02 against 1.10; sizes
# between were not measured). The top 10 differed on 3 of 400 queries
# (bench.fast_index's kernel table). FAST's searches come one at a time
# unless the indexer is loaded (batching.py).
BY_QUERY = 10
BY_LIST_FROM = 16


def subquantizers(dim: int) -> int:
    """One 4-bit code per DIMS_PER_CODE dimensions (32 for 128-d, 128 for
    512-d), or the nearest count below that divides `dim`."""
    return max(m for m in range(1, max(dim // DIMS_PER_CODE, 1) + 1) if dim % m == 0)


def empty_fast_scan(dim: int, lists: int) -> faiss.IndexIVFPQFastScan:
    quantizer = faiss.IndexFlatIP(dim)
    return faiss.IndexIVFPQFastScan(quantizer, dim, lists, subquantizers(dim), 4, faiss.METRIC_INNER_PRODUCT)


class Rescored:
    def __init__(self, codes: faiss.IndexIVFPQFastScan, vectors_of: VectorsOf, spare: int = SPARE) -> None:
        self.codes = codes
        self.vectors_of = vectors_of
        self.spare = spare
        self.nprobe = codes.nprobe
        self.second_nprobe = codes.nprobe  # the shard sets both (AnnPolicy)
        self.by_query_below = BY_LIST_FROM  # batches this small use the BY_QUERY kernel
        self.dead = 0
        self._dead_bits = np.zeros(0, np.uint8)
        self._skip_dead: faiss.IDSelector | None = None
        self._marked: faiss.IDSelectorBitmap | None = None  # what _skip_dead points into

    @property
    def ntotal(self) -> int:
        live: int = self.codes.ntotal - self.dead  # faiss is untyped
        return live

    def add_with_ids(self, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> None:
        self.codes.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))

    def remove_ids(self, ids: npt.NDArray[np.int64]) -> int:
        """Marks `ids` removed; answers how many were not already."""
        ids = np.unique(np.asarray(ids, np.int64))
        if len(ids) == 0:
            return 0
        self._cover(int(ids[-1]))
        byte, bit = ids >> 3, (ids & 7).astype(np.uint8)
        fresh = ((self._dead_bits[byte] >> bit) & 1) == 0
        np.bitwise_or.at(self._dead_bits, byte[fresh], np.left_shift(1, bit[fresh]).astype(np.uint8))
        newly = int(fresh.sum())
        self.dead += newly
        return newly

    def _cover(self, largest: int) -> None:
        """Grows the bitmap to hold `largest`; the selector reads it in place."""
        if largest >> 3 < len(self._dead_bits) and self._skip_dead is not None:
            return
        grown = np.zeros(max((largest >> 3) + 1, 2 * len(self._dead_bits)), np.uint8)
        grown[: len(self._dead_bits)] = self._dead_bits
        self._dead_bits = grown
        self._marked = faiss.IDSelectorBitmap(8 * len(grown), faiss.swig_ptr(grown))
        self._skip_dead = faiss.IDSelectorNot(self._marked)

    def search(
        self, queries: npt.NDArray[np.float32], k: int, second: bool = False
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Best `k` faces per query among the lists visited (more on a
        `second` look), as (exact scores, FAISS ids), -1 where fewer exist."""
        queries = np.ascontiguousarray(queries, np.float32)
        nprobe, spare = (self.second_nprobe, max(self.spare, SECOND_SPARE)) if second else (self.nprobe, self.spare)
        params = faiss.SearchParametersIVF(nprobe=nprobe, sel=self._skip_dead)
        self.codes.implem = BY_QUERY if len(queries) < self.by_query_below else 0  # 0: FAISS's choice
        _, ids = self.codes.search(queries, k + spare, params=params)
        found = ids >= 0
        vectors = np.zeros((*ids.shape, queries.shape[1]), np.float32)
        if found.any():
            vectors[found] = self.vectors_of(ids[found])
        scores = np.einsum("qcd,qd->qc", vectors, queries)
        scores[~found] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        kept = np.take_along_axis(found, order, axis=1)
        return (np.take_along_axis(scores, order, axis=1), np.where(kept, np.take_along_axis(ids, order, axis=1), -1))
