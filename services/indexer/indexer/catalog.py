"""The system of record: collections, persons, memberships and face vectors
in SQLite.

Each write is one transaction committed with `synchronous=FULL` in WAL mode:
it is on disk (fsync) before the indexer acknowledges it, so a crash loses
nothing acknowledged and leaves nothing half-written. The FAISS shards are
derived from this on start (see store.py).

With several indexers (collections placed by id, see the gateway's
placement.py) a person whose collections live on several of them is stored
on each: in full on its home, as a *replica* elsewhere. A replica exists for
its memberships only and is dropped, faces and all, when its last membership
here goes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facesearch_common import errors

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (tenant, id), UNIQUE (tenant, name));
CREATE TABLE IF NOT EXISTS persons (
    tenant TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, replica INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id));
CREATE TABLE IF NOT EXISTS memberships (
    tenant TEXT NOT NULL, collection TEXT NOT NULL, person TEXT NOT NULL,
    PRIMARY KEY (tenant, collection, person),
    FOREIGN KEY (tenant, collection) REFERENCES collections (tenant, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, person) REFERENCES persons (tenant, id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS memberships_by_person ON memberships (tenant, person);
CREATE TABLE IF NOT EXISTS faces (
    tenant TEXT NOT NULL, person TEXT NOT NULL, face_id TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (tenant, person, face_id),
    FOREIGN KEY (tenant, person) REFERENCES persons (tenant, id) ON DELETE CASCADE);
"""


