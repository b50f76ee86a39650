"""Which indexers hold a collection's shards: rendezvous (highest random
weight) hashing over the list of indexers, computed, never stored.

A collection is S shards (S fixed when it is created, 1 by default); a
person's faces in it are in shard hash(person) mod S. Each shard is placed
on its own, by its key: the collection id when S is 1, else `id#k`.

Each indexer's weight for a (tenant, collection) is a hash of the three; the
collection's R holders are the R highest. Adding an indexer moves to it only
the collections where it now ranks in the top R, and nothing else moves;
removing one moves only what it held. The gateway and every indexer compute
the same answer from the same list (INDEXER_ADDRESSES), so nothing about
placement lives in the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def weight(indexer: str, tenant: str, shard: str) -> int:
    return _hash(f"{indexer}\x00{tenant}\x00{shard}")


def person_shard(person: str, shards: int) -> int:
    return _hash(person) % shards if shards > 1 else 0


def shard_key(collection: str, shard: int, shards: int) -> str:
    return collection if shards == 1 else f"{collection}#{shard}"


def shard_keys(collection: str, shards: int) -> list[str]:
    return [shard_key(collection, k, shards) for k in range(shards)]


def collection_of(key: str) -> str:
    return key.partition("#")[0]


def holders(indexers: Sequence[str], tenant: str, shard: str, replicas: int) -> list[int]:
    """The positions in `indexers` of the shard's holders, best first."""
    ranked = sorted(range(len(indexers)), key=lambda i: weight(indexers[i], tenant, shard), reverse=True)
    return ranked[: max(1, min(replicas, len(indexers)))]
