"""The indexer's shards, derived from PostgreSQL and kept current by its
change log.

On start an indexer loads every shard it holds (rendezvous hashing over
INDEXER_ADDRESSES, facesearch_common/placement.py; a collection is one
shard or several) from one consistent snapshot, noting the log position it
reflects. From there it follows the log: each change names a (collection,
person) that a committed write touched, and the indexer replaces that
person's faces in the person's shard of that collection with what the
database holds now (a change with no person: the collection went).
Applying the present state rather than a diff makes every change idempotent
and order-free within a batch. It is woken by LISTEN/NOTIFY and polls as
well, so a lost notification only delays it.

A search names the log position it must reflect (`min_seq`): an indexer
behind it catches up first, and refuses (`behind`) when it cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from facesearch_common import database
from facesearch_common.placement import collection_of, holders, person_shard, shard_key

from . import memory
from .registry import DimensionMismatch, Matches, Query, Registry

log = logging.getLogger(__name__)
# While listening, a poll only covers a lost notification, which delays no
# search (each names the log position it needs and waits for it, `reach`);
# while the database is unreachable, the next try comes sooner.
POLL_S = 5.0
RETRY_S = 0.5
BATCH = 5000  # log rows read at a time
# Faces read at a time while loading a shard: a shard of millions arrives in
# steps that each take well under the pool's command timeout, and is never
# held twice in memory (rows and index) as a whole.
LOAD_BATCH = 50_000

# Each face with its person's version, which searches answer with it.
_FACES_OF_MEMBER = (
    "SELECT f.face_id, f.vector, p.version FROM memberships m JOIN faces f ON f.tenant = m.tenant "
    "AND f.person = m.person JOIN persons p ON p.tenant = m.tenant AND p.id = m.person "
    "WHERE m.tenant = $1 AND m.collection = $2 AND m.person = $3 ORDER BY f.created"
)
# No ORDER BY: sorting a shard of millions spills to disk before the first
# row comes; the order faces enter a shard changes nothing it answers.
_FACES_OF_SHARD = (
    "SELECT m.person, f.face_id, f.vector, p.version FROM memberships m JOIN faces f ON f.tenant = m.tenant "
    "AND f.person = m.person JOIN persons p ON p.tenant = m.tenant AND p.id = m.person "
    "WHERE m.tenant = $1 AND m.collection = $2 AND m.shard = $3"
)


class NotHeld(LookupError):
    reason = "not_held"


class Behind(RuntimeError):
    reason = "behind"


def to_vectors(blobs: list[bytes]) -> npt.NDArray[np.float32]:
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), len(blobs[0]) // 4)


class Follower:
    def __init__(
        self,
        pool: asyncpg.Pool,
        registry: Registry,
        me: str,
        indexers: list[str],
        replicas: int,
        on_applied: Callable[[], None] = lambda: None,
    ) -> None:
        if me not in indexers:
            raise ValueError(f"INDEXER_NAME {me!r} is not one of INDEXER_ADDRESSES {indexers}")
        self.pool = pool
        self.registry = registry
        self.indexers = indexers
        self.position = indexers.index(me)
        self.replicas = replicas
        self.applied = 0  # the log position the shards reflect
        self.head = 0  # the log's end when last read
        self.loaded = asyncio.Event()
        self._on_applied = on_applied
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._shards: dict[tuple[str, str], int] = {}  # (tenant, collection) -> its shard count, fixed

    def holds(self, tenant: str, shard: str) -> bool:
        return self.position in holders(self.indexers, tenant, shard, self.replicas)

    # Loading and following.

    async def load(self) -> None:
        """Every held collection from one snapshot, and the position it reflects."""
        started, faces = time.perf_counter(), 0
        async with (
            self.pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            applied = self.head = await database.head(connection)
            for row in await connection.fetch("SELECT tenant, id, shards FROM collections ORDER BY created"):
                tenant, collection, shards = row["tenant"], row["id"], row["shards"]
                self._shards[(tenant, collection)] = shards
                for k in range(shards):
                    if self.holds(tenant, shard_key(collection, k, shards)):
                        faces += await self._load_shard(connection, tenant, collection, k, shards)
        self.applied = applied
        memory.hand_back()  # the fetched rows' heap
        self.loaded.set()
        self._on_applied()
        log.info(
            "shards loaded",
            extra={"faces": faces, "position": applied, "seconds": round(time.perf_counter() - started, 3)},
        )

    async def _load_shard(
        self, connection: asyncpg.Connection, tenant: str, collection: str, k: int, shards: int
    ) -> int:
        key, faces = (tenant, shard_key(collection, k, shards)), 0
        cursor = await connection.cursor(_FACES_OF_SHARD, tenant, collection, k)
        while rows := await cursor.fetch(LOAD_BATCH):
            vectors = to_vectors([r["vector"] for r in rows])
            self.registry.writable(key, vectors.shape[1]).add(
                [r["face_id"] for r in rows], [r["person"] for r in rows], vectors, [r["version"] for r in rows]
            )
            faces += len(rows)
        return faces

    async def catch_up(self) -> None:
        """Applies the log from the last position to its end."""
        async with self._lock:
            while True:
                async with self.pool.acquire() as connection:
                    rows = await connection.fetch(
                        "SELECT seq, tenant, collection, person FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                        self.applied,
                        BATCH,
                    )
                    # The log's end as read (for the lag metric): these rows'
                    # last, unless a full batch leaves more behind them.
                    end = rows[-1]["seq"] if rows else self.applied
                    if len(rows) == BATCH:
                        end = await database.head(connection)
                    self.head = max(self.head, end)
                    if not rows:
                        return
                    touched = dict.fromkeys((r["tenant"], r["collection"], r["person"]) for r in rows)
                    for tenant, collection, person in touched:
                        await self._apply(connection, tenant, collection, person)
                self.applied = rows[-1]["seq"]
                self._on_applied()

    async def _shard_count(self, connection: asyncpg.Connection, tenant: str, collection: str) -> int | None:
        if (tenant, collection) not in self._shards:
            shards = await connection.fetchval(
                "SELECT shards FROM collections WHERE tenant = $1 AND id = $2", tenant, collection
            )
            if shards is None:
                return None
            self._shards[(tenant, collection)] = shards
        return self._shards[(tenant, collection)]

    async def _apply(self, connection: asyncpg.Connection, tenant: str, collection: str, person: str | None) -> None:
        if person is None:
            if not await connection.fetchval(
                "SELECT 1 FROM collections WHERE tenant = $1 AND id = $2", tenant, collection
            ):
                for key in [
                    k for k, _ in self.registry.items() if k[0] == tenant and collection_of(k[1]) == collection
                ]:
                    self.registry.drop(key)
                self._shards.pop((tenant, collection), None)
            return
        shards = await self._shard_count(connection, tenant, collection)
        if shards is None:  # the collection went since: a later change drops it
            return
        key = (tenant, shard_key(collection, person_shard(person, shards), shards))
        if not self.holds(*key):
            return
        rows = await connection.fetch(_FACES_OF_MEMBER, tenant, collection, person)
        shard = self.registry.get(key)
        if shard is not None:
            shard.remove_persons([person])
        if rows:
            vectors = to_vectors([r["vector"] for r in rows])
            try:
                self.registry.writable(key, vectors.shape[1]).add(
                    [r["face_id"] for r in rows], [person] * len(rows), vectors, [r["version"] for r in rows]
                )
            except DimensionMismatch as exc:  # the gateway writes one model's vectors: a misconfiguration
                log.error("change not applied", extra={"shard": key, "person": person, "error": str(exc)})

    async def reach(self, seq: int, timeout_s: float) -> None:
        """Until the shards reflect log position `seq`; Behind if they cannot in time."""
        if self.applied >= seq:
            return
        try:
            await asyncio.wait_for(self.catch_up(), timeout_s)
        except database.RETRYABLE as exc:
            log.warning("catch-up failed", extra={"wanted": seq, "applied": self.applied, "error": repr(exc)})
        if self.applied < seq:
            raise Behind(f"this indexer reflects change {self.applied}, the search needs {seq}")

    def wake(self, *_: Any) -> None:
        self._wake.set()

    async def follow(self, url: str) -> None:
        """Runs until cancelled: loads, then applies changes as they come."""
        listener: asyncpg.Connection | None = None
        while True:
            try:
                if not self.loaded.is_set():
                    await self.load()
                if listener is None or listener.is_closed():
                    listener = await asyncpg.connect(url)
                    await listener.add_listener(database.CHANNEL, self.wake)
                await self.catch_up()
                pause = POLL_S
            except database.RETRYABLE as exc:
                log.warning("database unavailable", extra={"applied": self.applied, "error": repr(exc)})
                listener = None
                pause = RETRY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()

    # Searching.

    def search(self, query: Query, queries: npt.NDArray[np.float32]) -> Matches:
        for shard in query.shards:
            if not self.holds(query.tenant, shard):
                raise NotHeld(f"shard {shard} is not held by this indexer")
        return self.registry.search(query, queries)
