"""Shards derived from a real PostgreSQL: loaded from one snapshot, kept
current by the change log, answering only from far enough along it, and
holding only the collections rendezvous hashing gives this indexer."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import pytest

from facesearch_common import database
from facesearch_common.placement import holders, person_shard, shard_keys
from indexer import follower as follower_module
from indexer.follower import Behind, Follower, NotHeld
from indexer.registry import Query, Registry

T, DIM = "t", 8


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype("<f4")
    return v / np.linalg.norm(v)


async def write(db: asyncpg.Connection, person: str, collections: list[str], seeds: list[int], shards: int = 1) -> int:
    """A person's faces and memberships replaced and logged, as the gateway writes them."""
    async with db.transaction():
        before = [
            r["collection"] for r in await db.fetch("SELECT collection FROM memberships WHERE person = $1", person)
        ]
        await db.execute(
            "INSERT INTO persons (tenant, id, data, version) VALUES ($1, $2, '{}', 0) ON CONFLICT DO NOTHING", T, person
        )
        await db.execute("DELETE FROM faces WHERE person = $1", person)
        await db.execute("DELETE FROM memberships WHERE person = $1", person)
        for s in seeds:
            await db.execute("INSERT INTO faces VALUES ($1, $2, $3, $4)", T, person, f"{person}-{s}", unit(s).tobytes())
        for c in collections:
            await db.execute(
                "INSERT INTO memberships (tenant, collection, person, shard) VALUES ($1, $2, $3, $4)",
                T,
                c,
                person,
                person_shard(person, shards),
            )
        return await database.log_changes(db, T, list(dict.fromkeys(before + collections)), person)


async def connected(url: str) -> tuple[asyncpg.Pool, asyncpg.Connection]:
    pool = await database.pool(url)
    db = await asyncpg.connect(url)
    for c in ("c1", "c2"):
        await db.execute("INSERT INTO collections (tenant, id, name, data) VALUES ($1, $2, $2, '{}')", T, c)
    return pool, db


def best(follower: Follower, collections: list[str], seed: int) -> list[str]:
    found = follower.search(Query(T, tuple(collections), 5, 0.99), unit(seed)[None])
    return [h.hit.person_id for h in found.hits[0]]


def test_loads_then_follows_writes_and_deletes(database_url):
    async def body():
        pool, db = await connected(database_url)
        await write(db, "a", ["c1"], [1, 2])
        follower = Follower(pool, Registry(), "me", ["me"], 1)
        await follower.load()
        assert best(follower, ["c1"], 1) == ["a"] and follower.applied == 1

        seq = await write(db, "b", ["c1", "c2"], [3])
        with pytest.raises(Behind):
            await follower.reach(seq + 1, 1.0)  # nothing has reached that far
        await follower.reach(seq, 5.0)
        assert best(follower, ["c1", "c2"], 3) == ["b"]

        await write(db, "a", ["c2"], [4])  # new faces, moved from c1 to c2
        async with db.transaction():
            await db.execute("DELETE FROM persons WHERE id = 'b'")
            seq = await database.log_changes(db, T, ["c1", "c2"], "b")
        await follower.reach(seq, 5.0)
        assert best(follower, ["c1", "c2"], 3) == [] and best(follower, ["c1"], 4) == []
        assert best(follower, ["c2"], 4) == ["a"] and best(follower, ["c2"], 1) == []

        async with db.transaction():
            await db.execute("DELETE FROM collections WHERE id = 'c2'")
            seq = await database.log_changes(db, T, ["c2"], None)
        await follower.reach(seq, 5.0)
        assert follower.registry.get((T, "c2")) is None

        # A second indexer started now loads the same state from its snapshot.
        again = Follower(pool, Registry(), "me", ["me"], 1)
        await again.load()
        assert (again.applied, best(again, ["c1"], 1), again.registry.get((T, "c2"))) == (seq, [], None)
        await db.close()
        await pool.close()

    asyncio.run(body())


