"""The CPU's FAST index in one process, against IVF-Flat on the same lists:
per nprobe, the time of one query, its ratio to exact search, and how often
it finds the same best person as exact search, for the synthetic and the
real-face queries apart. This is the sweep behind INDEXER_NPROBE.

Both indexes share one trained coarse quantizer, so they visit the same
lists; only what the lists hold differs (full vectors, or 4-bit codes
rescored from the exact index). The data is bench.indexer's.

    python -m bench.fast_index [--faces 1000000] [--queries 400] [--seed 0] [--nprobe 96 256 384 768]
                               [--real-faces FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np
from rich.table import Table

from bench.common import console
from bench.indexer import DIM, face_like, lfw_embeddings
from indexer.device import AnnSnapshot, Cpu
from indexer.rescored import Rescored
from indexer.shard import AnnPolicy


def per_query_ms(search, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean milliseconds of one single-query search, and each query's best id."""
    search(queries[:1])
    started = time.perf_counter()
    best = np.array([search(q[None]) for q in queries])
    return (time.perf_counter() - started) / len(queries) * 1e3, best


def main(faces: int, query_count: int, seed: int, nprobes: list[int], real_faces: Path | None) -> None:
    real, names = lfw_embeddings(real_faces)
    vectors, persons, queries = face_like(faces, real, names, query_count, np.random.default_rng(seed))
    persons = np.asarray(persons)
    # face_like puts the synthetic queries first.
    synthetic = np.arange(len(queries)) < len(queries) - min(query_count // 2, len(set(names)))
    ids = np.arange(faces, dtype=np.int64)
    master = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    master.add_with_ids(vectors, ids)

    exact_ms, exact_best = per_query_ms(lambda q: master.search(q, 1)[1][0, 0], queries)
    truth = persons[exact_best]

    snapshot = AnnSnapshot(vectors, ids, DIM, AnnPolicy().lists_for(faces))
    started = time.perf_counter()
    codes = Cpu().build_ann(snapshot)
    build_codes = time.perf_counter() - started
    fast = Rescored(codes, master)
    started = time.perf_counter()
    flat = faiss.IndexIVFFlat(faiss.clone_index(codes.quantizer), DIM, snapshot.lists, faiss.METRIC_INNER_PRODUCT)
    flat.add_with_ids(vectors, ids)
    flat.parallel_mode = 1  # its best single-query setting on the CPU: threads share one query's lists
    fill_flat = time.perf_counter() - started

    table = Table(
        title=f"FAST in process: {faces:,} faces, {snapshot.lists:,} lists, {len(queries)} queries "
        f"({synthetic.sum()} synthetic, {(~synthetic).sum()} real), exact search {exact_ms:.1f} ms"
    )
    for column in ("index", "nprobe", "ms / query", "vs exact", "vs IVF-Flat", "same best", "synthetic", "real"):
        table.add_column(column, justify="left" if column == "index" else "right")
    for nprobe in nprobes:
        flat.nprobe = fast.nprobe = nprobe
        rows = [
            (name, *per_query_ms(search, queries))
            for name, search in (
                ("IVF-Flat", lambda q: flat.search(q, 1)[1][0, 0]),
                ("fast-scan, rescored", lambda q: fast.search(q, 1)[1][0, 0]),
            )
        ]
        for name, ms, best in rows:
            same = persons[best] == truth
            table.add_row(
                name,
                str(nprobe),
                f"{ms:.3f}",
                f"{exact_ms / ms:.1f}x",
                f"{rows[0][1] / ms:.2f}x",
                f"{same.mean():.4f}",
                f"{same[synthetic].mean():.3f}",
                f"{same[~synthetic].mean():.3f}",
            )
    console.print(table)
    console.print(
        f"build: fast-scan trained and filled in {build_codes:.1f} s (IVF-Flat filled on its lists in "
        f"{fill_flat:.1f} s); memory: codes {codes.code_size * faces / 2**20:.0f} MB, "
        f"IVF-Flat {vectors.nbytes / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0, help="which draw of bench.indexer's data")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[96, 256, 384, 768])
    parser.add_argument("--real-faces", type=Path, help=".npz of the lfw-dev embeddings: read if present, else written")
    args = parser.parse_args()
    main(args.faces, args.queries, args.seed, args.nprobe, args.real_faces)