class CatalogError(Exception):
    """A refused write or read, with the API's reason for it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotFound(CatalogError):
    pass


class AlreadyExists(CatalogError):
    pass


def unknown_collection(id: str) -> NotFound:
    reason, message = errors.unknown_collection(id)
    return NotFound(message, reason)


def unknown_person(id: str) -> NotFound:
    reason, message = errors.unknown_person(id)
    return NotFound(message, reason)


@dataclass(frozen=True)
class StoredFace:
    face_id: str
    vector: bytes


@dataclass(frozen=True)
class Record:
    id: str
    data: bytes
    collections: tuple[str, ...] = ()
    replica: bool = False
    faces: tuple[StoredFace, ...] = ()


class Catalog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # Deleted faces and thumbnails are overwritten, not left in free pages:
        # a deleted person is gone from the file too.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(SCHEMA)
        if "replica" not in {r[1] for r in self._db.execute("PRAGMA table_info(persons)")}:
            # Catalogs written before placement: every person is at home.
            self._db.execute("ALTER TABLE persons ADD COLUMN replica INTEGER NOT NULL DEFAULT 0")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable write: all of it or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # Collections.

    def put_collection(self, tenant: str, id: str, name: str, data: bytes, update: bool) -> None:
        with self.transaction() as db:
            clash = db.execute(
                "SELECT id FROM collections WHERE tenant = ? AND name = ? AND id != ?", (tenant, name, id)
            ).fetchone()
            if clash:
                raise AlreadyExists(
                    f"a collection named {name[:64]!r} already exists (id {clash[0]})", "collection_exists"
                )
            exists = self._exists(db, "collections", tenant, id)
            if update and not exists:
                raise unknown_collection(id)
            if not update and exists:
                raise AlreadyExists(f"collection {id!r} already exists", "collection_exists")
            if update:
                db.execute(
                    "UPDATE collections SET name = ?, data = ? WHERE tenant = ? AND id = ?", (name, data, tenant, id)
                )
            else:
                db.execute("INSERT INTO collections VALUES (?, ?, ?, ?)", (tenant, id, name, data))

    def get_collections(self, tenant: str, ids: list[str]) -> list[Record]:
        rows = self._db.execute(
            f"SELECT id, data FROM collections WHERE tenant = ? AND id IN ({_marks(ids)})", (tenant, *ids)
        ).fetchall()
        found = {r[0]: Record(r[0], r[1]) for r in rows}
        return [found[i] for i in ids if i in found]

    def list_collections(self, tenant: str, offset: int, limit: int, name: str = "") -> tuple[list[Record], int]:
        where, args = ("WHERE tenant = ? AND name = ?", (tenant, name)) if name else ("WHERE tenant = ?", (tenant,))
        total = self._db.execute(f"SELECT count(*) FROM collections {where}", args).fetchone()[0]
        rows = self._db.execute(
            f"SELECT id, data FROM collections {where} ORDER BY rowid LIMIT ? OFFSET ?", (*args, limit, offset)
        ).fetchall()
        return [Record(r[0], r[1]) for r in rows], total

    def collection_ids(self, tenant: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT id FROM collections WHERE tenant = ? ORDER BY rowid", (tenant,))]

    def delete_collection(self, tenant: str, id: str) -> None:
        with self.transaction() as db:
            members = [
                r[0]
                for r in db.execute("SELECT person FROM memberships WHERE tenant = ? AND collection = ?", (tenant, id))
            ]
            if db.execute("DELETE FROM collections WHERE tenant = ? AND id = ?", (tenant, id)).rowcount == 0:
                raise unknown_collection(id)
            self._drop_unlisted_replicas(db, tenant, members)

    # Persons.

    def put_person(
        self,
        tenant: str,
        id: str,
        data: bytes,
        update: bool,
        faces: list[StoredFace] | None,
        collections: list[str] | None,
        replica: bool = False,
    ) -> None:
        """Create (`update` false) or update a person; a `replica` is created
        or replaced whichever it is, and is kept only while it has members here."""
        with self.transaction() as db:
            exists = self._exists(db, "persons", tenant, id)
            if replica:
                update = exists
            elif update and not exists:
                raise unknown_person(id)
            if not update and exists:
                raise AlreadyExists(f"person {id!r} already exists", "person_exists")
            if collections is not None:
                missing = sorted(set(collections) - {r.id for r in self.get_collections(tenant, collections)})
                if missing:
                    raise unknown_collection(missing[0])
            if update:
                db.execute("UPDATE persons SET data = ? WHERE tenant = ? AND id = ?", (data, tenant, id))
            else:
                db.execute("INSERT INTO persons VALUES (?, ?, ?, ?)", (tenant, id, data, int(replica)))
            if faces is not None:
                db.execute("DELETE FROM faces WHERE tenant = ? AND person = ?", (tenant, id))
                db.executemany(
                    "INSERT INTO faces VALUES (?, ?, ?, ?)", [(tenant, id, f.face_id, f.vector) for f in faces]
                )
            if collections is not None:
                db.execute("DELETE FROM memberships WHERE tenant = ? AND person = ?", (tenant, id))
                db.executemany("INSERT INTO memberships VALUES (?, ?, ?)", [(tenant, c, id) for c in collections])
                self._drop_unlisted_replicas(db, tenant, [id])

    def get_persons(self, tenant: str, ids: list[str], with_faces: bool = False) -> list[Record]:
        rows = self._db.execute(
            f"SELECT id, data, replica FROM persons WHERE tenant = ? AND id IN ({_marks(ids)})", (tenant, *ids)
        ).fetchall()
        found: dict[str, tuple[str, bytes, int]] = {r[0]: r for r in rows}
        return [self._person(tenant, *found[i], with_faces) for i in ids if i in found]

    def _person(self, tenant: str, id: str, data: bytes, replica: int, with_faces: bool = False) -> Record:
        faces = tuple(self.person_faces(tenant, id)) if with_faces else ()
        return Record(id, data, tuple(self.person_collections(tenant, id)), bool(replica), faces)

    def list_persons(self, tenant: str, offset: int, limit: int, collection: str = "") -> tuple[list[Record], int]:
        """Members of `collection`, or else every person at home here (so that,
        over several indexers, each person is listed once)."""
        if collection:
            if not self._exists(self._db, "collections", tenant, collection):
                raise unknown_collection(collection)
            where = (
                "FROM persons p JOIN memberships m ON m.tenant = p.tenant AND m.person = p.id "
                "WHERE p.tenant = ? AND m.collection = ?"
            )
            args: tuple[str, ...] = (tenant, collection)
        else:
            where, args = "FROM persons p WHERE p.tenant = ? AND p.replica = 0", (tenant,)
        total = self._db.execute(f"SELECT count(*) {where}", args).fetchone()[0]
        rows = self._db.execute(
            f"SELECT p.id, p.data, p.replica {where} ORDER BY p.rowid LIMIT ? OFFSET ?", (*args, limit, offset)
        ).fetchall()
        return [self._person(tenant, *r) for r in rows], total

    def person_collections(self, tenant: str, person: str) -> list[str]:
        return [
            r[0]
            for r in self._db.execute(
                "SELECT collection FROM memberships WHERE tenant = ? AND person = ? ORDER BY rowid", (tenant, person)
            )
        ]

    def person_faces(self, tenant: str, person: str) -> list[StoredFace]:
        return [
            StoredFace(r[0], r[1])
            for r in self._db.execute(
                "SELECT face_id, vector FROM faces WHERE tenant = ? AND person = ? ORDER BY rowid", (tenant, person)
            )
        ]

    def delete_person(self, tenant: str, id: str, collection: str = "") -> None:
        with self.transaction() as db:
            if not self._exists(db, "persons", tenant, id):
                raise unknown_person(id)
            if collection:
                gone = db.execute(
                    "DELETE FROM memberships WHERE tenant = ? AND person = ? AND collection = ?",
                    (tenant, id, collection),
                ).rowcount
                if not gone:
                    raise NotFound(f"person {id!r} is not in collection {collection!r}", errors.UNKNOWN_PERSON)
                self._drop_unlisted_replicas(db, tenant, [id])
            else:
                db.execute("DELETE FROM persons WHERE tenant = ? AND id = ?", (tenant, id))

    @staticmethod
    def _drop_unlisted_replicas(db: sqlite3.Connection, tenant: str, persons: list[str]) -> None:
        db.executemany(
            "DELETE FROM persons WHERE tenant = ? AND id = ? AND replica = 1 AND NOT EXISTS ("
            "SELECT 1 FROM memberships m WHERE m.tenant = ? AND m.person = ?)",
            [(tenant, p, tenant, p) for p in persons],
        )

    # Everything, for rebuilding the shards on start.

    def all_memberships_faces(self) -> Iterator[tuple[str, str, str, str, bytes]]:
        """(tenant, collection, person, face_id, vector), grouped by shard."""
        yield from self._db.execute(
            "SELECT m.tenant, m.collection, f.person, f.face_id, f.vector FROM memberships m "
            "JOIN faces f ON f.tenant = m.tenant AND f.person = m.person ORDER BY m.tenant, m.collection, f.rowid"
        )

    @staticmethod
    def _exists(db: sqlite3.Connection, table: str, tenant: str, id: str) -> bool:
        return db.execute(f"SELECT 1 FROM {table} WHERE tenant = ? AND id = ?", (tenant, id)).fetchone() is not None


def _marks(ids: list[str]) -> str:
    return ",".join("?" * len(ids)) or "NULL"
