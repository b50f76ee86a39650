"""The person cache on a real redis-server, with a stand-in catalog: read
through, forgotten on writes, a reader that raced a write cannot put back
the answer the write replaced, and a lost invalidation cannot serve an old
answer to a search whose indexer saw the write."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass

import pytest
import redis

from devkit.stackenv import free_port
from gateway.cache import PersonCache
from gateway.catalog import Record
from gateway.records import Person


@pytest.fixture
def redis_url(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait()


@dataclass
class StandInCatalog:
    name: str = "v1"
    version: int = 1
    reads: int = 0

    async def get_persons(self, tenant, ids, with_faces=False):
        self.reads += 1
        return [Record("p", Person("p", self.name).details(), ("c",), (), self.version)]


def test_reads_through_and_a_raced_reader_cannot_put_back_an_old_answer(redis_url):
    async def body():
        catalog = StandInCatalog()
        cache = PersonCache(redis_url, catalog)  # type: ignore[arg-type]
        assert (await cache.read("t", {"p": 0}))["p"].name == "v1"
        assert (await cache.read("t", {"p": 0}))["p"].name == "v1" and catalog.reads == 1  # cached

        # A reader reads version 1 from the catalog; a write (version 2)
        # commits and forgets; only then does the reader store what it read.
        old = Person("p", "v1", collections=["c"])
        catalog.name, catalog.version = "v2", 2
        await cache.forget("t", ["p"], 2)
        await cache._put("t", old, 1)
        assert (await cache.read("t", {"p": 0}))["p"].name == "v2" and catalog.reads == 2
        assert (await cache.read("t", {"p": 0}))["p"].name == "v2" and catalog.reads == 2  # v2 is cached

        # An older write's late invalidation does not hide the newer answer.
        await cache.forget("t", ["p"], 1)
        assert (await cache.read("t", {"p": 0}))["p"].name == "v2" and catalog.reads == 2
        await cache.close()

    asyncio.run(body())


def test_an_entry_older_than_the_indexers_answer_is_a_miss(redis_url):
    """The write's marker never landed (Redis frozen or restarting): the
    entry of version 1 is still there. A search whose indexer answers with
    version 2 reads the catalog, and caches what it read."""

    async def body():
        catalog = StandInCatalog()
        cache = PersonCache(redis_url, catalog)  # type: ignore[arg-type]
        assert (await cache.read("t", {"p": 1}))["p"].name == "v1"
        catalog.name, catalog.version = "v2", 2  # written; forget() was lost
        assert (await cache.read("t", {"p": 1}))["p"].name == "v1" and catalog.reads == 1  # as asked: stale allowed
        assert (await cache.read("t", {"p": 2}))["p"].name == "v2" and catalog.reads == 2
        assert (await cache.read("t", {"p": 2}))["p"].name == "v2" and catalog.reads == 2  # now cached at 2
        await cache.close()

    asyncio.run(body())


def test_a_gateway_answers_from_its_own_memory_only_at_the_version_asked(redis_url):
    """Persons read once are held in the gateway: the same version again asks
    neither Redis nor the catalog; a newer version (another gateway's write)
    and an unknown one (0) are not answered from there."""

    async def body():
        catalog = StandInCatalog()
        cache = PersonCache(redis_url, catalog)  # type: ignore[arg-type]
        assert (await cache.read("t", {"p": 1}))["p"].name == "v1"
        redis.Redis.from_url(redis_url).flushall()  # Redis forgets everything
        assert (await cache.read("t", {"p": 1}))["p"].name == "v1" and catalog.reads == 1  # held
        catalog.name, catalog.version = "v2", 2  # another gateway wrote
        assert (await cache.read("t", {"p": 2}))["p"].name == "v2" and catalog.reads == 2
        redis.Redis.from_url(redis_url).flushall()
        assert (await cache.read("t", {"p": 0}))["p"].name == "v2" and catalog.reads == 3  # 0: not held
        await cache.forget("t", ["p"], 3)  # this gateway's own write
        assert cache._held("t", {"p": 2}) == {}
        await cache.close()

    asyncio.run(body())
