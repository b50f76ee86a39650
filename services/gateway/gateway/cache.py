"""Redis as a cache of what the search path reads: complete person answers.

Never the system of record (the indexer's catalog is): entries expire, are
dropped on every update or delete, and a missing or unreachable Redis only
means the catalog is read instead.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from .records import Person

log = logging.getLogger(__name__)
TTL_S = 3600


class PersonCache:
    def __init__(self, url: str, ttl_s: int = TTL_S):
        self._redis = redis.from_url(url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
        self._ttl = ttl_s

    @staticmethod
    def _key(tenant: str, person_id: str) -> str:
        return f"fs:{tenant}:person:{person_id}"

    async def get(self, tenant: str, ids: list[str]) -> dict[str, Person]:
        if not ids:
            return {}
        try:
            raws = await self._redis.mget([self._key(tenant, i) for i in ids])
        except (RedisError, OSError) as exc:
            log.warning("cache unavailable", extra={"op": "get", "error": str(exc)})
            return {}
        return {i: Person.from_json(r) for i, r in zip(ids, raws, strict=True) if r}

    async def put(self, tenant: str, persons: list[Person]) -> None:
        if not persons:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for p in persons:
                    pipe.set(self._key(tenant, p.id), p.to_json(), ex=self._ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("cache unavailable", extra={"op": "put", "error": str(exc)})

    async def forget(self, tenant: str, ids: list[str]) -> None:
        """Drops entries after a write. A failure here could leave a stale
        entry, so it is logged loudly; entries expire after TTL_S at worst."""
        if not ids:
            return
        try:
            await self._redis.delete(*(self._key(tenant, i) for i in ids))
        except (RedisError, OSError) as exc:
            log.error("cache invalidation failed", extra={"persons": ids, "error": str(exc)})

    async def close(self) -> None:
        await self._redis.aclose()
