"""The CPU's FAST index in one process, against IVF-Flat on the same lists:
per nprobe, the time of one query, its ratio to exact search, and how often
it finds the same best person as exact search (for the synthetic and the
real-face queries apart) and the same best face, which parts configurations
that all find the person. This is the sweep behind AnnPolicy.nprobe_for
(the share of lists visited), rescored.SPARE and rescored.DIMS_PER_CODE.

Both indexes share one trained coarse quantizer, so they visit the same
lists; only what the lists hold differs (full vectors, or 4-bit codes
rescored from the exact index). The data is bench.indexer's.

    python -m bench.fast_index [--faces 1000000] [--dim 512] [--queries 400] [--seed 0]
                               [--nprobe 96 256 384 768] [--spare 256] [--code-dims 8]
                               [--real-faces FILE] [--leave-one-out]

--spare: candidates rescored beyond the k asked for, a row per value;
--code-dims: beside the shipped codes (one 4-bit code per DIMS_PER_CODE
dimensions), codes of one per this many dimensions on the same lists;
--leave-one-out: every lfw-dev photo is enrolled, and each one whose name
has another photo is a query against all the rest (its own face skipped),
1,500 real queries instead of at most lfw-dev's 300 names; --queries then
counts the synthetic ones only.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import console
from bench.indexer import DIM, WEAK_COSINE, face_like, lfw_embeddings, real_start
from indexer.device import AnnSnapshot, Cpu
from indexer.rescored import BY_LIST_FROM, BY_QUERY, SPARE, Rescored, subquantizers
from indexer.shard import AnnPolicy

Search = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # one query -> its best two (cosines, ids)


def per_query_ms(search: Search, queries: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds of each single-query search, and each query's best id
    but its own face (`own`, -1 where the query is not enrolled)."""
    search(queries[:1])
    ms, best = [], []
    for q, face in zip(queries, own, strict=True):
        started = time.perf_counter()
        _, ids = search(q[None])
        ms.append((time.perf_counter() - started) * 1e3)
        best.append(ids[1] if ids[0] == face else ids[0])
    return np.array(ms), np.array(best)


def top_two(index: faiss.Index | Rescored) -> Search:
    def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = index.search(q, 2)
        return scores[0], ids[0]

    return search


def with_second_look(fast: Rescored, own: dict[bytes, int], weak: float) -> tuple[Search, list[bool]]:
    """FAST as the gateway runs it (gateway/shards.py): a second, deeper
    look when the best face is weak; `own` names each enrolled query's own
    face, which the best skips. Also the list of which searches looked again."""
    looked: list[bool] = []

    def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = fast.search(q, 2)
        best = scores[0, 1] if ids[0, 0] == own.get(q.tobytes(), -1) else scores[0, 0]
        looked.append(bool(best < weak))
        if looked[-1]:
            scores, ids = fast.search(q, 2, second=True)
        return scores[0], ids[0]

    return search, looked


def cosine_range(cosines: np.ndarray) -> str:
    return f"{cosines.min():.2f}-{cosines.max():.2f}" if len(cosines) else "-"


def real_queries(real: np.ndarray, names: list[str], first_row: int) -> tuple[np.ndarray, np.ndarray]:
    """Each enrolled real photo whose name has another, as (queries, own rows)."""
    photos = Counter(names)
    picked = np.array([i for i, name in enumerate(names) if photos[name] > 1])
    return real[picked], first_row + picked


def kernels(codes: faiss.IndexIVFPQFastScan, vectors: np.ndarray, queries: np.ndarray, nprobe: int) -> None:
    """The shipped FAST search (rescoring included) by how many queries come
    at once, through FAISS's default fast-scan kernel and through the one
    Rescored picks for fewer than BY_LIST_FROM queries."""
    fast = Rescored(codes, lambda ids: vectors[ids])
    fast.nprobe = nprobe
    table = Table(title=f"FAST's fast-scan kernels, {nprobe} lists visited, ms a query (rescoring included)")
    for column in ("queries at once", "FAISS's default", f"by query ({BY_QUERY})", "ratio", "same faces"):
        table.add_column(column, justify="right")
    for batch in (1, 4, BY_LIST_FROM):
        timed = []
        for by_query_below in (0, len(queries) + 1):  # never, always
            fast.by_query_below = by_query_below
            fast.search(queries[:batch], 10)
            started = time.perf_counter()
            found = [fast.search(queries[i : i + batch], 10)[1] for i in range(0, len(queries) - batch + 1, batch)]
            timed.append(((time.perf_counter() - started) / (len(found) * batch) * 1e3, np.concatenate(found)))
        (default_ms, default_ids), (by_query_ms, by_query_ids) = timed
        same = (default_ids == by_query_ids).all(axis=1).mean()
        ratio = default_ms / by_query_ms
        table.add_row(str(batch), f"{default_ms:.3f}", f"{by_query_ms:.3f}", f"{ratio:.2f}x", f"{same:.4f}")
    console.print(table)


