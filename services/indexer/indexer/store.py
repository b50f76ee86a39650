"""The indexer's state: the durable catalog and the FAISS shards derived from it.

Every write goes to the catalog first (durable, atomic) and then to the
in-memory shards; on start the shards are rebuilt from the catalog, so a
crash between the two loses nothing acknowledged.
"""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np
import numpy.typing as npt

from .catalog import Catalog, StoredFace, unknown_collection
from .device import Device
from .registry import DimensionMismatch, Found, Registry
from .shard import AnnPolicy

log = logging.getLogger(__name__)


def to_vectors(blobs: list[bytes], dim: int | None = None) -> npt.NDArray[np.float32]:
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4")
    dim = dim or (len(blobs[0]) // 4 if blobs else 0)
    return matrix.reshape(len(blobs), dim)


class IndexStore:
    def __init__(self, catalog: Catalog, policy: AnnPolicy | None = None, device: Device | None = None) -> None:
        self.catalog = catalog
        self.registry = Registry(policy, device)
        self._rebuild()

    def _rebuild(self) -> None:
        started = time.perf_counter()
        faces = 0
        rows = self.catalog.all_memberships_faces()
        for (tenant, collection), grouped in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
            group = list(grouped)
            vectors = to_vectors([r[4] for r in group])
            self.registry.writable((tenant, collection), vectors.shape[1]).add(
                [r[3] for r in group], [r[2] for r in group], vectors
            )
            faces += len(group)
        log.info("shards rebuilt", extra={"faces": faces, "seconds": round(time.perf_counter() - started, 3)})

    def put_person(
        self,
        tenant: str,
        id: str,
        data: bytes,
        update: bool,
        faces: list[StoredFace] | None,
        dim: int,
        collections: list[str] | None,
        replica: bool = False,
    ) -> None:
        before = self.catalog.person_collections(tenant, id)
        after = collections if collections is not None else before
        if faces is not None or collections is not None:
            stored = faces if faces is not None else self.catalog.person_faces(tenant, id)
            vector_dim = dim if faces is not None else (len(stored[0].vector) // 4 if stored else dim)
            for c in after:  # refuse before anything is written
                shard = self.registry.get((tenant, c))
                if shard is not None and stored and shard.dim != vector_dim:
                    raise DimensionMismatch(f"collection {c} holds {shard.dim}-d vectors, got {vector_dim}-d")
        self.catalog.put_person(tenant, id, data, update, faces, collections, replica)
        if faces is None and collections is None:
            return
        for c in set(before) | set(after):
            shard = self.registry.get((tenant, c))
            if shard is not None:
                shard.remove_persons([id])
        if stored:
            vectors = to_vectors([f.vector for f in stored], vector_dim)
            for c in after:
                self.registry.writable((tenant, c), vector_dim).add(
                    [f.face_id for f in stored], [id] * len(stored), vectors
                )

    def delete_person(self, tenant: str, id: str, collection: str = "") -> int:
        collections = [collection] if collection else self.catalog.person_collections(tenant, id)
        self.catalog.delete_person(tenant, id, collection)
        removed = 0
        for c in collections:
            shard = self.registry.get((tenant, c))
            if shard is not None:
                removed += shard.remove_persons([id])
        return removed

    def delete_collection(self, tenant: str, id: str) -> int:
        self.catalog.delete_collection(tenant, id)
        return self.registry.drop((tenant, id))

    def search(
        self,
        tenant: str,
        collections: list[str],
        queries: npt.NDArray[np.float32],
        top_k: int,
        min_cosine: float,
        fast: bool = False,
    ) -> Found:
        if collections:
            known = {r.id for r in self.catalog.get_collections(tenant, collections)}
            unknown = [c for c in collections if c not in known]
            if unknown:
                raise unknown_collection(unknown[0])
        else:
            collections = self.catalog.collection_ids(tenant)
        return self.registry.search([(tenant, c) for c in collections], queries, top_k, min_cosine, fast)
