"""A tenant's gallery as one portable file: `facesearch export` and
`facesearch import`.

The file is a zip archive of standard parts, readable without FaceSearch:

    manifest.json       format, version, the model (name, weights sha256,
                        dimensions), tenant, counts, export time
    collections.jsonl   one collection a line: id, name, shards, data (the
                        API's fields)
    persons.jsonl       one person a line: id, data (the API's fields, with
                        base64 JPEG thumbnails)
    memberships.jsonl   one (collection, person) a line
    faces.jsonl         one face a line: person, face_id; line i is row i of
    faces.npy           float32 [faces, dim], little-endian, unit length

Vectors are only comparable with vectors of the same model and weights, so
an import into a database that holds (or a gateway that serves) another
model is refused, and so is one whose ids or collection names are taken: an
import is one transaction that adds everything or nothing.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from facesearch_common import database
from facesearch_common.database import writes

FORMAT = "facesearch-gallery"
VERSION = 1


class GalleryRefused(ValueError):
    """An archive that cannot be imported here; nothing was written."""


@dataclass(frozen=True)
class Counts:
    collections: int
    persons: int
    memberships: int
    faces: int

    def __str__(self) -> str:
        return (
            f"{self.collections} collections, {self.persons} persons, "
            f"{self.memberships} memberships, {self.faces} faces"
        )


@dataclass(frozen=True)
class Gallery:
    """What an archive holds, in memory."""

    model: database.Model
    tenant: str
    collections: list[dict[str, Any]]
    persons: list[dict[str, Any]]
    memberships: list[dict[str, str]]
    faces: list[dict[str, str]]
    vectors: npt.NDArray[np.float32]

    @property
    def counts(self) -> Counts:
        return Counts(len(self.collections), len(self.persons), len(self.memberships), len(self.faces))


def _jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode()


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.decode().splitlines():
        if line.strip():
            yield json.loads(line)


def write(gallery: Gallery, path: Path) -> None:
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "model": asdict(gallery.model),
        "tenant": gallery.tenant,
        "counts": asdict(gallery.counts),
        "exported": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    vectors = io.BytesIO()
    np.save(vectors, gallery.vectors.astype("<f4"), allow_pickle=False)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        archive.writestr("collections.jsonl", _jsonl(gallery.collections))
        archive.writestr("persons.jsonl", _jsonl(gallery.persons))
        archive.writestr("memberships.jsonl", _jsonl(gallery.memberships))
        archive.writestr("faces.jsonl", _jsonl(gallery.faces))
        archive.writestr("faces.npy", vectors.getvalue())


def read(path: Path) -> Gallery:
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
                raise GalleryRefused(f"{path} is not a {FORMAT} archive of version {VERSION}")
            parts = {name: list(_lines(archive.read(f"{name}.jsonl"))) for name in ("collections", "persons")}
            memberships = list(_lines(archive.read("memberships.jsonl")))
            faces = list(_lines(archive.read("faces.jsonl")))
            vectors = np.load(io.BytesIO(archive.read("faces.npy")), allow_pickle=False)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, GalleryRefused):
            raise
        raise GalleryRefused(f"{path} is not a readable {FORMAT} archive: {exc}") from None
    model = database.Model(**manifest["model"])
    if vectors.dtype != np.float32 or vectors.shape != (len(faces), model.dim):
        raise GalleryRefused(
            f"faces.npy is {vectors.dtype} {vectors.shape}, expected float32 ({len(faces)}, {model.dim})"
        )
    return Gallery(model, manifest["tenant"], parts["collections"], parts["persons"], memberships, faces, vectors)


# Export.


async def _collections(connection: asyncpg.Connection, tenant: str, collection: str | None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await connection.fetch(
        "SELECT id, name, shards, data FROM collections "
        "WHERE tenant = $1 AND ($2::text IS NULL OR id = $2 OR name = $2) ORDER BY created",
        tenant,
        collection,
    )
    if collection is not None and not rows:
        raise GalleryRefused(f"tenant {tenant!r} has no collection {collection!r} (an id or a name)")
    return rows


async def export(url: str, tenant: str, collection: str | None = None) -> Gallery:
    """The tenant's collections (or the one named, by id or name), their
    persons, memberships and faces, read in one snapshot."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            model = await database.recorded_model(connection)
            if model is None:
                raise GalleryRefused("this database records no model yet: start the gateway once, then export")
            collections = await _collections(connection, tenant, collection)
            ids = [r["id"] for r in collections]
            memberships = await connection.fetch(
                "SELECT collection, person FROM memberships WHERE tenant = $1 AND collection = ANY($2::text[]) "
                "ORDER BY created",
                tenant,
                ids,
            )
            members = list(dict.fromkeys(r["person"] for r in memberships))
            persons = await connection.fetch(
                "SELECT id, data FROM persons WHERE tenant = $1 AND id = ANY($2::text[]) ORDER BY created",
                tenant,
                members,
            )
            faces = await connection.fetch(
                "SELECT person, face_id, vector FROM faces WHERE tenant = $1 AND person = ANY($2::text[]) "
                "ORDER BY created",
                tenant,
                members,
            )
    finally:
        await connection.close()
    vectors = np.frombuffer(b"".join(r["vector"] for r in faces), "<f4").reshape(len(faces), model.dim)
    return Gallery(
        model,
        tenant,
        [{"id": r["id"], "name": r["name"], "shards": r["shards"], "data": json.loads(r["data"])} for r in collections],
        [{"id": r["id"], "data": json.loads(r["data"])} for r in persons],
        [{"collection": r["collection"], "person": r["person"]} for r in memberships],
        [{"person": r["person"], "face_id": r["face_id"]} for r in faces],
        vectors,
    )


