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


class Graded(StandIn):
    """An indexer whose FAST answers are approximate, with its best at `cosine`."""

    def __init__(self, address: str, cosine: float, approximate: bool = True):
        super().__init__(address)
        self.cosine, self.approximate = cosine, approximate
        self.modes: list[int] = []
        self.min_cosines: list[float] = []

    async def search(self, search: ShardSearch, collections: list[str], wait: bool = False) -> Found:
        self.modes.append(search.mode)
        self.min_cosines.append(search.min_cosine)
        best = self.cosine + (0.1 if search.mode == pb.FAST_SECOND_LOOK else 0.0)
        hits = [
            pb.Hit(person_id=p, face_id="f", collection_id="c", cosine=c)
            for p, c in (("best", best), ("next", best - 0.2))
            if c >= search.min_cosine
        ]
        return Found(hits, 1000, self.approximate)


def second_looks() -> float:
    return REGISTRY.get_sample_value("facesearch_gateway_fast_second_looks_total") or 0.0


def graded(cosine: float, mode: int = pb.FAST, min_cosine: float = 0.45, approximate: bool = True):
    indexer = Graded(NAMES[0], cosine, approximate)
    looks = second_looks()
    found = asyncio.run(
        Shards([indexer]).search(  # type: ignore[list-item]
            ShardSearch(T, {"c": 1}, np.ones(4, np.float32), 10, min_cosine, mode, 7, second_look_below=0.5)
        )
    )
    return found, indexer, second_looks() - looks


def test_fast_looks_again_deeper_when_its_best_is_weak():
    found, indexer, looks = graded(0.45)
    assert indexer.modes == [pb.FAST, pb.FAST_SECOND_LOOK] and looks == 1
    assert [(h.person_id, round(h.cosine, 2)) for h in found.hits] == [("best", 0.55)]  # the second look's answer


def test_fast_answers_from_its_first_look_when_its_best_is_strong():
    found, indexer, looks = graded(0.8, min_cosine=0.7)
    assert indexer.modes == [pb.FAST] and looks == 0
    # Asked down to the weak line, to see the best; answered at the search's own.
    assert indexer.min_cosines == [0.5]
    assert [h.person_id for h in found.hits] == ["best"]


def test_a_weak_best_below_the_search_threshold_still_looks_again():
    found, indexer, looks = graded(0.3, min_cosine=0.6)
    assert indexer.modes == [pb.FAST, pb.FAST_SECOND_LOOK] and looks == 1 and found.hits == []


def test_no_second_look_for_exact_answers_or_accurate_searches():
    _, indexer, looks = graded(0.3, approximate=False)  # a small shard: FAST is exact
    assert indexer.modes == [pb.FAST] and looks == 0
    _, indexer, looks = graded(0.3, mode=pb.ACCURATE)
    assert indexer.modes == [pb.ACCURATE] and looks == 0
