"""Every write of persons, faces and memberships, in one place.

The gateway's catalog (one person per API call) and both importers (a
gallery archive, the old SQLite catalog) call these inside their own
transaction, so whoever writes, the rows, a membership's shard and the
change log that versions each person are made the same way. Bulk writers
use COPY; `skip_taken` writers (an import run again) insert row by row and
leave rows that exist alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from ..placement import person_shard
from . import log_changes


@dataclass(frozen=True)
class Face:
    person: str
    face_id: str
    vector: bytes  # float32, little-endian


async def _insert(
    db: asyncpg.Connection, table: str, columns: Sequence[str], rows: list[tuple[object, ...]], skip_taken: bool
) -> None:
    if not rows:
        return
    if not skip_taken:
        await db.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    values = ", ".join(f"${i + 1}" for i in range(len(columns)))
    await db.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON CONFLICT DO NOTHING",
        rows,
    )


async def add_persons(
    db: asyncpg.Connection, tenant: str, persons: Iterable[tuple[str, str]], skip_taken: bool = False
) -> None:
    """(id, data as JSON text) each, at version 0 until `logged` or `log_imported` versions them."""
    rows: list[tuple[object, ...]] = [(tenant, id, data, 0) for id, data in persons]
    await _insert(db, "persons", ("tenant", "id", "data", "version"), rows, skip_taken)


async def add_faces(db: asyncpg.Connection, tenant: str, faces: Iterable[Face], skip_taken: bool = False) -> None:
    rows: list[tuple[object, ...]] = [(tenant, f.person, f.face_id, f.vector) for f in faces]
    await _insert(db, "faces", ("tenant", "person", "face_id", "vector"), rows, skip_taken)


async def replace_faces(db: asyncpg.Connection, tenant: str, person: str, faces: Iterable[Face]) -> None:
    await db.execute("DELETE FROM faces WHERE tenant = $1 AND person = $2", tenant, person)
    await add_faces(db, tenant, faces)


async def add_memberships(
    db: asyncpg.Connection,
    tenant: str,
    memberships: Iterable[tuple[str, str]],
    shards: Mapping[str, int],
    skip_taken: bool = False,
) -> None:
    """(collection, person) each; the person's shard of the collection
    follows from the collection's shard count (`shards`, collection -> S)."""
    rows: list[tuple[object, ...]] = [(tenant, c, p, person_shard(p, shards[c])) for c, p in memberships]
    await _insert(db, "memberships", ("tenant", "collection", "person", "shard"), rows, skip_taken)


async def replace_memberships(
    db: asyncpg.Connection, tenant: str, person: str, collections: Sequence[str], shards: Mapping[str, int]
) -> None:
    await db.execute("DELETE FROM memberships WHERE tenant = $1 AND person = $2", tenant, person)
    await add_memberships(db, tenant, [(c, person) for c in collections], shards)


async def update_person_data(db: asyncpg.Connection, tenant: str, person: str, data: str) -> None:
    """The person's data (JSON text); `logged` versions the write."""
    await db.execute("UPDATE persons SET data = $3::jsonb WHERE tenant = $1 AND id = $2", tenant, person, data)


async def remove_membership(db: asyncpg.Connection, tenant: str, person: str, collection: str) -> None:
    """The person leaves one collection; `logged` versions the write."""
    await db.execute(
        "DELETE FROM memberships WHERE tenant = $1 AND person = $2 AND collection = $3", tenant, person, collection
    )


async def remove_person(db: asyncpg.Connection, tenant: str, person: str, collections: Sequence[str]) -> int:
    """The person, its faces and memberships (the schema cascades), logged
    for the indexers of `collections`, those it was in; the log's position."""
    await db.execute("DELETE FROM persons WHERE tenant = $1 AND id = $2", tenant, person)
    return await _position(db, tenant, collections, person)


async def version_persons(db: asyncpg.Connection, tenant: str, persons: Sequence[str], seq: int) -> None:
    """Persons a logged write touched take its position as their version."""
    await db.execute("UPDATE persons SET version = $3 WHERE tenant = $1 AND id = ANY($2::text[])", tenant, persons, seq)


async def logged(db: asyncpg.Connection, tenant: str, collections: Sequence[str], person: str) -> int:
    """Logs a write to the person in `collections` for the indexers (or,
    touching none, takes a fresh position) and versions the person with it."""
    seq = await _position(db, tenant, collections, person)
    await version_persons(db, tenant, [person], seq)
    return seq


async def _position(db: asyncpg.Connection, tenant: str, collections: Sequence[str], person: str) -> int:
    # A write in no collection is logged nowhere but still needs a position
    # that orders it: the person's version, the answer's read-your-writes.
    return int(await log_changes(db, tenant, collections, person) or await db.fetchval("SELECT nextval('changes_seq')"))


async def log_imported(db: asyncpg.Connection, tenant: str, memberships: Iterable[tuple[str, str]]) -> None:
    """After an import: each (collection, person) logged, each person
    versioned with its last change."""
    versions: dict[str, int] = {}
    for collection, person in memberships:
        versions[person] = await log_changes(db, tenant, [collection], person)
    await db.executemany(
        "UPDATE persons SET version = $3 WHERE tenant = $1 AND id = $2",
        [(tenant, person, seq) for person, seq in versions.items()],
    )