# Import.


async def _refuse_taken(connection: asyncpg.Connection, tenant: str, gallery: Gallery) -> None:
    taken = await connection.fetch(
        "SELECT id, name FROM collections WHERE tenant = $1 AND (id = ANY($2::text[]) OR name = ANY($3::text[]))",
        tenant,
        [c["id"] for c in gallery.collections],
        [c["name"] for c in gallery.collections],
    )
    if taken:
        names = ", ".join(f"{r['name']} ({r['id']})" for r in taken)
        raise GalleryRefused(f"tenant {tenant!r} already has collections with these ids or names: {names}")
    persons = await connection.fetchval(
        "SELECT count(*) FROM persons WHERE tenant = $1 AND id = ANY($2::text[])",
        tenant,
        [p["id"] for p in gallery.persons],
    )
    if persons:
        raise GalleryRefused(f"tenant {tenant!r} already has {persons} of the gallery's persons (the same ids)")


async def load(url: str, gallery: Gallery, tenant: str | None = None) -> Counts:
    """Adds the gallery to tenant `tenant` (the exported one by default), in
    one transaction, logging every membership for the indexers."""
    tenant = tenant or gallery.tenant
    connection = await asyncpg.connect(url)
    try:
        await database.migrate(connection)
        async with connection.transaction():
            try:
                await database.claim_model(connection, gallery.model)
            except database.ModelMismatch as exc:
                raise GalleryRefused(f"the gallery was made with {gallery.model}, but {exc}") from None
            await _refuse_taken(connection, tenant, gallery)
            await connection.executemany(
                "INSERT INTO collections (tenant, id, name, data, shards) VALUES ($1, $2, $3, $4::jsonb, $5)",
                [(tenant, c["id"], c["name"], json.dumps(c["data"]), c["shards"]) for c in gallery.collections],
            )
            await writes.add_persons(connection, tenant, [(p["id"], json.dumps(p["data"])) for p in gallery.persons])
            await writes.add_faces(
                connection,
                tenant,
                (
                    writes.Face(f["person"], f["face_id"], gallery.vectors[i].astype("<f4").tobytes())
                    for i, f in enumerate(gallery.faces)
                ),
            )
            memberships = [(m["collection"], m["person"]) for m in gallery.memberships]
            shards = {c["id"]: c["shards"] for c in gallery.collections}
            await writes.add_memberships(connection, tenant, memberships, shards)
            await writes.log_imported(connection, tenant, memberships)
    finally:
        await connection.close()
    return gallery.counts
