"""One shard in process: what its faces cost in memory beyond their vectors,
and what a write and a delete take, against raw FAISS doing the same to an
IndexIDMap2 over an IndexFlatIP (the strongest baseline: no face or person
ids at all) in the same run.

The faces are random unit vectors in `--dim` dimensions, `--per-person`
faces a person, with ids shaped as the gateway makes them (24-hex person
ids, UUID face ids) or, with `--short-ids`, as bench.scale's (`f123`).
Loaded as an indexer loads a shard (batches of 50,000), then one person at a
time enrolled, updated and deleted as the indexer's follower applies those
changes (the person's faces out, then what the database holds in), then one
query at a time.

    python -m bench.id_maps [--faces 2500000] [--dim 128] [--per-person 4] [--ops 200] [--short-ids]

Resident memory is read from /proc (VmRSS) before and after the load; the
vectors the bench itself holds are allocated before the first reading.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.table import Table

from bench.common import console
from indexer.shard import Shard

LOAD_BATCH = 50_000


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def ids(faces: int, per_person: int, short: bool) -> tuple[list[str], list[str]]:
    persons = [f"p{i}" if short else secrets.token_hex(12) for i in range(-(-faces // per_person))]
    face_ids = [f"f{i}" if short else str(uuid.uuid4()) for i in range(faces)]
    return face_ids, [persons[i // per_person] for i in range(faces)]


def trim() -> None:
    """Freed heap back to the OS (glibc), so resident memory is what is held."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def timed(op: Callable[[Any], object], groups: Sequence[Any]) -> list[float]:
    """Seconds of each call of `op`, one per group."""
    times = []
    for group in groups:
        started = time.perf_counter()
        op(group)
        times.append(time.perf_counter() - started)
    return times


def ms(seconds: list[float]) -> str:
    return f"{np.median(seconds) * 1e3:.3f}"


def main(faces: int, dim: int, per_person: int, ops: int, short: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    vectors = unit(rng, faces, dim)
    extra = unit(rng, ops * per_person, dim)
    queries = unit(rng, 50, dim)
    face_ids, person_ids = ids(faces, per_person, short)
    new_faces, new_persons = ids(ops * per_person, per_person, short)
    new_persons = [f"new-{p}" for p in new_persons]
    gc.collect()
    groups = [slice(i * per_person, (i + 1) * per_person) for i in range(ops)]
    one_query = [queries[i : i + 1] for i in range(len(queries))]

    # Raw FAISS first, then its memory handed back, so that neither side's
    # resident memory counts pages the other freed.
    trim()
    before = rss()
    raw = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    for start in range(0, faces, LOAD_BATCH):
        stop = min(start + LOAD_BATCH, faces)
        raw.add_with_ids(vectors[start:stop], np.arange(start, stop, dtype=np.int64))
    trim()
    raw_bytes = rss() - before

    def raw_ids(g: slice, offset: int) -> np.ndarray:
        return np.arange(offset + g.start, offset + g.stop, dtype=np.int64)

    def raw_update(g: slice) -> None:
        raw.remove_ids(raw_ids(g, faces))
        raw.add_with_ids(extra[g], raw_ids(g, 2 * faces))

    raw_add = timed(lambda g: raw.add_with_ids(extra[g], raw_ids(g, faces)), groups)
    raw_update_ms = timed(raw_update, groups)
    raw_remove = timed(lambda g: raw.remove_ids(raw_ids(g, 2 * faces)), groups)
    raw_search = timed(lambda q: raw.search(q, 1), one_query)
    raw.reset()
    trim()

    before = rss()
    started = time.perf_counter()
    shard = Shard(dim)
    for start in range(0, faces, LOAD_BATCH):
        stop = min(start + LOAD_BATCH, faces)
        shard.add(face_ids[start:stop], person_ids[start:stop], vectors[start:stop], [1] * (stop - start))
    load_s = time.perf_counter() - started
    trim()
    shard_bytes = rss() - before

    # As the indexer's follower applies a change: the person's faces out,
    # then what the database holds now in.
    def enroll(g: slice) -> None:
        shard.remove_persons([new_persons[g.start]])
        shard.add(new_faces[g], new_persons[g], extra[g], [2] * per_person)

    def update(g: slice) -> None:
        shard.remove_persons([new_persons[g.start]])
        shard.add(new_faces[g], new_persons[g], extra[g][::-1].copy(), [3] * per_person)

    add = timed(enroll, groups)
    update_ms = timed(update, groups)
    remove = timed(lambda g: shard.remove_persons([new_persons[g.start]]), groups)
    search = timed(lambda q: shard.search(q, 1), one_query)

    table = Table(
        title=f"one shard of {faces:,} faces x {dim}-d, {per_person} a person, "
        f"{'short' if short else 'gateway-shaped'} ids: medians of {ops} writes/deletes, 50 queries"
    )
    columns = ("", "bytes a face", "over the vector", "load s", "enroll ms", "update ms", "delete ms", "search ms")
    for column in columns:
        table.add_column(column, justify="left" if not column else "right")
    vector = 4 * dim
    for name, size, load, a, u, r, s in (
        ("shard (indexer/shard.py)", shard_bytes, f"{load_s:.1f}", add, update_ms, remove, search),
        ("raw FAISS IndexIDMap2", raw_bytes, "-", raw_add, raw_update_ms, raw_remove, raw_search),
    ):
        table.add_row(name, f"{size / faces:.0f}", f"{size / faces - vector:.0f}", load, ms(a), ms(u), ms(r), ms(s))
    table.add_row(
        "shard / raw",
        f"{shard_bytes / raw_bytes:.2f}x",
        "",
        "",
        f"{np.median(add) / np.median(raw_add):.2f}x",
        f"{np.median(update_ms) / np.median(raw_update_ms):.4f}x",
        f"{np.median(remove) / np.median(raw_remove):.4f}x",
        f"{np.median(search) / np.median(raw_search):.2f}x",
    )
    console.print(table)
    figures = {
        "faces": faces,
        "dim": dim,
        "bytes_per_face": round(shard_bytes / faces, 1),
        "budget_bytes_per_face": 4 * dim + 128,
        "enroll_person_ms": round(float(np.median(add)) * 1e3, 3),
        "update_person_ms": round(float(np.median(update_ms)) * 1e3, 3),
        "delete_person_ms": round(float(np.median(remove)) * 1e3, 3),
        "raw_bytes_per_face": round(raw_bytes / faces, 1),
        "raw_add_ms": round(float(np.median(raw_add)) * 1e3, 3),
        "raw_update_ms": round(float(np.median(raw_update_ms)) * 1e3, 3),
        "raw_delete_ms": round(float(np.median(raw_remove)) * 1e3, 3),
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=2_500_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--per-person", type=int, default=4)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--short-ids", action="store_true", help="bench.scale's ids (f123, p45)")
    args = parser.parse_args()
    main(args.faces, args.dim, args.per_person, args.ops, args.short_ids)