def test_follows_by_notification_and_holds_only_its_collections(database_url):
    async def body():
        pool, db = await connected(database_url)
        names = ["i0", "i1", "i2"]
        followers = [Follower(pool, Registry(), n, names, 2) for n in names]
        tasks = [asyncio.create_task(f.follow(database_url)) for f in followers]
        await asyncio.gather(*(f.loaded.wait() for f in followers))
        seq = await write(db, "p", ["c1"], [5])
        for _ in range(100):  # woken by NOTIFY, without anyone asking
            if all(f.applied >= seq for f in followers):
                break
            await asyncio.sleep(0.05)
        held = holders(names, T, "c1", 2)
        for i, follower in enumerate(followers):
            assert follower.applied == seq
            if i in held:
                assert best(follower, ["c1"], 5) == ["p"]
            else:
                assert follower.registry.get((T, "c1")) is None
                with pytest.raises(NotHeld):
                    follower.search(Query(T, ("c1",), 5, 0.99), unit(5)[None])
        for task in tasks:
            task.cancel()
        await db.close()
        await pool.close()

    asyncio.run(body())


def test_a_collection_in_shards_spreads_its_persons_over_indexers(database_url):
    async def body():
        pool, db = await connected(database_url)
        await db.execute(
            "INSERT INTO collections (tenant, id, name, data, shards) VALUES ($1, 'gallery', 'gallery', '{}', 4)", T
        )
        names = ["i0", "i1"]
        followers = [Follower(pool, Registry(), n, names, 1) for n in names]
        for i in range(20):
            await write(db, f"p{i}", ["gallery"], [100 + i], shards=4)
        for follower in followers:
            await follower.load()
        held = [sum(s.faces for (_, key), s in f.registry.items() if key.startswith("gallery#")) for f in followers]
        assert sum(held) == 20 and all(held)  # every face once, on both indexers
        seq = await write(db, "late", ["gallery"], [200], shards=4)
        for follower in followers:
            await follower.reach(seq, 5.0)
        key = shard_keys("gallery", 4)[person_shard("late", 4)]
        owner = followers[holders(names, T, key, 1)[0]]
        found = owner.search(Query(T, (key,), 5, 0.99), unit(200)[None])
        assert [(h.hit.person_id, h.collection_id) for h in found.hits[0]] == [("late", key)]
        async with db.transaction():
            await db.execute("DELETE FROM collections WHERE id = 'gallery'")
            seq = await database.log_changes(db, T, ["gallery"], None)
        for follower in followers:
            await follower.reach(seq, 5.0)
            assert not list(follower.registry.items())
        await db.close()
        await pool.close()

    asyncio.run(body())


def test_a_shard_larger_than_a_load_batch_loads_whole(database_url, monkeypatch):
    monkeypatch.setattr(follower_module, "LOAD_BATCH", 4)

    async def body():
        pool, db = await connected(database_url)
        for i in range(7):
            await write(db, f"p{i}", ["c1"], [10 * i, 10 * i + 1])  # 14 faces: four batches
        follower = Follower(pool, Registry(), "me", ["me"], 1)
        await follower.load()
        shard = follower.registry.get((T, "c1"))
        assert shard is not None and (shard.faces, shard.persons) == (14, 7)
        assert all(best(follower, ["c1"], 10 * i + 1) == [f"p{i}"] for i in range(7))
        await db.close()
        await pool.close()

    asyncio.run(body())


def test_hits_carry_the_persons_version_also_when_another_collection_goes(database_url):
    """A hit answers with persons.version as the database holds it: the
    gateway takes an older cached answer for stale. When a collection goes,
    its members' rows in their other collections bring the new version."""

    def version(follower: Follower, collection: str) -> int:
        return follower.search(Query(T, (collection,), 5, 0.99), unit(1)[None]).hits[0][0].hit.version

    async def body():
        pool, db = await connected(database_url)
        seq = await write(db, "a", ["c1", "c2"], [1])
        await db.execute("UPDATE persons SET version = $1 WHERE id = 'a'", seq)
        follower = Follower(pool, Registry(), "me", ["me"], 1)
        await follower.load()
        assert version(follower, "c1") == version(follower, "c2") == seq

        async with db.transaction():  # as the gateway's catalog deletes a collection
            await db.execute("DELETE FROM collections WHERE id = 'c1'")
            gone = await database.log_changes(db, T, ["c1"], None)
            gone = max(gone, await database.log_memberships(db, T, ["a"]))
            await db.execute("UPDATE persons SET version = $1 WHERE id = 'a'", gone)
        await follower.reach(gone, 5.0)
        assert gone > seq and version(follower, "c2") == gone
        await db.close()
        await pool.close()

    asyncio.run(body())
