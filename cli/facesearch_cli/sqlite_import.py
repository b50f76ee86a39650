"""Moves an indexer's SQLite catalog (FaceSearch before PostgreSQL) into
PostgreSQL: `facesearch db import-sqlite FILE...`, one file per old indexer.

Each file's collections, persons, memberships and faces are copied in one
transaction per file, and every membership is logged as a change so that
running indexers pick it up (stopped ones load it on start). A person that
an old indexer kept as a replica is in two files: its first copy is kept and
the memberships of both. Collection ids keep working: the old placement byte
at their start is just part of the id now. Running it again adds nothing
twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from facesearch_common.database import migrate, writes


@dataclass(frozen=True)
class Imported:
    collections: int
    persons: int
    faces: int


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(query).fetchall()


async def import_file(url: str, path: Path) -> Imported:
    collections = _rows(path, "SELECT tenant, id, name, data FROM collections ORDER BY rowid")
    persons = _rows(path, "SELECT tenant, id, data FROM persons ORDER BY rowid")
    memberships = _rows(path, "SELECT tenant, collection, person FROM memberships ORDER BY rowid")
    faces = _rows(path, "SELECT tenant, person, face_id, vector FROM faces ORDER BY rowid")
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
        async with connection.transaction():
            await connection.executemany(
                "INSERT INTO collections (tenant, id, name, data) VALUES ($1, $2, $3, $4::jsonb) "
                "ON CONFLICT DO NOTHING",
                [(t, i, n, bytes(d).decode()) for t, i, n, d in collections],
            )
            # The old catalog had no shards: every collection is one (S = 1).
            for tenant in dict.fromkeys(t for t, *_ in [*persons, *faces, *memberships]):
                await writes.add_persons(
                    connection, tenant, [(i, bytes(d).decode()) for t, i, d in persons if t == tenant], skip_taken=True
                )
                await writes.add_faces(
                    connection,
                    tenant,
                    [writes.Face(p, f, bytes(v)) for t, p, f, v in faces if t == tenant],
                    skip_taken=True,
                )
                joined = [(c, p) for t, c, p in memberships if t == tenant]
                await writes.add_memberships(connection, tenant, joined, {c: 1 for c, _ in joined}, skip_taken=True)
                await writes.log_imported(connection, tenant, joined)
    finally:
        await connection.close()
    return Imported(len(collections), len(persons), len(faces))
