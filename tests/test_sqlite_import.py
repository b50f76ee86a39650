"""`facesearch db import-sqlite`: the catalogs of FaceSearch before PostgreSQL
(one SQLite file per indexer, persons replicated across them) moved into a
real PostgreSQL, whole, logged for the indexers, and never twice."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys

import asyncpg
import numpy as np

OLD_SCHEMA = """
CREATE TABLE collections (tenant TEXT, id TEXT, name TEXT, data BLOB, PRIMARY KEY (tenant, id), UNIQUE (tenant, name));
CREATE TABLE persons (tenant TEXT, id TEXT, data BLOB, replica INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id));
CREATE TABLE memberships (tenant TEXT, collection TEXT, person TEXT, PRIMARY KEY (tenant, collection, person));
CREATE TABLE faces (tenant TEXT, person TEXT, face_id TEXT, vector BLOB, PRIMARY KEY (tenant, person, face_id));
"""


def old_catalog(path, collection: str, persons: list[tuple[str, bool]]) -> None:
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO collections VALUES ('t', ?, ?, ?)", (collection, f"name {collection}", b'{"id": "x"}'))
    for person, replica in persons:
        db.execute(
            "INSERT INTO persons VALUES ('t', ?, ?, ?)", (person, json.dumps({"name": person}).encode(), replica)
        )
        db.execute("INSERT INTO memberships VALUES ('t', ?, ?)", (collection, person))
        vector = np.full(4, 0.5, "<f4").tobytes()
        db.execute("INSERT INTO faces VALUES ('t', ?, ?, ?)", (person, f"{person}-face", vector))
    db.commit()
    db.close()


def imported(url: str) -> dict:
    async def read():
        db = await asyncpg.connect(url)
        try:
            return {
                "memberships": sorted(tuple(r) for r in await db.fetch("SELECT collection, person FROM memberships")),
                "faces": await db.fetchval("SELECT count(*) FROM faces"),
                "names": sorted(r["n"] for r in await db.fetch("SELECT data->>'name' AS n FROM persons")),
                "changes": await db.fetchval("SELECT count(*) FROM changes"),
            }
        finally:
            await db.close()

    return asyncio.run(read())


def test_old_catalogs_move_into_postgresql_once(tmp_path, database_url):
    first, second = tmp_path / "indexer-0.sqlite3", tmp_path / "indexer-1.sqlite3"
    old_catalog(first, "00aa", [("p1", False), ("p2", False)])
    old_catalog(second, "01bb", [("p2", True), ("p3", False)])  # p2's replica for its membership there
    command = [sys.executable, "-m", "facesearch_cli", "db", "import-sqlite", str(first), str(second)]
    run = subprocess.run([*command, "--database-url", database_url], capture_output=True, text=True, check=True)
    assert "1 collections, 2 persons, 2 faces" in run.stdout
    state = imported(database_url)
    assert state["memberships"] == [("00aa", "p1"), ("00aa", "p2"), ("01bb", "p2"), ("01bb", "p3")]
    assert (state["faces"], state["names"], state["changes"]) == (3, ["p1", "p2", "p3"], 4)
    subprocess.run([*command, "--database-url", database_url], capture_output=True, check=True)
    again = imported(database_url)
    assert {k: again[k] for k in ("memberships", "faces", "names")} == {
        k: state[k] for k in ("memberships", "faces", "names")
    }
