"""Which indexers hold a collection: rendezvous (highest random weight)
hashing over the list of indexers, computed, never stored.

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


def weight(indexer: str, tenant: str, collection: str) -> int:
    digest = hashlib.blake2b(f"{indexer}\x00{tenant}\x00{collection}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def holders(indexers: Sequence[str], tenant: str, collection: str, replicas: int) -> list[int]:
    """The positions in `indexers` of the collection's holders, best first."""
    ranked = sorted(range(len(indexers)), key=lambda i: weight(indexers[i], tenant, collection), reverse=True)
    return ranked[: max(1, min(replicas, len(indexers)))]
