"""`facesearch`: the operator's command line.

facesearch token create --tenant acme --ttl 1h
facesearch keys create
facesearch db import-sqlite .data/indexer/catalog.sqlite3
facesearch enroll photos/ --collection staff --create --token "$TOKEN"
facesearch export --tenant acme gallery.zip
facesearch import gallery.zip
facesearch model export mobilefacenet-casia exported/
facesearch calibrate faces/ --token "$ADMIN_TOKEN" [--dry-run]
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from facesearch_common import tokens

app = typer.Typer(help="FaceSearch operator commands.", no_args_is_help=True)
token_app = typer.Typer(help="Tokens for the API.", no_args_is_help=True)
keys_app = typer.Typer(help="The JWT signing key pair.", no_args_is_help=True)
app.add_typer(token_app, name="token")
db_app = typer.Typer(help="The system of record (PostgreSQL).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
model_app = typer.Typer(help="Face models: built-in ones and model files.", no_args_is_help=True)
app.add_typer(model_app, name="model")

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
    admin: bool = typer.Option(False, "--admin", help="an operator's token: may also calibrate the model"),
) -> None:
    """Print a bearer token for TENANT, signed with the local key."""
    files = tokens.KeyFiles.in_dir(keys_dir or default_keys_dir())
    if not files.exist():
        raise typer.BadParameter(
            f"no key pair in {files.private_key.parent}: run `facesearch keys create` or `make run` first",
            param_hint="--keys-dir",
        )
    try:
        typer.echo(tokens.create_token(files, tenant, parse_ttl(ttl), issuer, audience, admin=admin))
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

    from .sqlite_import import import_file

    for path in files:
        done = asyncio.run(import_file(database_url, path))
        typer.echo(f"{path}: {done.collections} collections, {done.persons} persons, {done.faces} faces")


Source = typer.Argument(
    ..., exists=True, help="a folder with one subfolder of images per person, or a CSV / JSON Lines manifest"
)
Report = typer.Option(Path("enroll-report.jsonl"), "--report", help="where failures are listed")
ArchiveOut = typer.Argument(..., dir_okay=False, help="the archive to write (zip: JSON Lines and .npy)")
ArchiveIn = typer.Argument(..., exists=True, dir_okay=False, help="an archive `facesearch export` wrote")


@app.command("enroll")
def enroll_command(
    source: Path = Source,
    collection: str = typer.Option(..., "--collection", help="the collection, by name (or id)"),
    create: bool = typer.Option(False, "--create", help="create the collection when there is none of that name"),
    url: str = typer.Option("http://127.0.0.1:8080", "--url", envvar="FACESEARCH_URL", help="FaceSearch's REST API"),
    token: str = typer.Option(..., "--token", envvar="FACESEARCH_TOKEN", help="a bearer token of the tenant"),
    workers: int = typer.Option(4, "--workers", min=1, max=64, help="enrollments in flight"),
    report: Path = Report,
) -> None:
    """Enroll a folder or manifest of persons through the API; run it again to resume.

    Exit status: 0 when every person is enrolled, 1 when some failed (see
    --report), 130 when interrupted (Ctrl-C stops after the requests in flight).
    """
    from .enroll_progress import enroll_with_progress

    raise typer.Exit(enroll_with_progress(source, collection, create, url, token, workers, report))


def _gallery_refused(exc: Exception) -> typer.Exit:
    typer.echo(f"refused: {exc}", err=True)
    return typer.Exit(2)


DatabaseUrl = typer.Option(..., "--database-url", envvar="DATABASE_URL", help="the installation's PostgreSQL")


@app.command("export")
def export_command(
    file: Path = ArchiveOut,
    tenant: str = typer.Option(..., "--tenant"),
    collection: str | None = typer.Option(None, "--collection", help="only this collection (id or name)"),
    database_url: str = DatabaseUrl,
) -> None:
    """Write a tenant's gallery (collections, persons, memberships, face vectors, model) to FILE."""
    import asyncio

    from . import gallery

    try:
        found = asyncio.run(gallery.export(database_url, tenant, collection))
    except gallery.GalleryRefused as exc:
        raise _gallery_refused(exc) from None
    gallery.write(found, file)
    typer.echo(f"{file}: {found.counts}, {found.model}")


