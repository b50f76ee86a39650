"""Search over the indexers that hold the searched collections' shards.

Each shard is held by R indexers (rendezvous hashing over
INDEXER_ADDRESSES, facesearch_common/placement.py). A search asks one live
holder of each shard, grouped so that each indexer is asked once, and
merges the answers; a holder that fails, times out, is behind or does not
hold the shard (a list being changed) is replaced by the next holder within
the same request. An indexer that failed is tried last for a while.

A FAST search whose best face is a weak match looks again, deeper (the
indexers' FAST_SECOND_LOOK): the searches where FAST loses exact search's
best person are those whose best match is weak, and only the gateway sees
a search's best over every shard (a shard without the person's faces
always looks weak). A search with a strong match pays nothing; one that
matches nobody well, a stranger's, pays the second look too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable

import grpc

from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch_common.placement import holders, shard_keys

from . import metrics
from .errors import ApiError, unavailable
from .indexer_client import Found, IndexerClient, ShardSearch

log = logging.getLogger(__name__)
SUSPECT_S = 5.0  # how long a failed indexer is asked last
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.DEADLINE_EXCEEDED)


class Shards:
    def __init__(self, clients: list[IndexerClient], replicas: int = 1):
        if not clients:
            raise ValueError("at least one indexer")
        self.clients = clients
        self.names = [c.address for c in clients]
        self.replicas = max(1, min(replicas, len(clients)))
        self._failed_at: dict[int, float] = {}

    @classmethod
    def connect(cls, addresses: Iterable[str], replicas: int, timeout_s: float) -> Shards:
        return cls([IndexerClient(a, timeout_s) for a in addresses], replicas)

    def holders(self, tenant: str, shard: str) -> list[int]:
        """The shard's holders, the ones that failed lately last."""
        ranked = holders(self.names, tenant, shard, self.replicas)
        now = time.monotonic()
        return sorted(ranked, key=lambda i: now - self._failed_at.get(i, -SUSPECT_S) < SUSPECT_S)

    async def ready(self) -> bool:
        """Every collection has a live holder when, of any R indexers, one is ready."""
        answers = await asyncio.gather(*(c.ready() for c in self.clients))
        return sum(not ok for ok in answers) < self.replicas

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)

    async def search(self, search: ShardSearch) -> Found:
        """Searches every shard of the search's collections; FAST looks
        again when its best is weak and its answer approximate."""
        weak = search.second_look_below
        if search.mode != pb.FAST or weak is None:
            return await self._search(search)
        # The first look keeps hits down to the weak line, to see how weak its best is.
        found = await self._search(dataclasses.replace(search, min_cosine=min(search.min_cosine, weak)))
        if found.approximate and (not found.hits or found.hits[0].cosine < weak):
            metrics.SECOND_LOOKS.inc()
            return await self._search(dataclasses.replace(search, mode=pb.FAST_SECOND_LOOK))
        return Found([h for h in found.hits if h.cosine >= search.min_cosine], found.faces, found.approximate)

    async def _search(self, search: ShardSearch) -> Found:
        candidates = {
            k: self.holders(search.tenant, k) for c, s in search.collections.items() for k in shard_keys(c, s)
        }
        answers: list[Found] = []
        while candidates:
            groups: dict[int, list[str]] = {}
            for collection, ranked in candidates.items():
                groups.setdefault(ranked[0], []).append(collection)
            # A holder that fails is replaced by the next at once; the last
            # holder of a shard is waited for while it reconnects (a restart).
            results = await asyncio.gather(
                *(
                    self.clients[i].search(search, c, wait=any(len(candidates[k]) == 1 for k in c))
                    for i, c in groups.items()
                ),
                return_exceptions=True,
            )
            retry: dict[str, list[int]] = {}
            for (i, group), result in zip(groups.items(), results, strict=True):
                if isinstance(result, Found):
                    answers.append(result)
                    continue
                if not (isinstance(result, ApiError) and result.code in _RETRIED):
                    raise result
                self._failed_at[i] = time.monotonic()
                metrics.BACKEND_ERRORS.labels("indexer").inc()
                log.warning("indexer failed a search", extra={"indexer": self.names[i], "error": str(result)})
                for collection in group:
                    rest = candidates[collection][1:]
                    if not rest:
                        raise unavailable("indexer_unavailable", f"no indexer holding {collection} answered: {result}")
                    retry[collection] = rest
            candidates = retry
        best: dict[str, pb.Hit] = {}
        for hit in sorted((h for a in answers for h in a.hits), key=lambda h: (-h.cosine, h.person_id)):
            best.setdefault(hit.person_id, hit)  # a person in several collections counts once
        return Found(
            list(best.values())[: search.top_k], sum(a.faces for a in answers), any(a.approximate for a in answers)
        )
