"""`facesearch calibrate DIR`: fits the served model's calibration on the
operator's own labelled faces and stores it, through the running service.

DIR has one folder of photos per person (the `facesearch enroll` layout);
persons with two or more photos give the genuine pairs. Each photo goes
through the service's admin call EmbedFaces, which embeds it exactly as the
service does: the photo as an enrolled face, and a camera-cut crop of at
most 120 px of it as a probe, as search/crops gets one, with no score filter.
Half the persons fit (calibration.py), the other half test it: 1:1 error
rates, a 1:N table per gallery size and a reliability table, beside the
calibration the service scores with now. The fit is then stored in
PostgreSQL with the model's claim (StoreCalibration), and every gateway
scores with it within seconds; `--dry-run` stores nothing.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from facesearch_common.scores import Calibration

from . import calibration as fitting
from .enroll import API, IMAGE_SUFFIXES

BATCH = 8  # photos per EmbedFaces call
MAX_BATCH_BYTES = 12 << 20  # under Envoy's 16 MiB once base64
SIZES = (100, 1000, 2500)


class CalibrateError(RuntimeError):
    """What stops a run (too little data, a refused token); the message says what to do."""


@dataclass(frozen=True)
class Photo:
    person: int
    path: Path


def photos(root: Path) -> tuple[list[str], list[Photo]]:
    """(person names, their photos): one folder per person, every image in it."""
    names: list[str] = []
    found: list[Photo] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found += [Photo(len(names), image) for image in images]
            names.append(folder.name)
    return names, found


def batches(items: list[Photo]) -> list[list[Photo]]:
    out: list[list[Photo]] = [[]]
    size = 0
    for photo in items:
        bytes_ = photo.path.stat().st_size
        if out[-1] and (len(out[-1]) == BATCH or size + bytes_ > MAX_BATCH_BYTES):
            out.append([])
            size = 0
        out[-1].append(photo)
        size += bytes_
    return [b for b in out if b]


class Service:
    def __init__(self, url: str, token: str):
        self.http = httpx.AsyncClient(
            base_url=url.rstrip("/") + API, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code != 200:
            try:
                body = response.json()
                why = f"{body.get('error')}: {body.get('message')}"
            except ValueError:
                why = response.text[:300]
            raise CalibrateError(f"{method} {path}: {response.status_code} {why}")
        answer: dict[str, Any] = response.json()
        return answer

    async def embed(self, batch: list[Photo]) -> list[dict[str, Any]]:
        images = [base64.b64encode(p.path.read_bytes()).decode("ascii") for p in batch]
        data: list[dict[str, Any]] = (await self.call("POST", "/admin/faces", json={"images": images}))["data"]
        return data

    async def close(self) -> None:
        await self.http.aclose()


async def embed_all(service: Service, items: list[Photo], workers: int) -> tuple[fitting.Faces, int]:
    """Every photo's two embeddings, labelled; and how many had no face."""
    queue = batches(items)
    results: dict[int, list[dict[str, Any]]] = {}
    limit = asyncio.Semaphore(workers)

    async def one(k: int) -> None:
        async with limit:
            results[k] = await service.embed(queue[k])

    await asyncio.gather(*(one(k) for k in range(len(queue))))
    enrolled, probes, labels, missing = [], [], [], 0
    for k, batch in enumerate(queue):
        for photo, embedded in zip(batch, results[k], strict=True):
            if not embedded.get("found"):
                missing += 1
                continue
            enrolled.append(embedded["enrolled"])
            probes.append(embedded["probe"])
            labels.append(photo.person)
    faces = fitting.Faces(
        np.asarray(enrolled, np.float32).reshape(len(labels), -1),
        np.asarray(probes, np.float32).reshape(len(labels), -1),
        np.asarray(labels, np.int64),
    )
    return faces, missing


def current(state: dict[str, Any]) -> Calibration:
    c = state["calibration"]
    return Calibration(c["genuine_mean"], c["genuine_sd"], c["impostor_mean"], c["impostor_sd"])


