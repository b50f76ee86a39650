"""Backup is pg_dump: the session stack's database dumped, restored into a
fresh stack before its services start, and the same searches give the same
answers there."""

from __future__ import annotations

import subprocess

import pytest

from devkit import lfw, postgres
from devkit.client import Rest
from devkit.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


def answers(rest: Rest, collection: str) -> list:
    found = []
    for name in lfw.identities()[:20]:
        answer = rest.search([lfw.b64(lfw.crop(lfw.photos(name)[2]))], collection_id=collection, max_results=3).json()
        found.append((answer["faces_searched"], [(p["id"], p["name"], p["score"]) for p in answer["data"]]))
    return found


def test_a_restored_dump_answers_as_the_original(stack, rest, gallery, tmp_path):
    before = answers(rest, gallery["collection"])
    dump = tmp_path / "facesearch.dump"
    bin = postgres.bin_dir()
    subprocess.run([str(bin / "pg_dump"), "--format=custom", "-f", str(dump), stack.env()["DATABASE_URL"]], check=True)

    fresh = Stack(tmp_path / "fresh", lfw.evaluation_model())
    try:
        fresh.start(only=["postgres"])
        postgres.wait_ready(fresh.env()["DATABASE_URL"])
        subprocess.run(
            [str(bin / "pg_restore"), "--no-owner", "-d", fresh.env()["DATABASE_URL"], str(dump)], check=True
        )
        fresh.start(only=[n for n in fresh.names() if n != "postgres"])
        fresh.wait_healthy()
        assert answers(Rest(fresh.rest, fresh.token()), gallery["collection"]) == before
        assert sum(bool(found) for _, found in before) >= 15  # and they do find people
    finally:
        fresh.stop()
