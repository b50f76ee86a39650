"""One collection's faces: an exact FAISS index, an approximate one for FAST
search once the shard is large enough, and the maps from FAISS ids back to
faces and persons.

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

import faiss
import numpy as np
import numpy.typing as npt

from .device import AnnSnapshot, Cpu, Device
from .replica import Tombstoned
from .rescored import Rescored


@dataclass(frozen=True)
class Hit:
    person_id: str
    face_id: str
    score: float
    version: int = 0  # the person's version (persons.version) as this shard holds it


@dataclass(frozen=True)
class AnnPolicy:
    # Below this many faces exact search is fast enough and FAST stays exact.
    min_faces: int = 20_000
    # Inverted lists visited per query (see lists_for).
    nprobe: int = 384
    # Rebuild when the shard has grown this much since the last build, or
    # when this share of the indexed faces has been removed.
    regrow: float = 2.0
    max_removed: float = 0.2

    def lists_for(self, faces: int) -> int:
        # 4·sqrt(n): at 1M faces 4,000 lists, trained in about 2 minutes on
        # two cores (in the background). nprobe 384 visits 9.6% of them. On
        # two draws of the benchmark's 1M faces, 400 queries each, the best
        # person was missed by 9 and 4 queries at nprobe 96, 3 and 1 at 256,
        # 1 and 0 at 384, all of them real lfw faces, whose lists k-means,
        # fed mostly synthetic faces, draws coarsely. Fast-scan codes make
        # 384 lists cost 0.9 ms on two cores (bench/RESULTS.md).
        return int(min(max(4 * math.sqrt(faces), 64), 16_384))


@dataclass
class Shard:
    dim: int
    policy: AnnPolicy = field(default_factory=AnnPolicy)
    device: Device = field(default_factory=Cpu)
    # The master copy: exact search on the CPU, the source of every replica.
    index: faiss.IndexIDMap2 = field(init=False)
    # On a GPU: the exact index's replica that searches go to.
    exact: Tombstoned | None = field(default=None, init=False)
    ann: Rescored | Tombstoned | None = field(default=None, init=False)
    building: bool = field(default=False, init=False)
    _ann_size: int = field(default=0, init=False)
    _ann_removed: int = field(default=0, init=False)
    _pending: list[tuple[str, npt.NDArray[np.int64], npt.NDArray[np.float32] | None]] = field(
        default_factory=list, init=False
    )
    _next_id: int = field(default=0, init=False)
    _face_of: dict[int, str] = field(default_factory=dict, init=False)  # faiss id -> face id
    _id_of: dict[str, int] = field(default_factory=dict, init=False)  # face id -> faiss id
    _person_of: dict[int, str] = field(default_factory=dict, init=False)  # faiss id -> person id
    _faces_of: dict[str, set[int]] = field(default_factory=dict, init=False)  # person id -> faiss ids
    _version_of: dict[str, int] = field(default_factory=dict, init=False)  # person id -> persons.version
    # An upper bound on faces per person (never lowered): how deep to search
    # so that the faces found cover k distinct persons (Registry.search).
    max_faces_per_person: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        # Exact maximum inner product; vectors are unit length, so it is cosine.
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.exact = self.device.exact_replica(np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64))

    @property
    def faces(self) -> int:
        # faiss is untyped; annotating, unlike int(), costs nothing on the search path.
        faces: int = self.index.ntotal
        return faces

    @property
    def persons(self) -> int:
        return len(self._faces_of)

    def add(
        self,
        face_ids: list[str],
        person_ids: list[str],
        vectors: npt.NDArray[np.float32],
        versions: list[int] | None = None,
    ) -> None:
        """Adds faces, each with its person's version; a face id already
        present is replaced."""
        self._remove_ids([self._id_of[f] for f in face_ids if f in self._id_of])
        ids = np.arange(self._next_id, self._next_id + len(face_ids), dtype=np.int64)
        self._next_id += len(face_ids)
        vectors = np.ascontiguousarray(vectors, np.float32)
        self.index.add_with_ids(vectors, ids)
        if self.exact is not None:
            self.exact.add_with_ids(vectors, ids)
        self._mirror("add", ids, vectors)
        for fid, face, person in zip(ids.tolist(), face_ids, person_ids, strict=True):
            self._face_of[fid] = face
            self._id_of[face] = fid
            self._person_of[fid] = person
            faces = self._faces_of.setdefault(person, set())
            faces.add(fid)
            self.max_faces_per_person = max(self.max_faces_per_person, len(faces))
        for person, version in zip(person_ids, versions or [0] * len(person_ids), strict=True):
            self._version_of[person] = version

    def remove_persons(self, person_ids: list[str]) -> int:
        ids = [fid for p in person_ids for fid in self._faces_of.get(p, ())]
        self._remove_ids(ids)
        return len(ids)

    def _remove_ids(self, ids: list[int]) -> None:
        if not ids:
            return
        array = np.asarray(ids, np.int64)
        self.index.remove_ids(array)
        if self.exact is not None:
            self.exact.remove_ids(array)
            if self.exact.dead >= self.device.removal_slack:
                self.exact = self.device.exact_replica(*self._host_copy())
        self._mirror("remove", array, None)
        for fid in ids:
            face = self._face_of.pop(fid)
            del self._id_of[face]
            person = self._person_of.pop(fid)
            remaining = self._faces_of[person]
            remaining.discard(fid)
            if not remaining:
                del self._faces_of[person]
                self._version_of.pop(person, None)

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
        """The master copy's vectors and FAISS ids, in its (increasing id) order."""
        flat = faiss.downcast_index(self.index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), self.faces * self.dim).reshape(self.faces, self.dim).copy()
        return vectors, faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def install_ann(self, built: faiss.Index, snapshot: AnnSnapshot) -> None:
        """Replays the writes made during the build, then swaps the index in."""
        ann = self.device.install_ann(built, snapshot, self.index)
        ann.nprobe = self.policy.nprobe
        self._ann_size, self._ann_removed = ann.ntotal, 0
        for op, ids, vectors in self._pending:
            self._apply(ann, op, ids, vectors)
        self._pending = []
        self.ann = ann
        self.building = False

    def abandon_ann_build(self) -> None:
        self.building = False
        self._pending = []

    def search(self, queries: npt.NDArray[np.float32], k: int, fast: bool = False) -> list[list[Hit]]:
        """Best `k` faces per query, best first; FAST uses the approximate index when there is one."""
        if self.faces == 0:
            return [[] for _ in range(len(queries))]
        k = min(k, self.faces)
        scores, ids = self._index_for(k, fast).search(np.ascontiguousarray(queries, np.float32), k)
        return [
            [
                Hit(person, self._face_of[i], float(s), self._version_of[person])
                for s, i in zip(row_s, row_i, strict=True)
                if i >= 0 and (person := self._person_of[i])
            ]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def _index_for(self, k: int, fast: bool) -> Rescored | Tombstoned | faiss.IndexIDMap2:
        """FAST: the approximate index when there is one; then the device
        replica; the master copy when a replica cannot answer this k."""
        for index in (self.ann, self.exact) if fast else (self.exact,):
            if index is not None and (not isinstance(index, Tombstoned) or index.can_search(k)):
                return index
        return self.index
