"""Placement over two real indexers (gRPC servers with SQLite catalogs and
FAISS shards, in this process): each collection, its writes and its searches
live on the indexer its id names, and persons spanning both read as one."""

from __future__ import annotations

import asyncio
import json

import grpc
import numpy as np
import pytest

from facesearch.indexer.v1 import indexer_pb2 as ipb
from gateway.errors import ApiError
from gateway.placement import Indexers
from indexer.catalog import Catalog
from indexer.server import start
from indexer.store import IndexStore

DIM = 8
T = "tenant"


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype("<f4")
    return v / np.linalg.norm(v)


def person_data(name: str, stamp: str) -> bytes:
    return json.dumps({"name": name, "create_date": stamp}).encode()


def run(scenario):
    """Runs `scenario(indexers, stores)` against two fresh indexers."""

    async def main(tmp):
        stores = [IndexStore(Catalog(tmp / f"i{n}" / "catalog.sqlite3")) for n in range(2)]
        running = [await start(s, "127.0.0.1:0") for s in stores]
        indexers = Indexers.connect([f"127.0.0.1:{r.port}" for r in running], timeout_s=5)
        try:
            await scenario(indexers, stores)
        finally:
            await indexers.close()
            for r, s in zip(running, stores, strict=True):
                await r.stop(grace_s=0)
                s.catalog.close()

    return main


async def collection_on(indexers: Indexers, ordinal: int, name: str) -> str:
    while True:  # ids are placed at random: draw until it names `ordinal`
        id = indexers.new_collection_id()
        if indexers.ordinal(id) == ordinal:
            await indexers.put_collection(T, id, name, json.dumps({"create_date": name}).encode(), update=False)
            return id


def faces_in(store: IndexStore, collection: str) -> int:
    shard = store.registry.get((T, collection))
    return shard.faces if shard else 0


def test_ids_name_their_indexer_and_unknown_ordinals_are_unknown():
    indexers = Indexers([object(), object()])  # placement arithmetic only
    drawn = {indexers.ordinal(indexers.new_collection_id()) for _ in range(200)}
    assert drawn == {0, 1}
    with pytest.raises(ApiError) as missing:
        indexers.ordinal("02" + "0" * 22)
    assert missing.value.reason == "unknown_collection"


def test_writes_and_searches_land_on_the_owner(tmp_path):
    async def scenario(indexers: Indexers, stores):
        a = await collection_on(indexers, 0, "a")
        b = await collection_on(indexers, 1, "b")
        # Names are unique per tenant over both indexers.
        with pytest.raises(ApiError) as clash:
            await collection_on(indexers, 1, "a")
        assert clash.value.code == grpc.StatusCode.ALREADY_EXISTS
        assert [r.id for r in await indexers.get_collections(T, [b, a])] == [b, a]
        assert [r.id for r in (await indexers.list_collections(T, 0, 10)).records] == [a, b]
        # Each catalog holds only its own collection.
        assert [r.id for r in stores[0].catalog.get_collections(T, [a, b])] == [a]
        assert [r.id for r in stores[1].catalog.get_collections(T, [a, b])] == [b]

        await indexers.put_person(T, "p1", person_data("only-a", "1"), False, [("f1", unit(1))], [a])
        await indexers.put_person(T, "p2", person_data("both", "2"), False, [("f2", unit(2))], [b, a])
        assert (faces_in(stores[0], a), faces_in(stores[1], b)) == (2, 1)
        # p2's home is b's owner; a's owner holds a replica for its membership.
        assert [(r.id, r.replica) for r in stores[0].catalog.get_persons(T, ["p1", "p2"])] == [
            ("p1", False),
            ("p2", True),
        ]
        assert [r.id for r in stores[1].catalog.get_persons(T, ["p1", "p2"])] == ["p2"]

        found = await indexers.search(T, [b], unit(2), 5, 0.9, ipb.ACCURATE)
        assert [(h.person_id, h.collection_id) for h in found.hits] == [("p2", b)]
        assert found.faces == 1
        found = await indexers.search(T, [], unit(2), 5, 0.9, ipb.ACCURATE)
        assert [h.person_id for h in found.hits] == ["p2"]  # once, though on both indexers
        assert found.faces == 3  # every collection of both indexers: a's 2 faces and b's 1
        merged = await indexers.get_persons(T, ["p2", "p1"])
        assert [(r.id, list(r.collections)) for r in merged] == [("p2", [b, a]), ("p1", [a])]
        listed = await indexers.list_persons(T, 0, 10, "")
        assert ([r.id for r in listed.records], listed.total) == (["p1", "p2"], 2)
        members_a = await indexers.list_persons(T, 0, 10, a)
        assert [(r.id, list(r.collections)) for r in members_a.records] == [("p1", [a]), ("p2", [b, a])]

        # Moving p1 to b copies its faces from its home to b's owner.
        await indexers.put_person(T, "p1", person_data("moved", "1"), True, None, [b])
        assert (faces_in(stores[0], a), faces_in(stores[1], b)) == (1, 2)
        assert [r.id for r in await indexers.get_persons(T, ["p1"])] == ["p1"]
        found = await indexers.search(T, [b], unit(1), 5, 0.9, ipb.ACCURATE)
        assert [h.person_id for h in found.hits] == ["p1"]

        # Leaving a's collection drops p2's replica there, faces and all.
        await indexers.delete_person(T, "p2", a)
        assert stores[0].catalog.get_persons(T, ["p2"]) == []
        assert [list(r.collections) for r in await indexers.get_persons(T, ["p2"])] == [[b]]

        # Deleting a collection drops the replicas it alone kept.
        await indexers.put_person(T, "p3", person_data("three", "3"), False, [("f3", unit(3))], [b, a])
        await indexers.delete_collection(T, a)
        assert stores[0].catalog.get_persons(T, ["p3"]) == []
        assert [list(r.collections) for r in await indexers.get_persons(T, ["p3"])] == [[b]]

        assert await indexers.delete_person(T, "p3") == 1
        assert await indexers.get_persons(T, ["p3"]) == []
        with pytest.raises(ApiError) as gone:
            await indexers.delete_person(T, "p3")
        assert gone.value.reason == "unknown_person"

    asyncio.run(run(scenario)(tmp_path))


def test_an_unknown_collection_on_either_indexer_writes_nothing(tmp_path):
    async def scenario(indexers: Indexers, stores):
        a = await collection_on(indexers, 0, "a")
        ghost = "01" + "ab" * 11
        with pytest.raises(ApiError) as missing:
            await indexers.put_person(T, "p", person_data("p", "1"), False, [("f", unit(1))], [a, ghost])
        assert (missing.value.reason, ghost in missing.value.message) == ("unknown_collection", True)
        assert [s.catalog.get_persons(T, ["p"]) for s in stores] == [[], []]
        assert faces_in(stores[0], a) == 0

    asyncio.run(run(scenario)(tmp_path))
