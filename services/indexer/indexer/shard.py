"""One collection's faces: a FAISS index plus the maps from FAISS ids back to
faces and persons."""

from __future__ import annotations

from dataclasses import dataclass, field

import faiss
import numpy as np


@dataclass(frozen=True)
class Hit:
    person_id: str
    face_id: str
    score: float


@dataclass
class Shard:
    dim: int
    index: faiss.IndexIDMap2 = field(init=False)
    _next_id: int = field(default=0, init=False)
    _face_of: dict[int, str] = field(default_factory=dict, init=False)     # faiss id -> face id
    _id_of: dict[str, int] = field(default_factory=dict, init=False)       # face id -> faiss id
    _person_of: dict[int, str] = field(default_factory=dict, init=False)   # faiss id -> person id
    _faces_of: dict[str, set[int]] = field(default_factory=dict, init=False)  # person id -> faiss ids
    # An upper bound on faces per person (never lowered): how deep to search
    # so that k faces are sure to cover k distinct persons.
    max_faces_per_person: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        # Exact maximum inner product; vectors are unit length, so it is cosine.
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def faces(self) -> int:
        return self.index.ntotal

    @property
    def persons(self) -> int:
        return len(self._faces_of)

    def add(self, face_ids: list[str], person_ids: list[str], vectors: np.ndarray) -> None:
        """Adds faces; a face id already present is replaced."""
        self._remove_ids([self._id_of[f] for f in face_ids if f in self._id_of])
        ids = np.arange(self._next_id, self._next_id + len(face_ids), dtype=np.int64)
        self._next_id += len(face_ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
        for fid, face, person in zip(ids.tolist(), face_ids, person_ids):
            self._face_of[fid] = face
            self._id_of[face] = fid
            self._person_of[fid] = person
            faces = self._faces_of.setdefault(person, set())
            faces.add(fid)
            self.max_faces_per_person = max(self.max_faces_per_person, len(faces))

    def remove_persons(self, person_ids: list[str]) -> int:
        ids = [fid for p in person_ids for fid in self._faces_of.get(p, ())]
        self._remove_ids(ids)
        return len(ids)

    def _remove_ids(self, ids: list[int]) -> None:
        if not ids:
            return
        self.index.remove_ids(np.asarray(ids, np.int64))
        for fid in ids:
            face = self._face_of.pop(fid)
            del self._id_of[face]
            person = self._person_of.pop(fid)
            remaining = self._faces_of[person]
            remaining.discard(fid)
            if not remaining:
                del self._faces_of[person]

    def search(self, queries: np.ndarray, k: int) -> list[list[Hit]]:
        """Best `k` faces per query, best first."""
        if self.faces == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = self.index.search(np.ascontiguousarray(queries, np.float32), min(k, self.faces))
        return [
            [Hit(self._person_of[i], self._face_of[i], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
            for row_s, row_i in zip(scores, ids)
        ]
