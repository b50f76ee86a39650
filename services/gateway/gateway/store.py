"""Collection and person metadata in Redis, scoped by tenant.

Keys (all under one tenant's prefix, so no lookup can cross tenants):
  fs:{tenant}:collection:{id}     JSON Collection
  fs:{tenant}:collection-names    hash name -> id (names are unique per tenant)
  fs:{tenant}:collections         set of collection ids
  fs:{tenant}:person:{id}         JSON Person (with thumbnails)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import unavailable
from .records import Collection, Person


class Store:
    def __init__(self, url: str):
        self._redis = redis.from_url(url, decode_responses=True, socket_timeout=5, health_check_interval=10)

    @staticmethod
    def _k(tenant: str, *parts: str) -> str:
        return ":".join(("fs", tenant, *parts))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False

    async def create_collection(self, tenant: str, collection: Collection) -> str | None:
        """Stores the collection; returns the id of an existing one with that name instead, if any."""
        async with self._guard():
            claimed = await self._redis.hsetnx(self._k(tenant, "collection-names"), collection.name, collection.id)
            if not claimed:
                return await self._redis.hget(self._k(tenant, "collection-names"), collection.name)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._k(tenant, "collection", collection.id), json.dumps(collection.to_dict()))
                pipe.sadd(self._k(tenant, "collections"), collection.id)
                await pipe.execute()
            return None

    async def collection(self, tenant: str, collection_id: str) -> Collection | None:
        async with self._guard():
            raw = await self._redis.get(self._k(tenant, "collection", collection_id))
        return Collection(**json.loads(raw)) if raw else None

    async def collection_ids(self, tenant: str) -> list[str]:
        async with self._guard():
            return sorted(await self._redis.smembers(self._k(tenant, "collections")))

    async def missing_collections(self, tenant: str, ids: list[str]) -> list[str]:
        if not ids:
            return []
        async with self._guard():
            found = await self._redis.smismember(self._k(tenant, "collections"), ids)
        return [i for i, ok in zip(ids, found) if not ok]

    async def put_person(self, tenant: str, person: Person) -> None:
        async with self._guard():
            await self._redis.set(self._k(tenant, "person", person.id), json.dumps(person.to_dict()))

    async def delete_person(self, tenant: str, person_id: str) -> None:
        async with self._guard():
            await self._redis.delete(self._k(tenant, "person", person_id))

    async def persons(self, tenant: str, ids: list[str]) -> dict[str, Person]:
        if not ids:
            return {}
        async with self._guard():
            raws = await self._redis.mget([self._k(tenant, "person", i) for i in ids])
        return {i: Person.from_dict(json.loads(r)) for i, r in zip(ids, raws) if r}

    @staticmethod
    @contextlib.asynccontextmanager
    async def _guard() -> AsyncIterator[None]:
        """Turns a lost Redis connection into a clear UNAVAILABLE."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise unavailable("metadata_unavailable", "the metadata store (Redis) did not answer") from exc

    async def close(self) -> None:
        await self._redis.aclose()

