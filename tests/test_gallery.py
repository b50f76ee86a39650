"""Gallery export and import (cli/facesearch_cli/gallery.py and the
`facesearch export` / `import` commands): a collection of the session's
stack exported, imported into a fresh stack, and the same searches answer
the same; the archive is plain zip, JSON Lines and .npy; an archive of
another model, or one whose ids are taken, is refused and writes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import zipfile

import asyncpg
import numpy as np
import pytest

from devkit import lfw, postgres
from devkit.client import Rest
from devkit.stack import Stack
from devkit.stackenv import free_port
from facesearch_cli import gallery
from facesearch_common import database

FACESEARCH = os.path.join(os.path.dirname(sys.executable), "facesearch")


def cli(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FACESEARCH, *args],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def answers(rest: Rest, collection: str, names: list[str]) -> list:
    found = []
    for name in names:
        answer = rest.search([lfw.b64(lfw.crop(lfw.photos(name)[3]))], collection_id=collection, max_results=3).json()
        found.append((answer["faces_searched"], [(p["id"], p["name"], p["score"], p["notes"]) for p in answer["data"]]))
    return found


@pytest.mark.e2e
@pytest.mark.lfw
def test_an_exported_collection_answers_the_same_in_a_fresh_stack(stack, rest, tmp_path):
    names = lfw.identities()[100:130]
    collection = rest.collection("exported")
    for name in names:
        rest.enroll(name, lfw.photos(name)[0], [collection], notes=f"{name} notes")
    before = answers(rest, collection, names)
    archive = tmp_path / "gallery.zip"
    exported = cli(
        "export", "--tenant", "default", "--collection", "exported", str(archive), url=stack.env()["DATABASE_URL"]
    )
    assert exported.returncode == 0, exported.stderr
    assert f"1 collections, {len(names)} persons" in exported.stdout

    with zipfile.ZipFile(archive) as z:  # what any other tool reads
        manifest = json.loads(z.read("manifest.json"))
        vectors = np.load(z.open("faces.npy"))
        faces = z.read("faces.jsonl").decode().splitlines()
    assert manifest["model"]["name"] == "mobilefacenet-casia" and manifest["tenant"] == "default"
    assert vectors.shape == (len(faces), manifest["model"]["dim"]) and np.allclose(np.linalg.norm(vectors, axis=1), 1)

    fresh = Stack(tmp_path / "fresh", lfw.evaluation_model())
    try:
        fresh.start(only=["postgres"])
        url = fresh.env()["DATABASE_URL"]
        postgres.wait_ready(url)
        imported = cli("import", str(archive), url=url)
        assert imported.returncode == 0, imported.stderr
        # The database now holds MobileFaceNet's vectors: a gateway serving another model will not start.
        env = {**fresh.env(), "FACESEARCH_MODEL": "facenet-vggface2", "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}"}
        wrong = subprocess.run(
            [sys.executable, "-m", "gateway.server"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert wrong.returncode == 2 and "holds vectors of mobilefacenet-casia" in wrong.stdout + wrong.stderr
        fresh.start(only=[n for n in fresh.names() if n != "postgres"])
        fresh.wait_healthy()
        assert answers(Rest(fresh.rest, fresh.token()), collection, names) == before
        assert sum(bool(found) for _, found in before) >= 20  # and they do find people
        again = cli("import", str(archive), url=url)
        assert again.returncode == 2 and "already has collections" in again.stderr
    finally:
        fresh.stop()


MODEL = database.Model("test-model", "ab" * 32, 4)


def small_gallery(model: database.Model = MODEL) -> gallery.Gallery:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, model.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return gallery.Gallery(
        model=model,
        tenant="t",
        collections=[{"id": "c" * 24, "name": "one", "shards": 2, "data": {"id": "c" * 24, "name": "one"}}],
        persons=[{"id": p * 24, "data": {"id": p * 24, "name": p}} for p in "ab"],
        memberships=[{"collection": "c" * 24, "person": p * 24} for p in "ab"],
        faces=[
            {"person": "a" * 24, "face_id": "f1"},
            {"person": "a" * 24, "face_id": "f2"},
            {"person": "b" * 24, "face_id": "f3"},
        ],
        vectors=vectors,
    )


def rows(url: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        connection = await asyncpg.connect(url)
        try:
            tables = ("collections", "persons", "memberships", "faces", "changes")
            return {t: await connection.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
        finally:
            await connection.close()

    return asyncio.run(count())


def test_an_archive_round_trips_and_logs_each_membership(database_url, tmp_path):
    path = tmp_path / "g.zip"
    gallery.write(small_gallery(), path)
    read = gallery.read(path)
    assert asyncio.run(gallery.load(database_url, read, tenant="other")) == read.counts
    assert rows(database_url) == {"collections": 1, "persons": 2, "memberships": 2, "faces": 3, "changes": 2}
    out = asyncio.run(gallery.export(database_url, "other"))
    assert (out.model, out.collections, out.persons, out.memberships, out.faces) == (
        read.model,
        read.collections,
        read.persons,
        read.memberships,
        read.faces,
    )
    assert np.array_equal(out.vectors, read.vectors)


def test_another_models_gallery_or_taken_ids_are_refused_and_write_nothing(database_url):
    asyncio.run(gallery.load(database_url, small_gallery()))
    before = rows(database_url)
    other = database.Model("other-model", "cd" * 32, 4)
    with pytest.raises(gallery.GalleryRefused, match="was made with other-model"):
        asyncio.run(gallery.load(database_url, small_gallery(other), tenant="fresh-tenant"))
    with pytest.raises(gallery.GalleryRefused, match="already has collections"):
        asyncio.run(gallery.load(database_url, small_gallery()))
    assert rows(database_url) == before


def test_a_database_of_one_model_refuses_another(database_url):
    async def claim(model: database.Model) -> None:
        connection = await asyncpg.connect(database_url)
        try:
            await database.migrate(connection)
            await database.claim_model(connection, model)
        finally:
            await connection.close()

    asyncio.run(claim(MODEL))
    asyncio.run(claim(MODEL))  # the same again is fine
    with pytest.raises(database.ModelMismatch, match="holds vectors of test-model"):
        asyncio.run(claim(database.Model("facenet-vggface2", "00" * 32, 512)))


def test_a_file_that_is_not_a_gallery_is_refused(tmp_path):
    path = tmp_path / "not.zip"
    path.write_bytes(b"hello")
    with pytest.raises(gallery.GalleryRefused, match="not a readable"):
        gallery.read(path)
