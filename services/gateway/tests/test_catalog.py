"""The system of record on a real PostgreSQL: constraints, one transaction per
write, the change log every write appends to, and the versions the cache
keys on."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import pytest

from gateway.catalog import Catalog
from gateway.errors import ApiError

T = "tenant-a"


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def run(database_url, body):
    async def main():
        catalog = await Catalog.connect(database_url)
        try:
            return await body(catalog)
        finally:
            await catalog.close()

    return asyncio.run(main())


async def changes(catalog: Catalog) -> list[tuple]:
    rows = await catalog.pool.fetch("SELECT seq, tenant, collection, person FROM changes ORDER BY seq")
    return [tuple(r) for r in rows]


def test_writes_log_what_they_touch_and_version_the_person(database_url):
    async def body(catalog: Catalog):
        await catalog.put_collection(T, "a", "A", b'{"id": "a"}', update=False)
        await catalog.put_collection(T, "b", "B", b'{"id": "b"}', update=False)
        created = await catalog.put_person(T, "p", b'{"name": "x"}', False, [("f1", unit(1))], ["a", "b"])
        assert await changes(catalog) == [(1, T, "a", "p"), (2, T, "b", "p")]
        (record,) = await catalog.get_persons(T, ["p"], with_faces=True)
        assert (record.collections, record.version, created.seq) == (("a", "b"), 2, 2)
        assert np.frombuffer(record.faces[0].vector, "<f4").tolist() == pytest.approx(unit(1).tolist())

        moved = await catalog.put_person(T, "p", b'{"name": "y"}', True, None, ["b"])
        assert (await changes(catalog))[2:] == [(3, T, "a", "p"), (4, T, "b", "p")]  # left a, still in b
        (record,) = await catalog.get_persons(T, ["p"])
        assert (record.collections, record.version, moved.persons) == (("b",), 4, ["p"])

        gone = await catalog.delete_collection(T, "b")
        assert (gone.persons, gone.faces) == (["p"], 1)
        assert (await changes(catalog))[-1] == (5, T, "b", None)
        (record,) = await catalog.get_persons(T, ["p"])
        assert (record.collections, record.version) == ((), 5)
        assert (await catalog.scope(T, [])).head == 5

    run(database_url, body)


def test_deletes_log_the_collections_the_person_was_in(database_url):
    async def body(catalog: Catalog):
        for c in ("a", "b", "c"):
            await catalog.put_collection(T, c, c.upper(), b"{}", update=False)
        await catalog.put_person(T, "p", b'{"name": "x"}', False, [("f1", unit(1)), ("f2", unit(2))], ["a", "b", "c"])
        start = len(await changes(catalog))

        left = await catalog.delete_person(T, "p", collection="a")
        assert (await changes(catalog))[start:] == [(start + 1, T, "a", "p")]
        (record,) = await catalog.get_persons(T, ["p"])
        assert (record.collections, record.version, left.seq, left.faces) == (("b", "c"), start + 1, start + 1, 2)

        gone = await catalog.delete_person(T, "p")
        assert (await changes(catalog))[start + 1 :] == [(start + 2, T, "b", "p"), (start + 3, T, "c", "p")]
        assert (gone.seq, gone.persons, gone.faces) == (start + 3, ["p"], 2)
        assert await catalog.get_persons(T, ["p"]) == []
        left_behind = await catalog.pool.fetchval(
            "SELECT (SELECT count(*) FROM faces WHERE person = 'p')"
            " + (SELECT count(*) FROM memberships WHERE person = 'p')"
        )
        assert left_behind == 0

        # In no collection, a delete is logged nowhere yet still takes a
        # position of its own, after every one before it.
        await catalog.put_person(T, "q", b"{}", False, [("f3", unit(3))], [])
        alone = await catalog.delete_person(T, "q")
        assert alone.seq > gone.seq
        assert (await changes(catalog))[-1][0] == start + 3

    run(database_url, body)


def test_refusals_touch_nothing(database_url):
    async def body(catalog: Catalog):
        await catalog.put_collection(T, "a", "A", b"{}", update=False)
        with pytest.raises(ApiError) as taken:
            await catalog.put_collection(T, "other", "A", b"{}", update=False)
        assert taken.value.reason == "collection_exists"
        await catalog.put_collection("tenant-b", "other", "A", b"{}", update=False)  # names are per tenant
        with pytest.raises(ApiError) as unknown:
            await catalog.put_person(T, "p", b"{}", False, [("f", unit(2))], ["a", "missing"])
        assert (unknown.value.reason, unknown.value.message) == (
            "unknown_collection",
            "collection 'missing' does not exist",
        )
        assert await catalog.get_persons(T, ["p"]) == []
        assert await changes(catalog) == []
        await catalog.put_person(T, "p", b"{}", False, [("f", unit(2))], ["a"])
        with pytest.raises(ApiError) as exists:
            await catalog.put_person(T, "p", b"{}", False, None, ["a"])
        assert exists.value.reason == "person_exists"
        with pytest.raises(ApiError) as not_member:
            await catalog.delete_person(T, "p", "other")
        assert not_member.value.reason == "unknown_person"
        # Another tenant sees none of it.
        assert await catalog.get_persons("tenant-b", ["p"]) == []
        assert (await catalog.list_persons("tenant-b", 0, 10)).total == 0
        assert (await catalog.scope("tenant-b", [])).collections == ["other"]

    run(database_url, body)


def test_the_database_itself_refuses_what_breaks_its_rules(database_url):
    async def body(catalog: Catalog):
        await catalog.put_collection(T, "a", "A", b"{}", update=False)
        async with catalog.pool.acquire() as db:
            with pytest.raises(asyncpg.UniqueViolationError):
                await db.execute("INSERT INTO collections (tenant, id, name, data) VALUES ($1, 'b', 'A', '{}')", T)
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await db.execute("INSERT INTO memberships (tenant, collection, person) VALUES ($1, 'a', 'nobody')", T)
            with pytest.raises(asyncpg.CheckViolationError):
                await db.execute("INSERT INTO persons (tenant, id, data, version) VALUES ($1, 'p', '{}', 0)", T)
                await db.execute(
                    "INSERT INTO faces (tenant, person, face_id, vector) VALUES ($1, 'p', 'f', '\\x0102')", T
                )

    run(database_url, body)


def test_a_sharded_collection_places_each_member_in_its_shard(database_url):
    from facesearch_common.placement import person_shard

    async def body(catalog: Catalog):
        await catalog.put_collection(T, "big", "Big", b"{}", update=False, shards=4)
        for i in range(12):
            await catalog.put_person(T, f"p{i}", b"{}", False, [(f"f{i}", unit(i))], ["big"])
        rows = await catalog.pool.fetch("SELECT person, shard FROM memberships WHERE collection = 'big'")
        assert {r["person"]: r["shard"] for r in rows} == {f"p{i}": person_shard(f"p{i}", 4) for i in range(12)}
        assert len({r["shard"] for r in rows}) > 1
        assert (await catalog.scope(T, ["big"])).shards == {"big": 4}

    run(database_url, body)


def test_concurrent_writers_commit_in_log_order(database_url):
    async def body(catalog: Catalog):
        await catalog.put_collection(T, "a", "A", b"{}", update=False)
        await asyncio.gather(
            *(catalog.put_person(T, f"p{i}", b"{}", False, [(f"f{i}", unit(i))], ["a"]) for i in range(40))
        )
        rows = await changes(catalog)
        assert [r[0] for r in rows] == list(range(1, 41))
        versions = {r.id: r.version for r in await catalog.get_persons(T, [f"p{i}" for i in range(40)])}
        assert sorted(versions.values()) == list(range(1, 41))
        page = await catalog.list_persons(T, 10, 5, "a")
        assert page.total == 40 and len(page.records) == 5

    run(database_url, body)


def test_a_pooled_query_costs_one_round_trip(database_url):
    # asyncpg's default reset on release (unlock, CLOSE ALL, UNLISTEN, RESET
    # ALL) would be a second statement after every query, a search's included.
    async def body(catalog: Catalog) -> str:
        async with catalog.pool.acquire() as db:
            pid = db.get_server_pid()
            await db.fetchval("SELECT 41 + 1")
        watcher = await asyncpg.connect(database_url)
        try:
            return await watcher.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        finally:
            await watcher.close()

    assert run(database_url, body) == "SELECT 41 + 1"
