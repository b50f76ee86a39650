"""Search over replicated shards (gateway/shards.py), with stand-in indexers:
one live holder per collection is asked, each indexer once, and a holder
that fails is replaced by the next within the same request."""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import pytest
from prometheus_client import REGISTRY

from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch_common.placement import holders
from gateway.errors import ApiError, unavailable
from gateway.indexer_client import Found, ShardSearch
from gateway.shards import Shards

T = "t"
NAMES = [f"127.0.0.1:{5000 + i}" for i in range(4)]


class StandIn:
    """An indexer that answers one hit per collection asked, or fails."""

    def __init__(self, address: str):
        self.address = address
        self.asked: list[list[str]] = []
        self.waited: list[bool] = []
        self.down = False

    async def search(self, search: ShardSearch, collections: list[str], wait: bool = False) -> Found:
        self.asked.append(list(collections))
        self.waited.append(wait)
        if self.down:
            raise unavailable("indexer_unavailable", "the indexer did not answer")
        hits = [pb.Hit(person_id=f"p-{c}", face_id="f", collection_id=c, cosine=0.5) for c in collections]
        return Found(hits, 10 * len(collections))

    async def ready(self) -> bool:
        return not self.down


def indexer_errors() -> float:
    return REGISTRY.get_sample_value("facesearch_gateway_backend_errors_total", {"backend": "indexer"}) or 0.0


def shards(replicas: int) -> tuple[Shards, list[StandIn]]:
    clients = [StandIn(n) for n in NAMES]
    return Shards(clients, replicas), clients  # type: ignore[arg-type]


def search(s: Shards, collections: list[str], shards: int = 1) -> Found:
    wanted = dict.fromkeys(collections, shards)
    return asyncio.run(s.search(ShardSearch(T, wanted, np.ones(4, np.float32), 10, -1.0, pb.ACCURATE, 7)))


def test_rendezvous_moves_only_what_a_new_indexer_takes():
    collections = [f"c{i}" for i in range(2000)]
    before = {c: holders(NAMES, T, c, 2) for c in collections}
    grown = [*NAMES, "127.0.0.1:6000"]
    after = {c: holders(grown, T, c, 2) for c in collections}
    moved = [c for c in collections if {NAMES[i] for i in before[c]} != {grown[i] for i in after[c]}]
    # Each collection that moved has the new indexer among its holders; about 2/5 move.
    assert all(4 in after[c] for c in moved)
    assert 0.3 < len(moved) / len(collections) < 0.5
    load = Counter(i for c in collections for i in before[c])
    assert min(load.values()) > 0.8 * 1000  # 2 holders x 2000 collections over 4 indexers


def test_each_indexer_is_asked_once_for_the_collections_it_answers():
    s, clients = shards(replicas=2)
    collections = [f"c{i}" for i in range(12)]
    found = search(s, collections)
    assert len(found.hits) == 10  # top_k of the twelve, merged
    assert found.faces == 10 * len(collections)
    asked = [c for client in clients for call in client.asked for c in call]
    assert sorted(asked) == sorted(collections)  # one holder each
    assert all(len(client.asked) <= 1 for client in clients)


def test_a_collection_in_several_shards_is_asked_once_per_shard():
    s, clients = shards(replicas=1)
    found = search(s, ["big"], shards=4)
    asked = sorted(key for client in clients for call in client.asked for key in call)
    assert asked == ["big#0", "big#1", "big#2", "big#3"] and found.faces == 40
    assert len({i for k in asked for i in s.holders(T, k)}) > 1  # spread over indexers


def test_a_failed_holder_is_replaced_within_the_request_and_asked_last_after():
    s, clients = shards(replicas=2)
    collections = [f"c{i}" for i in range(12)]
    clients[0].down = True
    before = indexer_errors()
    found = search(s, collections)
    assert indexer_errors() == before + 1  # counted once, as the one call that failed
    assert found.faces == 10 * len(collections)  # every collection answered once
    first_round = clients[0].asked[0]
    assert first_round  # it held some, failed them, and others answered them
    for client in clients:
        client.asked.clear()
    search(s, collections)
    assert clients[0].asked == []  # suspect: its collections went to the other holder first


def test_no_live_holder_is_a_clear_503():
    s, clients = shards(replicas=1)
    for client in clients:
        client.down = True
    with pytest.raises(ApiError) as failed:
        search(s, ["c1"])
    assert (failed.value.reason, failed.value.code.name) == ("indexer_unavailable", "UNAVAILABLE")
    assert asyncio.run(s.ready()) is False


def test_only_a_shards_last_holder_is_waited_for():
    s, clients = shards(replicas=2)
    first, second = s.holders(T, "c1")
    clients[first].down = True
    search(s, ["c1"])
    # The first holder fails fast so that the second answers within the request;
    # the second, the last left, would be waited for while it reconnects.
    assert clients[first].waited == [False] and clients[second].waited == [True]
