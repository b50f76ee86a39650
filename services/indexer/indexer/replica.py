"""A search replica of a shard's index that cannot remove ids.

FAISS's GPU indexes (GpuIndexFlat, GpuIndexIVFFlat) answer searches but do
not implement remove_ids. A `Tombstoned` replica marks removed rows dead
instead, asks the index for `k + dead` rows so that at least `k` live ones
come back, and drops the dead ones from the answer. The shard replaces it
with a fresh copy (compaction) before the dead rows outgrow what one search
may ask for: the GPU's k-selection limit.

Rows are numbered in the order they were added, as every FAISS index does
for a plain `add`; `_ids` maps rows back to the shard's FAISS ids, which
the shard hands out in increasing order, so the map stays sorted and a
row is found by binary search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import faiss


class Tombstoned:
    def __init__(self, index: faiss.Index, ids: npt.NDArray[np.int64], max_k: int) -> None:
        if index.ntotal != len(ids):
            raise ValueError(f"replica holds {index.ntotal} rows for {len(ids)} ids")
        self.index = index
        self.max_k = max_k
        self._ids = np.asarray(ids, np.int64).copy()
        self._alive = np.ones(len(ids), bool)
        self.dead = 0
        # An IVF replica's lists visited on a second look (shard.Look.SECOND).
        self.second_nprobe = 0
        self._check_sorted(self._ids)

    @property
    def ntotal(self) -> int:
        return len(self._ids) - self.dead

    @property
    def nprobe(self) -> int:
        nprobe: int = self.index.nprobe  # faiss is untyped
        return nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.index.nprobe = value

    def add_with_ids(self, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> None:
        ids = np.asarray(ids, np.int64)
        if len(ids) == 0:
            return
        if len(self._ids) and ids[0] <= self._ids[-1]:
            raise ValueError("replica ids must increase")
        self._check_sorted(ids)
        self.index.add(np.ascontiguousarray(vectors, np.float32))
        self._ids = np.concatenate([self._ids, ids])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), bool)])

    def remove_ids(self, ids: npt.NDArray[np.int64]) -> int:
        """Marks the rows of `ids` dead; answers how many were live."""
        ids = np.asarray(ids, np.int64)
        rows = np.searchsorted(self._ids, ids)
        found = rows < len(self._ids)
        found[found] &= self._ids[rows[found]] == ids[found]
        rows = np.unique(rows[found])
        rows = rows[self._alive[rows]]
        self._alive[rows] = False
        self.dead += len(rows)
        return len(rows)

    def can_search(self, k: int) -> bool:
        return k + self.dead <= self.max_k

    def search(
        self, queries: npt.NDArray[np.float32], k: int, second: bool = False
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Best `k` live rows per query as (scores, FAISS ids), -1 where
        fewer exist; an IVF replica visits `second_nprobe` lists on a `second` look."""
        if not self.can_search(k):
            raise ValueError(f"k={k} with {self.dead} dead rows exceeds {self.max_k}")
        asked = min(k + self.dead, len(self._ids))
        if second and self.second_nprobe:
            # Searches run one at a time on the event loop, so the index's
            # own nprobe is put back before any other search reads it.
            first, self.index.nprobe = self.index.nprobe, self.second_nprobe
            try:
                scores, rows = self.index.search(queries, asked)
            finally:
                self.index.nprobe = first
        else:
            scores, rows = self.index.search(queries, asked)
        scores, rows = live_first(scores, rows, self._alive, k)
        return scores, np.where(rows >= 0, self._ids[np.maximum(rows, 0)], -1)

    @staticmethod
    def _check_sorted(ids: npt.NDArray[np.int64]) -> None:
        if len(ids) > 1 and not (np.diff(ids) > 0).all():
            raise ValueError("replica ids must increase")


def live_first(
    scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], alive: npt.NDArray[np.bool_], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The best `k` live rows per query of a FAISS answer that asked for
    more, in its (best-first) order; row -1 and score -inf where fewer are
    live, as FAISS pads."""
    live = rows >= 0
    live[live] = alive[rows[live]]
    order = np.argsort(~live, axis=1, kind="stable")[:, :k]
    keep = np.take_along_axis(live, order, axis=1)
    rows = np.where(keep, np.take_along_axis(rows, order, axis=1), -1)
    scores = np.where(keep, np.take_along_axis(scores, order, axis=1), -np.inf).astype(np.float32)
    if rows.shape[1] < k:
        pad = ((0, 0), (0, k - rows.shape[1]))
        rows = np.pad(rows, pad, constant_values=-1)
        scores = np.pad(scores, pad, constant_values=-np.inf)
    return scores, rows
