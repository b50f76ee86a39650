"""PostgreSQL, the system of record: its schema, migrations and change log.

The schema is plain numbered SQL files (migrations/NNN_name.sql), applied in
order on start, each in its own transaction, under an advisory lock so that
services starting together apply each file once; `schema_migrations` records
what was applied. Plain SQL rather than Alembic: four tables and a log need
no ORM, and the files are what a DBA reads.

Every write that changes what the indexers hold appends to `changes` through
`log_changes`, in the write's own transaction, and notifies CHANNEL at commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
CHANNEL = "facesearch_changes"
# Advisory lock keys (any two fixed 64-bit numbers the application owns).
_MIGRATION_LOCK = 0x4653_0001
_CHANGES_LOCK = 0x4653_0002

# What a database that is down, restarting or cut off raises. InternalClientError
# is what asyncpg raises on a pooled connection whose server died mid-query
# ("cannot switch to state 12", asyncpg #1069).
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
)
# The same, and any error the server reports: what a loop that waits out an
# outage retries on.
RETRYABLE: tuple[type[BaseException], ...] = (*UNREACHABLE, asyncpg.PostgresError)


@dataclass(frozen=True)
class Model:
    """The face model whose vectors a database (or a gallery) holds."""

    name: str
    weights_sha256: str
    dim: int

    def __str__(self) -> str:
        return f"{self.name} ({self.dim}-d, weights sha256 {self.weights_sha256[:12]}...)"


class ModelMismatch(RuntimeError):
    """Vectors of one model offered to a database of another."""


async def recorded_model(connection: asyncpg.Connection) -> Model | None:
    row = await connection.fetchrow("SELECT name, weights_sha256, dim FROM model")
    return None if row is None else Model(row["name"], row["weights_sha256"], row["dim"])


async def claim_model(connection: asyncpg.Connection, model: Model) -> None:
    """Records `model` as the database's when it has none yet; ModelMismatch
    when it holds another's vectors."""
    await connection.execute(
        "INSERT INTO model (name, weights_sha256, dim) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        model.name,
        model.weights_sha256,
        model.dim,
    )
    recorded = await recorded_model(connection)
    if recorded != model:
        raise ModelMismatch(f"this database holds vectors of {recorded}, not of {model}")


CALIBRATION_KEYS = ("genuine_mean", "genuine_sd", "impostor_mean", "impostor_sd")


async def stored_calibration(connection: asyncpg.Connection | asyncpg.Pool) -> dict[str, float] | None:
    """The calibration `facesearch calibrate` stored for the database's model, if any."""
    raw = await connection.fetchval("SELECT calibration::text FROM model")
    return None if raw is None else {k: float(v) for k, v in json.loads(raw).items() if k in CALIBRATION_KEYS}


async def store_calibration(connection: asyncpg.Connection, model: Model, values: dict[str, float]) -> None:
    """Stores a fitted calibration for `model`; ModelMismatch unless the
    database holds that model's vectors (or none yet, when it claims it)."""
    await claim_model(connection, model)
    await connection.execute(
        "UPDATE model SET calibration = $1::jsonb, calibrated_at = now()",
        json.dumps({k: values[k] for k in CALIBRATION_KEYS}),
    )


def migrations() -> list[tuple[int, Path]]:
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        match = re.fullmatch(r"(\d+)_\w+\.sql", path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        found.append((int(match.group(1)), path))
    return found


async def migrate(connection: asyncpg.Connection) -> list[int]:
    """Applies the migrations not applied yet; returns their numbers."""
    applied_now = []
    for version, path in migrations():
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version int PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())"
            )
            if await connection.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                continue
            await connection.execute(path.read_text())
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, path.name
            )
            applied_now.append(version)
    return applied_now


async def log_changes(
    connection: asyncpg.Connection, tenant: str, collections: Sequence[str], person: str | None
) -> int:
    """Appends one change per collection, inside the caller's transaction;
    returns the last sequence number (0 when there is nothing to log). The
    lock is held to commit: concurrent writers commit in sequence order."""
    if not collections:
        return 0
    await connection.execute("SELECT pg_advisory_xact_lock($1)", _CHANGES_LOCK)
    seq: int = await connection.fetchval(
        "WITH added AS (INSERT INTO changes (seq, tenant, collection, person) "
        "SELECT nextval('changes_seq'), $1, c, $3 FROM unnest($2::text[]) AS c RETURNING seq) "
        "SELECT max(seq) FROM added",
        tenant,
        list(collections),
        person,
    )
    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, str(seq))
    return seq


async def log_memberships(connection: asyncpg.Connection, tenant: str, persons: Sequence[str]) -> int:
    """Appends one change per membership that `persons` still have, inside
    the caller's transaction (their answers changed, as when a collection of
    theirs went): the indexers holding those collections read the persons'
    versions again. Returns the last sequence number (0: nothing logged)."""
    if not persons:
        return 0
    await connection.execute("SELECT pg_advisory_xact_lock($1)", _CHANGES_LOCK)
    seq: int = await connection.fetchval(
        "WITH added AS (INSERT INTO changes (seq, tenant, collection, person) "
        "SELECT nextval('changes_seq'), m.tenant, m.collection, m.person FROM memberships m "
        "WHERE m.tenant = $1 AND m.person = ANY($2::text[]) RETURNING seq) "
        "SELECT coalesce(max(seq), 0) FROM added",
        tenant,
        list(persons),
    )
    if seq:
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, str(seq))
    return seq


async def head(connection: asyncpg.Connection | asyncpg.Pool) -> int:
    """The last committed change's sequence number."""
    found: int = await connection.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
    return found


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """Pool connections hold no session state: advisory locks are taken per
    transaction, LISTEN has a connection of its own, nothing is SET, and an
    open transaction asyncpg rolls back itself. Its default reset (unlock,
    CLOSE ALL, UNLISTEN, RESET ALL) would cost every query a second round
    trip, a search's scope read included."""


async def pool(url: str, wait_s: float = 60.0, max_size: int = 10) -> asyncpg.Pool:
    """A connection pool on a migrated database. Services start together with
    the database, so it is waited for (up to `wait_s`), then migrated."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            connections: asyncpg.Pool = await asyncpg.create_pool(
                url, min_size=1, max_size=max_size, command_timeout=30, reset=_nothing_to_reset
            )
            break
        except RETRYABLE as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for the database", extra={"error": repr(exc)})
            await asyncio.sleep(0.5)
    async with connections.acquire() as connection:
        applied = await migrate(connection)
    if applied:
        log.info("schema migrated", extra={"applied": applied})
    return connections
