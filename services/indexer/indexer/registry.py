"""All shards of this indexer process, keyed by (tenant, collection id), and
the search across several of them with one answer per person."""

from __future__ import annotations

from collections.abc import ItemsView
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .device import Cpu, Device
from .shard import AnnPolicy, Hit, Look, Shard

ShardKey = tuple[str, str]


class DimensionMismatch(ValueError):
    pass


@dataclass(frozen=True)
class CollectionHit:
    collection_id: str
    hit: Hit


@dataclass(frozen=True)
class Query:
    """One search as the indexer runs it, whatever its queries: the same
    value from the gRPC call (server.py) through the batcher, which answers
    equal ones with one FAISS call, to the shards."""

    tenant: str
    shards: tuple[str, ...]  # shard keys (placement.shard_key), as the gateway names them
    top_k: int
    min_cosine: float
    look: Look = Look.EXACT


@dataclass(frozen=True)
class Matches:
    hits: list[list[CollectionHit]]  # per query, best first
    # Faces searched: the searched shards' sizes at search time (a face in
    # two searched collections counts twice). Scores depend on it.
    faces: int
    # Whether a searched shard answered from its approximate index.
    approximate: bool = False


class Registry:
    def __init__(self, policy: AnnPolicy | None = None, device: Device | None = None) -> None:
        self._shards: dict[ShardKey, Shard] = {}
        self.policy = policy or AnnPolicy()
        self.device = device or Cpu()

    def get(self, key: ShardKey) -> Shard | None:
        return self._shards.get(key)

    def writable(self, key: ShardKey, dim: int) -> Shard:
        shard = self._shards.get(key)
        if shard is None:
            shard = self._shards[key] = Shard(dim, self.policy, self.device)
        elif shard.dim != dim:
            raise DimensionMismatch(f"collection {key[1]} holds {shard.dim}-d vectors, got {dim}-d")
        return shard

    def drop(self, key: ShardKey) -> int:
        shard = self._shards.pop(key, None)
        return shard.faces if shard else 0

    def items(self) -> ItemsView[ShardKey, Shard]:
        return self._shards.items()

    def search(self, query: Query, queries: npt.NDArray[np.float32]) -> Matches:
        """Per query, the best face of each person over the query's shards, best first.

        Each shard is asked for just enough faces to hold its top_k persons
        whatever their faces: with at most m faces a person, the first
        (top_k - 1) * m + 1 faces name at least top_k persons, each by its
        best face. Shallow matters on a GPU, where FAISS answers k = 1 with
        a fast arg-max and any larger k with a slower selection (1.0 against
        3.5 ms at 1M faces on an H200). Ties break on person id.
        """
        top_k, min_cosine = query.top_k, query.min_cosine
        best: list[dict[str, CollectionHit]] = [{} for _ in range(len(queries))]
        faces, approximate = 0, False
        for key in ((query.tenant, s) for s in query.shards):
            shard = self._shards.get(key)
            if shard is None or shard.faces == 0:
                continue
            faces += shard.faces
            if shard.dim != queries.shape[-1]:
                raise DimensionMismatch(
                    f"collection {key[1]} holds {shard.dim}-d vectors, query is {queries.shape[-1]}-d"
                )
            k = (top_k - 1) * shard.max_faces_per_person + 1
            approximate = approximate or shard.approximate(query.look)
            for found, hits in zip(best, shard.search(queries, k, query.look), strict=True):
                for hit in hits:
                    if hit.score < min_cosine:
                        break
                    seen = found.get(hit.person_id)
                    if seen is None or hit.score > seen.hit.score:
                        found[hit.person_id] = CollectionHit(key[1], hit)
        return Matches(
            [sorted(found.values(), key=lambda c: (-c.hit.score, c.hit.person_id))[:top_k] for found in best],
            faces,
            approximate,
        )
