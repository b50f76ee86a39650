"""Persons as searches answer them: read from Redis, else from the catalog
(then cached), and forgotten after every write, all here.

Redis is never the system of record: entries expire, a missing or unreachable
Redis only means the catalog is read instead. Each entry carries its
person's version (the change-log position of the last write to its answer).
A write leaves a marker with its own version in place of the entry, and an
entry is stored only over an older one: a reader that read before a write
and stores after it (a race) cannot put back the answer the write replaced.

A write's marker can fail to land (Redis frozen, restarting, unreachable
for a moment), so a reader does not rely on it: it asks for each person at
least the version the indexer answered with (which reflects every write
acknowledged before the search), and an older entry counts as a miss.

The same rule lets each gateway keep the persons it read in its own memory
(LOCAL_KEPT of them): an entry at the version the indexer answered with is
that person as of the search, so a search whose persons were read before
asks Redis nothing (a round trip and a JSON parse a person). Only a known
version is answered from there (an indexer answers 0 for a person whose
version it does not know), and this gateway's own writes drop its entries.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError

from . import metrics
from .catalog import Catalog
from .records import Person

log = logging.getLogger(__name__)
TTL_S = 3600
LOCAL_KEPT = 10_000

# KEYS[1]: the entry; ARGV: version, answer ("" for a write's marker), TTL.
# An entry stands unless what is there is newer, or as new and an answer
# (an answer at the version of a marker is the state after that write).
_STORE_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, '|', 1, true)
  local version = tonumber(string.sub(current, 1, sep - 1))
  local wanted = tonumber(ARGV[1])
  if version > wanted or (version == wanted and (ARGV[2] == '' or sep < #current)) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""


class PersonCache:
    def __init__(self, url: str, catalog: Catalog, ttl_s: int = TTL_S):
        # A connection that Redis dropped (a restart) fails the next command:
        # retry it once on a new one, so a write's invalidation is not lost to it.
        self._redis = redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[ConnectionError],
        )
        self._store = self._redis.register_script(_STORE_IF_NEWER)
        self.catalog = catalog
        self._ttl = ttl_s
        self._local: dict[tuple[str, str], tuple[int, Person]] = {}  # (tenant, id) -> (version, person)

    @staticmethod
    def _key(tenant: str, person_id: str) -> str:
        return f"fs:{tenant}:person:{person_id}"

    async def read(self, tenant: str, versions: dict[str, int]) -> dict[str, Person]:
        """The persons that exist of those asked for, each at least at the
        version asked (person id -> version)."""
        ids = list(versions)
        with metrics.STAGE.labels("cache").time():
            found = self._held(tenant, versions)
            if len(found) < len(ids):
                found.update(await self._cached(tenant, {i: v for i, v in versions.items() if i not in found}))
            missing = [i for i in ids if i not in found]
            metrics.CACHE.labels("hit").inc(len(ids) - len(missing))
            metrics.CACHE.labels("miss").inc(len(missing))
            if missing:
                for record in await self.catalog.get_persons(tenant, missing):
                    person = Person.from_record(record.data, record.collections)
                    found[person.id] = person
                    self._hold(tenant, person, record.version)
                    await self._put(tenant, person, record.version)
            return found

    def _held(self, tenant: str, versions: dict[str, int]) -> dict[str, Person]:
        """The persons this gateway holds at least at the versions asked."""
        found = {}
        for i, wanted in versions.items():
            held = self._local.get((tenant, i))
            if held is not None and wanted > 0 and held[0] >= wanted:
                found[i] = held[1]
        return found

    def _hold(self, tenant: str, person: Person, version: int) -> None:
        key = (tenant, person.id)
        held = self._local.get(key)
        if held is not None and held[0] > version:
            return
        if held is None and len(self._local) >= LOCAL_KEPT:
            del self._local[next(iter(self._local))]  # the oldest
        self._local[key] = (version, person)

    async def _cached(self, tenant: str, versions: dict[str, int]) -> dict[str, Person]:
        if not versions:
            return {}
        try:
            raws = await self._redis.mget([self._key(tenant, i) for i in versions])
        except (RedisError, OSError) as exc:
            log.warning("cache unavailable", extra={"op": "get", "error": str(exc)})
            return {}
        found = {}
        for (i, wanted), raw in zip(versions.items(), raws, strict=True):
            version, _, answer = str(raw).partition("|") if raw else ("0", "", "")
            # A write's marker is no answer; an entry older than the indexer's
            # answer is one whose invalidation was lost.
            if answer and int(version) >= wanted:
                found[i] = Person.from_json(answer)
                self._hold(tenant, found[i], int(version))
        return found

    async def _put(self, tenant: str, person: Person, version: int) -> None:
        try:
            await self._store(keys=[self._key(tenant, person.id)], args=[version, person.to_json(), self._ttl])
        except (RedisError, OSError) as exc:
            log.warning("cache unavailable", extra={"op": "put", "error": str(exc)})

    async def forget(self, tenant: str, ids: list[str], version: int) -> None:
        """After a write at `version`: the entries of `ids` give way to markers.
        A failure here could leave a stale entry, so it is logged loudly;
        entries expire after TTL_S at worst."""
        if not ids:
            return
        for i in ids:
            self._local.pop((tenant, i), None)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    await self._store(keys=[self._key(tenant, i)], args=[version, "", self._ttl], client=pipe)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.error("cache invalidation failed", extra={"persons": ids, "error": str(exc)})

    async def close(self) -> None:
        await self._redis.aclose()
