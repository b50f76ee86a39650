"""One collection's faces: an exact FAISS index, an approximate one for FAST
search once the shard is large enough, and the table of who each of its
rows is (faces.py).

The approximate index (IVF: fast-scan codes rescored from the exact index
on the CPU, IVF-Flat on a GPU) is built in a background thread from a
snapshot of the exact index; writes made meanwhile are queued and replayed
onto it before it is swapped in. Until then, and for small shards, FAST is
exact search. On a GPU both are searched through device replicas of the
host index (see device.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import faiss
import numpy as np
import numpy.typing as npt

from .device import AnnSnapshot, Cpu, Device
from .faces import NONE, FaceTable, Hit
from .replica import Tombstoned, live_first
from .rescored import Rescored

__all__ = ["AnnPolicy", "Hit", "Look", "Shard"]

# Removed faces the master copy keeps as dead rows before it drops them all
# at once; each search asks FAISS for this many rows more at most.
COMPACT_AT = 1024
# FAST visits this share of a shard's inverted lists, and at least
# MIN_NPROBE of them (see AnnPolicy.nprobe_for).
VISITED = 0.10
MIN_NPROBE = 16
# FAST's second look (Look.SECOND) visits this many times the lists.
SECOND_LOOK_LISTS = 3


class Look(Enum):
    """How a search looks at a shard: every face, or FAST's index, or
    FAST's again, deeper (the gateway's second look when FAST's best is a
    weak match; gateway/shards.py)."""

    EXACT = "exact"
    FAST = "fast"
    SECOND = "second"


@dataclass(frozen=True)
class AnnPolicy:
    # Below this many faces exact search is fast enough and FAST stays exact.
    min_faces: int = 20_000
    # Inverted lists visited per FAST query: 0 chooses them from the
    # shard's size (nprobe_for); a positive number fixes them.
    nprobe: int = 0
    # Rebuild when the shard has grown this much since the last build, or
    # when this share of the indexed faces has been removed.
    regrow: float = 2.0
    max_removed: float = 0.2

    def lists_for(self, faces: int) -> int:
        # 4·sqrt(n): at 1M faces 4,000 lists, trained in about 2 minutes on
        # two cores (in the background); at 2.5M 6,325.
        return int(min(max(4 * math.sqrt(faces), 64), 16_384))

    def nprobe_for(self, lists: int) -> int:
        # A share of the lists, not a number: at a fixed 384 the best person
        # was FAST's and exact search's alike on 99.5-100% of queries at 1M
        # faces a shard (9.6% of 4,000 lists) and 96% at 2.5M (6.1% of
        # 6,324). At 2.5M, 6.1% of the lists lost the best person on 0.75%
        # of 400 queries even with full vectors (IVF-Flat), 10.1% on none
        # (bench.fast_index, bench/RESULTS.md). On 1,500 real photos a
        # tenth loses 1.1-1.9% of them, all weak matches, mostly in the
        # lists (--leave-one-out): those take a second look.
        if self.nprobe > 0:
            return min(self.nprobe, lists)
        return min(lists, max(MIN_NPROBE, math.ceil(VISITED * lists)))

    def second_nprobe_for(self, lists: int) -> int:
        # Only searches whose best face is weak take a second look (the
        # gateway's rule): 4.5-4.7% of real photos at 2.5M faces, none of
        # the synthetic faces. Three times the lists with 1,024 rescored
        # found exact search's best person for 14 of the 17 and 22 of the
        # 29 real photos a tenth had lost (bench.fast_index --leave-one-out,
        # two seeds); half the lists would have found one more of each.
        return min(lists, SECOND_LOOK_LISTS * self.nprobe_for(lists))


@dataclass
class Shard:
    dim: int
    policy: AnnPolicy = field(default_factory=AnnPolicy)
    device: Device = field(default_factory=Cpu)
    # The master copy: exact search on the CPU, the source of every replica.
    # Its rows are the table's, removed ones dead until the next compaction.
    index: faiss.IndexFlatIP = field(init=False)
    table: FaceTable = field(default_factory=FaceTable, init=False)
    # On a GPU: the exact index's replica that searches go to.
    exact: Tombstoned | None = field(default=None, init=False)
    ann: Rescored | Tombstoned | None = field(default=None, init=False)
    building: bool = field(default=False, init=False)
    _ann_size: int = field(default=0, init=False)
    _ann_removed: int = field(default=0, init=False)
    _pending: list[tuple[str, npt.NDArray[np.int64], npt.NDArray[np.float32] | None]] = field(
        default_factory=list, init=False
    )
    # An upper bound on faces per person (never lowered): how deep to search
    # so that the faces found cover k distinct persons (Registry.search).
    max_faces_per_person: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        # Exact maximum inner product; vectors are unit length, so it is cosine.
        self.index = faiss.IndexFlatIP(self.dim)
        self.exact = self.device.exact_replica(np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64))

    @property
    def faces(self) -> int:
        return self.table.faces

    @property
    def persons(self) -> int:
        return self.table.persons

    def add(
        self,
        face_ids: list[str],
        person_ids: list[str],
        vectors: npt.NDArray[np.float32],
        versions: list[int] | None = None,
    ) -> None:
        """Adds faces, each with its person's version; a face id its person
        already has is replaced."""
        self._remove_rows(self.table.rows_of_faces(person_ids, face_ids))
        vectors = np.ascontiguousarray(vectors, np.float32)
        ids = self.table.add(face_ids, person_ids, versions or [0] * len(face_ids))
        self.index.add(vectors)
        if self.exact is not None:
            self.exact.add_with_ids(vectors, ids)
        self._mirror("add", ids, vectors)
        self.max_faces_per_person = max(self.max_faces_per_person, self.table.most_faces_of(person_ids))

    def remove_persons(self, person_ids: list[str]) -> int:
        rows = self.table.rows_of_persons(person_ids)
        self._remove_rows(rows)
        return len(rows)

    def _remove_rows(self, rows: list[int]) -> None:
        if not rows:
            return
        ids = self.table.remove(rows)
        if self.exact is not None:
            self.exact.remove_ids(ids)
            if self.exact.dead >= self.device.removal_slack:
                self.exact = self.device.exact_replica(*self._host_copy())
        self._mirror("remove", ids, None)
        if self.table.dead >= COMPACT_AT:
            self._compact()

    def _compact(self) -> None:
        # One O(n) pass of FAISS's own in place removal for COMPACT_AT
        # removed faces; removing them one by one was that pass each.
        kept = self.table.compact()
        self.index.remove_ids(faiss.IDSelectorBatch(np.flatnonzero(~kept).astype(np.int64)))

    def _mirror(self, op: str, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32] | None) -> None:
        """Keeps the approximate index (or the one being built) in step."""
        if self.building:
            self._pending.append((op, ids, vectors))
        if self.ann is not None:
            self._apply(self.ann, op, ids, vectors)

    def _apply(
        self, ann: faiss.Index, op: str, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32] | None
    ) -> None:
        if op == "add":
            ann.add_with_ids(vectors, ids)
        else:
            self._ann_removed += int(ann.remove_ids(ids))

    # The approximate index's life cycle: snapshot (event loop), build
    # (thread), install (event loop).

    def wants_ann(self) -> bool:
        if self.building or self.faces < self.policy.min_faces:
            return False
        if self.ann is None:
            return True
        return self.faces >= self.policy.regrow * self._ann_size or self._ann_removed >= min(
            self.policy.max_removed * max(self._ann_size, 1), self.device.removal_slack
        )

    def ann_snapshot(self) -> AnnSnapshot:
        self.building = True
        self._pending = []
        vectors, ids = self._host_copy()
        return AnnSnapshot(vectors, ids, self.dim, self.policy.lists_for(self.faces))

    def _host_copy(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The live faces' vectors and FAISS ids, in increasing id order."""
        alive = self.table.alive()
        return self._rows()[alive], self.table.fids(alive)

    def _rows(self) -> npt.NDArray[np.float32]:
        """The master copy's vectors, one row per table row, without a copy."""
        rows = self.table.rows
        vectors: npt.NDArray[np.float32] = faiss.rev_swig_ptr(self.index.get_xb(), rows * self.dim)
        return vectors.reshape(rows, self.dim)

    def vectors_of(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The vectors of live FAISS ids, for rescoring FAST's candidates."""
        vectors: npt.NDArray[np.float32] = self._rows()[self.table.rows_of_fids(ids)]
        return vectors

    def install_ann(self, built: faiss.Index, snapshot: AnnSnapshot) -> None:
        """Replays the writes made during the build, then swaps the index in."""
        ann = self.device.install_ann(built, snapshot, self.vectors_of)
        ann.nprobe = self.policy.nprobe_for(snapshot.lists)
        ann.second_nprobe = self.policy.second_nprobe_for(snapshot.lists)
        self._ann_size, self._ann_removed = ann.ntotal, 0
        for op, ids, vectors in self._pending:
            self._apply(ann, op, ids, vectors)
        self._pending = []
        self.ann = ann
        self.building = False

    def abandon_ann_build(self) -> None:
        self.building = False
        self._pending = []

    def approximate(self, look: Look) -> bool:
        """Whether a search that looks this way is answered approximately."""
        return look is not Look.EXACT and self.ann is not None

    def search(self, queries: npt.NDArray[np.float32], k: int, look: Look = Look.EXACT) -> list[list[Hit]]:
        """Best `k` faces per query, best first; FAST and its second look
        use the approximate index when there is one."""
        if self.faces == 0:
            return [[] for _ in range(len(queries))]
        k = min(k, self.faces)
        queries = np.ascontiguousarray(queries, np.float32)
        if self.ann is not None and look is not Look.EXACT and self._searchable(self.ann, k):
            scores, ids = self.ann.search(queries, k, second=look is Look.SECOND)
            return self._hits(scores, ids)
        if self.exact is not None and self._searchable(self.exact, k):
            return self._hits(*self.exact.search(queries, k))
        # The master copy, skipping its dead rows (when there are any: the
        # filter costs more than a small shard's whole search).
        scores, rows = self.index.search(queries, min(k + self.table.dead, self.table.rows))
        if self.table.dead:
            scores, rows = live_first(scores, rows, self.table.alive(), k)
        return self.table.hits(scores, rows)

    @staticmethod
    def _searchable(index: Rescored | Tombstoned, k: int) -> bool:
        return not isinstance(index, Tombstoned) or index.can_search(k)

    def _hits(self, scores: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> list[list[Hit]]:
        rows = np.where(ids >= 0, self.table.rows_of_fids(ids), NONE)
        return self.table.hits(scores, rows)
