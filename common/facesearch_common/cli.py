"""`facesearch`: the operator's command line.

facesearch token create --tenant acme --ttl 1h
facesearch keys create
facesearch db import-sqlite .data/indexer/catalog.sqlite3
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from . import tokens

app = typer.Typer(help="FaceSearch operator commands.", no_args_is_help=True)
token_app = typer.Typer(help="Tokens for the API.", no_args_is_help=True)
keys_app = typer.Typer(help="The JWT signing key pair.", no_args_is_help=True)
app.add_typer(token_app, name="token")
db_app = typer.Typer(help="The system of record (PostgreSQL).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def default_keys_dir() -> Path:
    return Path(os.environ.get("FACESEARCH_DATA_DIR", ".data")) / "keys"


def parse_ttl(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match.group(1)) == 0:
        raise typer.BadParameter("a duration such as 900, 15m, 12h or 7d")
    return int(match.group(1)) * UNITS[match.group(2) or "s"]


KeysDir = typer.Option(None, "--keys-dir", help="where the key pair lives [$FACESEARCH_DATA_DIR/keys]")


@token_app.command("create")
def token_create(
    tenant: str = typer.Option(..., "--tenant", help="the tenant: the token's subject"),
    ttl: str = typer.Option("1h", "--ttl", help="lifetime: seconds, or 15m, 12h, 7d"),
    keys_dir: Path = KeysDir,
    issuer: str = typer.Option(tokens.ISSUER, "--issuer", envvar="FACESEARCH_JWT_ISSUER"),
    audience: str = typer.Option(tokens.AUDIENCE, "--audience", envvar="FACESEARCH_JWT_AUDIENCE"),
) -> None:
    """Print a bearer token for TENANT, signed with the local key."""
    files = tokens.KeyFiles.in_dir(keys_dir or default_keys_dir())
    if not files.exist():
        raise typer.BadParameter(
            f"no key pair in {files.private_key.parent}: run `facesearch keys create` or `make run` first",
            param_hint="--keys-dir",
        )
    try:
        typer.echo(tokens.create_token(files, tenant, parse_ttl(ttl), issuer, audience))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tenant") from None


@keys_app.command("create")
def keys_create(
    keys_dir: Path = KeysDir, force: bool = typer.Option(False, "--force", help="replace an existing pair")
) -> None:
    """Create the signing key pair and its JWKS (public key only)."""
    files = tokens.KeyFiles.in_dir(keys_dir or default_keys_dir())
    if files.exist() and not force:
        typer.echo(f"keys already exist in {files.private_key.parent} (--force replaces them)")
        return
    tokens.create_keys(files)
    typer.echo(f"created {files.private_key} (private, 0600) and {files.jwks}")


SqliteFiles = typer.Argument(..., help="catalog.sqlite3 of each old indexer", exists=True, dir_okay=False)


@db_app.command("import-sqlite")
def db_import_sqlite(
    files: list[Path] = SqliteFiles,
    database_url: str = typer.Option(..., "--database-url", envvar="DATABASE_URL"),
) -> None:
    """Copy the catalogs of FaceSearch before PostgreSQL into the database."""
    import asyncio

    from .database.sqlite_import import import_file

    for path in files:
        done = asyncio.run(import_file(database_url, path))
        typer.echo(f"{path}: {done.collections} collections, {done.persons} persons, {done.faces} faces")


if __name__ == "__main__":
    app()