def main(
    faces: int,
    query_count: int,
    seed: int,
    nprobes: list[int],
    real_faces: Path | None,
    dim: int = DIM,
    spares: tuple[int, ...] = (SPARE,),
    code_dims: tuple[int, ...] = (),
    leave_one_out: bool = False,
) -> None:
    real, names = lfw_embeddings(real_faces, dim)
    rng = np.random.default_rng(seed)
    vectors, persons, queries = face_like(faces, real, names, query_count, rng, hold_out_real=not leave_one_out)
    persons = np.asarray(persons)
    own = np.full(len(queries), -1)
    if leave_one_out:
        held, held_rows = real_queries(real, names, real_start(faces, real))
        queries, own = np.concatenate([queries, held]), np.concatenate([own, held_rows])
        synthetic = np.arange(len(queries)) < query_count
    else:  # face_like puts the synthetic queries first
        synthetic = np.arange(len(queries)) < len(queries) - min(query_count // 2, len(set(names)))
    ids = np.arange(faces, dtype=np.int64)
    master = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    master.add_with_ids(vectors, ids)

    exact_times, exact_best = per_query_ms(top_two(master), queries, own)
    exact_ms = exact_times.mean()
    truth = persons[exact_best]
    exact_cosine = np.einsum("qd,qd->q", queries, vectors[exact_best])

    snapshot = AnnSnapshot(vectors, ids, dim, AnnPolicy().lists_for(faces))
    started = time.perf_counter()
    codes = Cpu().build_ann(snapshot)
    build_codes = time.perf_counter() - started
    # Finer codes on the same lists: only their product quantizer is trained.
    variants = {subquantizers(dim): codes}
    for per_code in code_dims:
        m = dim // per_code
        if m not in variants:
            finer = faiss.IndexIVFPQFastScan(
                faiss.clone_index(codes.quantizer), dim, snapshot.lists, m, 4, faiss.METRIC_INNER_PRODUCT
            )
            finer.train(snapshot.training_sample())
            finer.add_with_ids(vectors, ids)
            variants[m] = finer
    started = time.perf_counter()
    flat = faiss.IndexIVFFlat(faiss.clone_index(codes.quantizer), dim, snapshot.lists, faiss.METRIC_INNER_PRODUCT)
    flat.add_with_ids(vectors, ids)
    flat.parallel_mode = 1  # its best single-query setting on the CPU: threads share one query's lists
    fill_flat = time.perf_counter() - started

    how = ", each photo against the rest" if leave_one_out else ""
    table = Table(
        title=f"FAST in process: {faces:,} faces x {dim}-d, {snapshot.lists:,} lists, {len(queries)} queries "
        f"({synthetic.sum()} synthetic, {(~synthetic).sum()} real{how}), exact search {exact_ms:.1f} ms"
    )
    columns = ["index", "nprobe", "lists visited", "ms / query", "p50 / p99", "vs exact", "vs IVF-Flat"]
    columns += ["same best", "same face", "synthetic", "real", "real missed", "their exact cosine", "looked again"]
    for column in columns:
        table.add_column(column, justify="left" if column == "index" else "right")
    own_face = {q.tobytes(): int(face) for q, face in zip(queries, own, strict=True) if face >= 0}
    for nprobe in nprobes:
        flat.nprobe = nprobe
        rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]
        rows = [("IVF-Flat", *per_query_ms(top_two(flat), queries, own), None)]
        for m, index in variants.items():
            for spare in spares:
                fast = Rescored(index, master.reconstruct_batch, spare)
                fast.nprobe = nprobe
                name = f"fast-scan {m // 2} B a face, {spare} rescored"
                rows.append((name, *per_query_ms(top_two(fast), queries, own), None))
        # The shipped search: shipped codes and spare, and the second look below the weak line.
        fast = Rescored(codes, master.reconstruct_batch)
        fast.nprobe, fast.second_nprobe = nprobe, AnnPolicy(nprobe=nprobe).second_nprobe_for(snapshot.lists)
        search, looked = with_second_look(fast, own_face, WEAK_COSINE)
        ms, best = per_query_ms(search, queries, own)
        rows.append((f"the same, {fast.second_nprobe} lists on a second look", ms, best, np.array(looked[1:])))
        for name, ms, best, again in rows:
            same = persons[best] == truth
            table.add_row(
                name,
                str(nprobe),
                f"{nprobe / snapshot.lists:.1%}",
                f"{ms.mean():.3f}",
                f"{np.median(ms):.2f} / {np.percentile(ms, 99):.2f}",
                f"{exact_ms / ms.mean():.1f}x",
                f"{rows[0][1].mean() / ms.mean():.2f}x",
                f"{same.mean():.4f}",
                f"{(best == exact_best).mean():.4f}",
                f"{same[synthetic].mean():.3f}",
                f"{same[~synthetic].mean():.4f}",
                f"{(~same[~synthetic]).sum()} of {(~synthetic).sum()}",
                cosine_range(exact_cosine[~same & ~synthetic]),
                "-" if again is None else f"{again[synthetic].mean():.1%} / {again[~synthetic].mean():.1%}",
            )
    Console(width=200).print(table)  # its 14 columns do not fit bench.common's 140
    kernels(codes, vectors, queries, AnnPolicy().nprobe_for(snapshot.lists))
    console.print(
        f"build: fast-scan trained and filled in {build_codes:.1f} s (IVF-Flat filled on its lists in "
        f"{fill_flat:.1f} s); memory: codes {codes.code_size * faces / 2**20:.0f} MB, "
        f"IVF-Flat {vectors.nbytes / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=DIM, help="512, or 128 (MobileFaceNet's, bench.scale's)")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0, help="which draw of bench.indexer's data")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[96, 256, 384, 768])
    parser.add_argument("--spare", type=int, nargs="+", default=[SPARE], help="candidates rescored beyond k")
    parser.add_argument(
        "--code-dims", type=int, nargs="+", default=[], help="also fast-scan codes of one 4-bit code per this many dims"
    )
    parser.add_argument("--real-faces", type=Path, help=".npz of the lfw-dev embeddings: read if present, else written")
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="every lfw-dev photo a query against the rest (--queries: synthetic)",
    )
    args = parser.parse_args()
    spares, code_dims = tuple(args.spare), tuple(args.code_dims)
    main(
        args.faces,
        args.queries,
        args.seed,
        args.nprobe,
        args.real_faces,
        args.dim,
        spares,
        code_dims,
        args.leave_one_out,
    )