def report(
    console: Console,
    faces: fitting.Faces,
    fitted: Calibration,
    now: Calibration,
    now_source: str,
    distractors: fitting.Vectors,
) -> None:
    """1:1 and 1:N on the held-out half, the fit beside the calibration in
    use; the 1:N galleries grow with the fitting half's faces, then the
    distractors'."""
    fit_half, held_out = fitting.split(faces)
    pool = np.concatenate([fit_half.enrolled, distractors]) if len(distractors) else fit_half.enrolled
    test = fitting.pairs(held_out.enrolled, held_out.labels)
    table = Table(title=f"1:1 on held-out persons ({test.genuine:,} genuine, {test.impostor:,} impostor pairs)")
    for column in ("min_score", "FMR fitted", "FNMR fitted", f"FMR now ({now_source})", "FNMR now"):
        table.add_column(column, justify="right")
    for (t, fmr, fnmr), (_, fmr_now, fnmr_now) in zip(
        fitting.error_rates(fitted, test), fitting.error_rates(now, test), strict=True
    ):
        table.add_row(f"{t}", f"{fmr:.4%}", f"{fnmr:.2%}", f"{fmr_now:.4%}", f"{fnmr_now:.2%}")
    console.print(table)
    for name, calibration in (("fitted", fitted), (f"now ({now_source})", now)):
        runs = fitting.one_to_n(held_out, pool, calibration, SIZES)
        table = Table(title=f"1:N, {name}: held-out persons, half of them strangers")
        table.add_column("faces searched", justify="right")
        for t in fitting.THRESHOLDS:
            for what in ("found", "strangers", "precision"):
                table.add_column(f"{what} @{t}", justify="right")
        for size, outcome in runs.items():
            cells = [f"{size:,}"]
            for t in fitting.THRESHOLDS:
                cells += [f"{v:.3f}" for v in outcome.at(t)]
            table.add_row(*cells)
        console.print(table)
        largest = runs[max(runs)] if runs else None
        if largest is not None:
            table = Table(title=f"reliability, {name}, {largest.faces:,} faces searched: is a score what it says?")
            for column in ("score", "answers", "mean score", "share right"):
                table.add_column(column, justify="right")
            for label, count, mean, right in largest.reliability():
                table.add_row(label, str(count), f"{mean:.3f}", f"{right:.3f}")
            console.print(table)


async def calibrate(
    root: Path,
    url: str,
    token: str,
    dry_run: bool,
    workers: int,
    console: Console,
    distractors: Path | None = None,
) -> Calibration:
    names, items = photos(root)
    others = (
        [Photo(-1, p) for p in sorted(distractors.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if distractors
        else []
    )
    service = Service(url, token)
    try:
        state = (await service.call("GET", "/admin/calibration"))["data"]
        console.print(
            f"{len(names)} persons, {len(items)} photos, {len(others)} distractor photos; "
            f"embedding them with {state['model']}"
        )
        faces, missing = await embed_all(service, items, workers)
        extra = (await embed_all(service, others, workers))[0].enrolled if others else np.zeros((0, 1), np.float32)
        counts = np.bincount(faces.labels, minlength=len(names))
        why = fitting.too_little(int((counts > 0).sum()), int((counts >= 2).sum()))
        if why:
            raise CalibrateError(why)
        fit_half, _ = fitting.split(faces)
        train = fitting.fitting_pairs(fit_half)
        fitted = fitting.fit(train)
        console.print(
            f"{len(faces.labels)} faces ({missing} photos without one); fitted on {train.genuine:,} genuine and "
            f"{train.impostor:,} impostor pairs: {fitted}"
        )
        report(console, faces, fitted, current(state), state["source"], extra)
        if dry_run:
            console.print("--dry-run: nothing stored")
            return fitted
        body = {"model": state["model"], "calibration": asdict(fitted)}
        stored = (await service.call("PUT", "/admin/calibration", json=body))["data"]
        console.print(f"stored for {stored['model']}: the gateways score with it now (source {stored['source']})")
        return fitted
    finally:
        await service.close()
