"""`facesearch enroll`: a folder or a manifest of persons into a collection,
through the public REST API, as any client would.

Sources: a folder with one subfolder per person (`DIR/<name>/*.jpg`, the
first 3 images in name order), or a CSV or JSON Lines manifest with
Verifik's person fields (name, images, gender, date_of_birth, nationality,
notes; `images` a list, or `;`-separated in CSV, paths relative to the
manifest).

Resuming: a person counts as enrolled when the collection already holds a
person of the same name, so a second run (after Ctrl-C, a crash or
failures) sends only the missing ones. Names are the key a folder gives;
two entries of one name in a source are a failure (`duplicate_name`), not a
guess. Failures (the API's reason, or `unreadable_file`, `too_large`) go to
a JSON Lines report and do not stop the run.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

API = "/v2/face-recognition"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
MAX_IMAGES = 3
MAX_REQUEST_BYTES = 16 << 20  # Envoy's body limit
FIELDS = ("gender", "date_of_birth", "nationality", "notes")
RETRIES = 5  # for answers that say "try again" (503, a connection lost)


class EnrollError(RuntimeError):
    """A run that cannot start (no such collection, a refused token)."""


@dataclass(frozen=True)
class Entry:
    name: str
    images: tuple[Path, ...]
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    name: str
    images: tuple[str, ...]
    reason: str
    message: str


@dataclass
class Summary:
    enrolled: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def rate(self) -> float:
        return self.enrolled / self.seconds if self.seconds else 0.0


# Sources.


def from_folder(root: Path) -> list[Entry]:
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        entries.append(Entry(folder.name, tuple(images[:MAX_IMAGES])))
    return entries


def _entry(row: dict[str, Any], base: Path) -> Entry:
    images = row.get("images") or []
    if isinstance(images, str):
        images = [i for i in images.split(";") if i.strip()]
    paths = tuple(base / str(i).strip() for i in images)
    fields = {k: str(row[k]) for k in FIELDS if row.get(k) not in (None, "")}
    return Entry(str(row.get("name") or "").strip(), paths, fields)


def from_manifest(path: Path) -> list[Entry]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows: list[dict[str, Any]] = list(csv.DictReader(f))
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [_entry(r, path.parent) for r in rows]


def entries(source: Path) -> list[Entry]:
    return from_folder(source) if source.is_dir() else from_manifest(source)


# The API.


class Api:
    def __init__(self, url: str, token: str, timeout_s: float = 120.0):
        self.http = httpx.AsyncClient(
            base_url=url.rstrip("/") + API,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=64),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer, once it is not a "try again" (503 or a lost connection)."""
        for attempt in range(RETRIES):
            try:
                response = await self.http.request(method, path, **kwargs)
                if response.status_code != 503 or attempt == RETRIES - 1:
                    return response
            except httpx.TransportError:
                if attempt == RETRIES - 1:
                    raise
            await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    async def _ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._call(method, path, **kwargs)
        if response.status_code != 200:
            raise EnrollError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    async def _every(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every item of a listing, page by page."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = await self._ok("GET", path, params={**params, "page": str(page), "limit": "100"})
            found += answer["data"]
            if page >= answer["pagination"]["pages"]:
                return found
            page += 1

    async def collection(self, name: str, create: bool) -> str:
        """The id of the collection named `name` (or with that id or code)."""
        for c in await self._every("/collections"):
            if name in (c["name"], c["id"], c.get("code")):
                return str(c["id"])
        if not create:
            raise EnrollError(f"no collection named {name!r} (--create makes it)")
        return str((await self._ok("POST", "/collections", json={"name": name}))["data"]["id"])

    async def names_in(self, collection: str) -> set[str]:
        return {p["name"] for p in await self._every("/persons", collection=collection)}

    async def enroll(self, entry: Entry, images: list[str], collection: str) -> tuple[str, str] | None:
        """None when enrolled, else (reason, message)."""
        body = {"name": entry.name, "images": images, "collections": [collection], **entry.fields}
        try:
            response = await self._call("POST", "/persons", json=body)
        except httpx.TransportError as exc:
            return "unreachable", f"FaceSearch did not answer: {exc!r}"
        if response.status_code == 200:
            return None
        try:
            error = response.json()
            return str(error.get("error", response.status_code)), str(error.get("message", ""))
        except ValueError:
            return str(response.status_code), response.text[:300]


def encoded(entry: Entry) -> list[str] | tuple[str, str]:
    """The entry's images as base64, or (reason, message) of why not."""
    if not entry.name:
        return "missing_name", "an entry without a name"
    if not entry.images:
        return "no_images", "no images"
    if len(entry.images) > MAX_IMAGES:
        return "too_many_images", f"{len(entry.images)} images; at most {MAX_IMAGES} a person"
    images = []
    for path in entry.images:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return "unreadable_file", f"{path}: {exc.strerror or exc}"
        images.append(base64.b64encode(data).decode())
    if sum(len(i) for i in images) > MAX_REQUEST_BYTES - 64 * 1024:
        return "too_large", f"the images are {sum(len(i) for i in images) >> 20} MiB encoded; the API takes 16 MiB"
    return images


async def missing(api: Api, listed: list[Entry], collection: str) -> list[Entry]:
    """The entries whose name the collection does not hold yet."""
    present = await api.names_in(collection)
    return [e for e in listed if e.name not in present]


async def run(
    api: Api,
    todo: list[Entry],
    collection: str,
    workers: int,
    stop: asyncio.Event | None = None,
    on_done: Callable[[Entry, Failure | None], None] = lambda e, f: None,
) -> Summary:
    """Enrolls `todo` (see `missing`), `workers` at a time. Once `stop` is
    set, no entry is started: those sent are answered first."""
    stop = stop or asyncio.Event()
    summary = Summary()
    started = time.perf_counter()
    counts = Counter(e.name for e in todo)
    queue: asyncio.Queue[Entry] = asyncio.Queue()
    for e in todo:
        queue.put_nowait(e)

    def failed(e: Entry, reason: str, message: str) -> None:
        failure = Failure(e.name, tuple(str(p) for p in e.images), reason, message)
        summary.failures.append(failure)
        on_done(e, failure)

    async def worker() -> None:
        while not queue.empty() and not stop.is_set():
            e = queue.get_nowait()
            if counts[e.name] > 1:
                failed(e, "duplicate_name", f"{counts[e.name]} entries are named {e.name!r}")
                continue
            images = await asyncio.to_thread(encoded, e)
            if isinstance(images, tuple):
                failed(e, *images)
                continue
            refused = await api.enroll(e, images, collection)
            if refused:
                failed(e, *refused)
            else:
                summary.enrolled += 1
                on_done(e, None)

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    summary.interrupted = not queue.empty()
    summary.seconds = time.perf_counter() - started
    return summary


def write_report(path: Path, summary: Summary) -> None:
    with path.open("w", encoding="utf-8") as f:
        for failure in summary.failures:
            f.write(json.dumps(failure.__dict__, ensure_ascii=False) + "\n")
