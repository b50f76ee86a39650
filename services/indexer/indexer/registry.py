"""All shards of this indexer process, keyed by (tenant, collection id), and
the search across several of them with one answer per person."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shard import Hit, Shard

ShardKey = tuple[str, str]


class DimensionMismatch(ValueError):
    pass


@dataclass(frozen=True)
class CollectionHit:
    collection_id: str
    hit: Hit


class Registry:
    def __init__(self) -> None:
        self._shards: dict[ShardKey, Shard] = {}

    def get(self, key: ShardKey) -> Shard | None:
        return self._shards.get(key)

    def writable(self, key: ShardKey, dim: int) -> Shard:
        shard = self._shards.get(key)
        if shard is None:
            shard = self._shards[key] = Shard(dim)
        elif shard.dim != dim:
            raise DimensionMismatch(f"collection {key[1]} holds {shard.dim}-d vectors, got {dim}-d")
        return shard

    def drop(self, key: ShardKey) -> int:
        shard = self._shards.pop(key, None)
        return shard.faces if shard else 0

    def search(self, keys: list[ShardKey], query: np.ndarray, top_k: int, min_score: float) -> list[CollectionHit]:
        """The best face of each person over the given shards, best first.

        Each shard is asked for enough faces to fill top_k persons even when
        persons have several faces; ties break on person id, deterministically.
        """
        best: dict[str, CollectionHit] = {}
        for key in keys:
            shard = self._shards.get(key)
            if shard is None or shard.faces == 0:
                continue
            if shard.dim != query.shape[-1]:
                raise DimensionMismatch(f"collection {key[1]} holds {shard.dim}-d vectors, query is {query.shape[-1]}-d")
            k = top_k * shard.max_faces_per_person
            for hit in shard.search(query[None, :], k)[0]:
                if hit.score < min_score:
                    break
                seen = best.get(hit.person_id)
                if seen is None or hit.score > seen.hit.score:
                    best[hit.person_id] = CollectionHit(key[1], hit)
        ranked = sorted(best.values(), key=lambda c: (-c.hit.score, c.hit.person_id))
        return ranked[:top_k]