@app.command("import")
def import_command(
    file: Path = ArchiveIn,
    tenant: str | None = typer.Option(None, "--tenant", help="import into this tenant [the exported one]"),
    database_url: str = DatabaseUrl,
) -> None:
    """Load a gallery into this installation: all of it, or nothing when refused."""
    import asyncio

    from . import gallery

    try:
        found = gallery.read(file)
        counts = asyncio.run(gallery.load(database_url, found, tenant))
    except gallery.GalleryRefused as exc:
        raise _gallery_refused(exc) from None
    typer.echo(f"imported {counts} into tenant {tenant or found.tenant!r}")


Faces = typer.Argument(..., exists=True, file_okay=False, help="one folder of photos per person")
Distractors = typer.Option(
    None, "--distractors", exists=True, file_okay=False, help="photos of other people, for larger 1:N galleries"
)


@app.command("calibrate")
def calibrate_command(
    source: Path = Faces,
    url: str = typer.Option("http://127.0.0.1:8080", "--url", envvar="FACESEARCH_URL", help="FaceSearch's REST API"),
    token: str = typer.Option(..., "--token", envvar="FACESEARCH_TOKEN", help="an admin token (token create --admin)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="fit and report, store nothing"),
    workers: int = typer.Option(4, "--workers", min=1, max=32, help="embedding calls in flight"),
    distractors: Path = Distractors,
) -> None:
    """Fit the served model's score calibration on your own labelled faces,
    report it on persons held out of the fit, and store it for every gateway.

    Exit status: 0 when fitted (and stored), 2 when it cannot be (too little
    data, a refused token: the message says what to do)."""
    import asyncio

    from rich.console import Console

    from .calibrate import CalibrateError, calibrate

    try:
        asyncio.run(calibrate(source, url, token, dry_run, workers, Console(), distractors))
    except CalibrateError as exc:
        typer.echo(f"calibrate: {exc}", err=True)
        raise typer.Exit(2) from None


ModelName = typer.Argument(..., help="a built-in model: facenet-vggface2 or mobilefacenet-casia")
ModelOut = typer.Argument(..., help="the folder to write network.onnx and model.toml into")
ModelWeights = typer.Option(None, "--weights", envvar="FACESEARCH_WEIGHTS", help="its weights file")
DataDir = typer.Option(Path(".data"), "--data-dir", envvar="FACESEARCH_DATA_DIR", help="where weights are cached")


@model_app.command("export")
def model_export(
    name: str = ModelName,
    out: Path = ModelOut,
    weights: Path = ModelWeights,
    data_dir: Path = DataDir,
) -> None:
    """Write a built-in model as a model file: OUT/network.onnx (its face
    network) and OUT/model.toml (what FACESEARCH_MODEL then names)."""
    from embedder import export  # the embedder's PyTorch, only for this command
    from embedder import weights as weights_files
    from facesearch_common.specs import SPECS

    if name not in SPECS:
        raise typer.BadParameter(f"{name!r} is not a built-in model ({', '.join(sorted(SPECS))})", param_hint="NAME")
    spec = SPECS[name]
    try:
        path = weights_files.resolve(spec, weights, data_dir / "models")
    except weights_files.WeightsError as exc:
        raise typer.BadParameter(str(exc), param_hint="--weights") from None
    out.mkdir(parents=True, exist_ok=True)
    toml = export.export_model_file(spec, path, out)
    typer.echo(f"wrote {out / 'network.onnx'} and {toml}; serve it with FACESEARCH_MODEL={toml}")
