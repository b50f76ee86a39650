"""The system of record in PostgreSQL: collections, persons, memberships and
face vectors, per tenant.

Every write is one transaction, committed before the API answers, and
appends to the change log (facesearch_common/database) what it touched, for
the indexers to follow; it returns the log position it committed at. The
database enforces what it can: one collection name per tenant, memberships
only of existing collections and persons, faces only of existing persons.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import grpc
import numpy as np
import numpy.typing as npt

from facesearch_common import database
from facesearch_common.database import writes

from .errors import ApiError, unknown_collection, unknown_person


@dataclass(frozen=True)
class StoredFace:
    face_id: str
    vector: bytes  # float32 little-endian


@dataclass(frozen=True)
class Record:
    id: str
    data: bytes  # the API's JSON
    collections: tuple[str, ...] = ()  # persons: oldest membership first
    faces: tuple[StoredFace, ...] = ()  # persons, when asked
    version: int = 0  # persons: the log position of the last change to its answer


@dataclass(frozen=True)
class Page:
    records: list[Record]
    total: int


@dataclass(frozen=True)
class Written:
    """What a write committed: its log position and the persons whose answers changed."""

    seq: int
    persons: list[str]
    faces: int = 0  # faces that left the index (deletes)


@dataclass(frozen=True)
class Scope:
    """What a search is about to read: the log's end, and the collections that
    exist with their shard counts, in creation order."""

    head: int
    shards: dict[str, int]

    @property
    def collections(self) -> list[str]:
        return list(self.shards)


def _exists(name: str, id: str) -> ApiError:
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, f"{name}_exists", f"{name} {id!r} already exists")


def _name_taken(name: str, id: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.ALREADY_EXISTS,
        "collection_exists",
        f"a collection named {name[:64]!r} already exists (id {id})",
    )


_PERSONS = (
    "SELECT p.id, p.data::text AS data, p.version, "
    "array(SELECT m.collection FROM memberships m WHERE m.tenant = p.tenant AND m.person = p.id ORDER BY m.created) "
    "AS collections FROM persons p"
)


class Catalog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str) -> Catalog:
        return cls(await database.pool(url))

    async def close(self) -> None:
        await self.pool.close()

    async def claim_model(self, model: database.Model) -> None:
        """The database's vectors are this model's (ModelMismatch if another's)."""
        async with self.pool.acquire() as connection:
            await database.claim_model(connection, model)

    async def stored_calibration(self) -> dict[str, float] | None:
        return await database.stored_calibration(self.pool)

    async def store_calibration(self, model: database.Model, values: dict[str, float]) -> None:
        async with self.pool.acquire() as connection:
            await database.store_calibration(connection, model, values)

    async def ready(self) -> bool:
        try:
            async with self.pool.acquire(timeout=2) as connection:
                await connection.fetchval("SELECT 1")
            return True
        except database.RETRYABLE:
            return False

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as connection, connection.transaction():
            yield connection

    # Collections.

    async def put_collection(self, tenant: str, id: str, name: str, data: bytes, update: bool, shards: int = 1) -> None:
        """Creates (`update` false, in `shards` shards) or updates a collection."""
        try:
            async with self._transaction() as db:
                clash = await db.fetchval(
                    "SELECT id FROM collections WHERE tenant = $1 AND name = $2 AND id <> $3", tenant, name, id
                )
                if clash:
                    raise _name_taken(name, clash)
                if update:
                    done = await db.execute(
                        "UPDATE collections SET name = $3, data = $4::jsonb WHERE tenant = $1 AND id = $2",
                        tenant,
                        id,
                        name,
                        data.decode(),
                    )
                    if done == "UPDATE 0":
                        raise unknown_collection(id)
                else:
                    await db.execute(
                        "INSERT INTO collections (tenant, id, name, data, shards) VALUES ($1, $2, $3, $4::jsonb, $5)",
                        tenant,
                        id,
                        name,
                        data.decode(),
                        shards,
                    )
        except asyncpg.UniqueViolationError:  # a concurrent create of the same name or id won
            raise _name_taken(name, "?") from None

    async def get_collections(self, tenant: str, ids: Sequence[str]) -> list[Record]:
        rows = await self.pool.fetch(
            "SELECT id, data::text AS data FROM collections WHERE tenant = $1 AND id = ANY($2::text[])",
            tenant,
            list(ids),
        )
        found = {r["id"]: Record(r["id"], r["data"].encode()) for r in rows}
        return [found[i] for i in ids if i in found]

    async def list_collections(self, tenant: str, offset: int, limit: int) -> Page:
        async with self.pool.acquire() as db:
            total = await db.fetchval("SELECT count(*) FROM collections WHERE tenant = $1", tenant)
            rows = await db.fetch(
                "SELECT id, data::text AS data FROM collections WHERE tenant = $1 ORDER BY created LIMIT $2 OFFSET $3",
                tenant,
                limit,
                offset,
            )
        return Page([Record(r["id"], r["data"].encode()) for r in rows], total)

    async def delete_collection(self, tenant: str, id: str) -> Written:
        async with self._transaction() as db:
            members = [
                r["person"]
                for r in await db.fetch(
                    "SELECT person FROM memberships WHERE tenant = $1 AND collection = $2", tenant, id
                )
            ]
            faces = await db.fetchval(
                "SELECT count(*) FROM faces WHERE tenant = $1 AND person = ANY($2::text[])", tenant, members
            )
            if await db.execute("DELETE FROM collections WHERE tenant = $1 AND id = $2", tenant, id) == "DELETE 0":
                raise unknown_collection(id)
            seq = await database.log_changes(db, tenant, [id], None)
            seq = max(seq, await database.log_memberships(db, tenant, members))
            await writes.version_persons(db, tenant, members, seq)
        return Written(seq, members, faces)

    # Persons.

    async def put_person(
        self,
        tenant: str,
        id: str,
        data: bytes,
        update: bool,
        faces: list[tuple[str, npt.NDArray[np.float32]]] | None = None,
        collections: list[str] | None = None,
    ) -> Written:
        """Creates (`update` false) or updates a person; faces and memberships
        are replaced when given."""
        async with self._transaction() as db:
            before = await _locked_memberships(db, tenant, id)
            if update and before is None:
                raise unknown_person(id)
            if not update and before is not None:
                raise _exists("person", id)
            if collections is not None:
                known = {
                    r["id"]: r["shards"]
                    for r in await db.fetch(
                        "SELECT id, shards FROM collections WHERE tenant = $1 AND id = ANY($2::text[])",
                        tenant,
                        collections,
                    )
                }
                missing = [c for c in collections if c not in known]
                if missing:
                    raise unknown_collection(missing[0])
            if update:
                await writes.update_person_data(db, tenant, id, data.decode())
            else:
                await writes.add_persons(db, tenant, [(id, data.decode())])
            if faces is not None:
                stored = [writes.Face(id, face_id, np.asarray(v, "<f4").tobytes()) for face_id, v in faces]
                await writes.replace_faces(db, tenant, id, stored)
            if collections is not None:
                await writes.replace_memberships(db, tenant, id, collections, known)
            touched = list(
                dict.fromkeys([*(before or []), *(collections if collections is not None else before or [])])
            )
            seq = await writes.logged(db, tenant, touched, id)
        return Written(seq, [id])

    async def get_persons(self, tenant: str, ids: Sequence[str], with_faces: bool = False) -> list[Record]:
        async with self.pool.acquire() as db:
            rows = await db.fetch(f"{_PERSONS} WHERE p.tenant = $1 AND p.id = ANY($2::text[])", tenant, list(ids))
            faces: dict[str, list[StoredFace]] = {}
            if with_faces and rows:
                for f in await db.fetch(
                    "SELECT person, face_id, vector FROM faces WHERE tenant = $1 AND person = ANY($2::text[]) "
                    "ORDER BY created",
                    tenant,
                    list(ids),
                ):
                    faces.setdefault(f["person"], []).append(StoredFace(f["face_id"], f["vector"]))
        found = {r["id"]: _person(r, faces.get(r["id"], [])) for r in rows}
        return [found[i] for i in ids if i in found]

    async def list_persons(self, tenant: str, offset: int, limit: int, collection: str = "") -> Page:
        async with self.pool.acquire() as db:
            if collection:
                if not await db.fetchval("SELECT 1 FROM collections WHERE tenant = $1 AND id = $2", tenant, collection):
                    raise unknown_collection(collection)
                where = (
                    " WHERE p.tenant = $1 AND EXISTS (SELECT 1 FROM memberships m"
                    " WHERE m.tenant = p.tenant AND m.person = p.id AND m.collection = $2)"
                )
                args: tuple[str, ...] = (tenant, collection)
            else:
                where, args = " WHERE p.tenant = $1", (tenant,)
            total = await db.fetchval(f"SELECT count(*) FROM persons p{where}", *args)
            n = len(args)
            rows = await db.fetch(
                f"{_PERSONS}{where} ORDER BY p.created LIMIT ${n + 1} OFFSET ${n + 2}", *args, limit, offset
            )
        return Page([_person(r) for r in rows], total)

    async def delete_person(self, tenant: str, id: str, collection: str = "") -> Written:
        async with self._transaction() as db:
            held = await _locked_memberships(db, tenant, id)
            if held is None:
                raise unknown_person(id)
            faces = await db.fetchval("SELECT count(*) FROM faces WHERE tenant = $1 AND person = $2", tenant, id)
            if collection:
                if collection not in held:
                    raise unknown_person(id, f"is not in collection {collection!r}")
                await writes.remove_membership(db, tenant, id, collection)
                seq = await writes.logged(db, tenant, [collection], id)
            else:
                seq = await writes.remove_person(db, tenant, id, held)
        return Written(seq, [id], faces)

    # Searches.

    async def scope(self, tenant: str, collections: Sequence[str]) -> Scope:
        """The log's end and which of `collections` exist (all the tenant's
        when none is named), in one round trip."""
        row = await self.pool.fetchrow(
            "SELECT (SELECT coalesce(max(seq), 0) FROM changes) AS head, "
            "coalesce(array_agg(id ORDER BY created), '{}') AS ids, "
            "coalesce(array_agg(shards ORDER BY created), '{}') AS shards FROM collections "
            "WHERE tenant = $1 AND (cardinality($2::text[]) = 0 OR id = ANY($2::text[]))",
            tenant,
            list(collections),
        )
        assert row is not None
        return Scope(row["head"], dict(zip(row["ids"], row["shards"], strict=True)))


async def _locked_memberships(db: asyncpg.Connection, tenant: str, id: str) -> list[str] | None:
    """The person's collections, its row locked to the transaction's end; None if it does not exist."""
    found: list[str] | None = await db.fetchval(
        "SELECT array(SELECT collection FROM memberships WHERE tenant = $1 AND person = $2) "
        "FROM persons WHERE tenant = $1 AND id = $2 FOR UPDATE",
        tenant,
        id,
    )
    return found


def _person(row: asyncpg.Record, faces: Sequence[StoredFace] = ()) -> Record:
    return Record(row["id"], row["data"].encode(), tuple(row["collections"]), tuple(faces), row["version"])
