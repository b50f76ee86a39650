"""Where a single ACCURATE search's time goes, layer by layer, in one process:
the raw FAISS index, the shard's device replica (Tombstoned), the Shard
(ids to faces and persons), the Registry (one answer per person), and the
raw index again with the idle gap between queries that a served search
leaves (the GPU may slow down between requests). Run next to
`bench.indexer`, whose service rows add the gRPC hop and the catalog check.

    python -m bench.indexer_layers [--faces 1000000] [--device cpu|cuda:0] [--queries 300]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from bench.common import Result, console, print_table, timed_loop
from indexer import device as devices
from indexer.registry import Query, Registry
from indexer.shard import AnnPolicy

DIM = 512
PER_PERSON = 4


def unit(rng, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main(faces: int, device: str, queries: int, gap_ms: float) -> None:
    rng = np.random.default_rng(0)
    vectors = np.empty((faces, DIM), np.float32)
    for start in range(0, faces, 200_000):
        vectors[start : start + 200_000] = unit(rng, min(200_000, faces - start))
    probes = unit(rng, queries)
    # No FAST index: only exact search is timed here.
    registry = Registry(AnnPolicy(min_faces=faces + 1), devices.choose(device))
    shard = registry.writable(("t", "c"), DIM)
    face_ids = [f"f{i}" for i in range(faces)]
    shard.add(face_ids, [f"p{i // PER_PERSON}" for i in range(faces)], vectors)
    # k = m, the most faces a person has: what Registry asked for top_k 1
    # before it searched just deep enough (now k = 1: the Registry row).
    k = shard.max_faces_per_person
    replica = shard.exact if shard.exact is not None else shard.index
    raw = faiss.IndexFlatIP(DIM)
    if device.startswith("cuda:"):
        resources = faiss.StandardGpuResources()
        raw = faiss.index_cpu_to_gpu(resources, int(device[5:]), raw)
    raw.add(vectors)

    def calls(search) -> list:
        def call(q):
            def run() -> int:
                search(q[None])
                return 1

            return run

        return [call(q) for q in probes]

    def with_gap(search):
        def gapped(q):
            deadline = time.perf_counter() + gap_ms / 1e3
            while time.perf_counter() < deadline:  # a busy wait: sleep() is too coarse
                pass
            return search(q)

        return gapped

    layers = {
        "raw FAISS, k=1": lambda q: raw.search(q, 1),
        f"raw FAISS, k={k}": lambda q: raw.search(q, k),
        f"shard replica (Tombstoned), k={k}": lambda q: replica.search(q, k),
        f"Shard.search, k={k}": lambda q: shard.search(q, k),
        "Registry.search, top_k=1": lambda q: registry.search(Query("t", ("c",), 1, -1.0), q),
        f"raw FAISS, k=1, {gap_ms:g} ms idle before each": with_gap(lambda q: raw.search(q, 1)),
    }
    results: list[Result] = []
    for name, search in layers.items():
        search(probes[:1])
        results.append(timed_loop(name, calls(search)))
    print_table(f"One ACCURATE query through each layer, {faces:,} faces, {device}", results, results[0], "queries")
    console.print(f"k = {k}, the most faces a person has; Registry.search asks for (top_k - 1) x {k} + 1")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="idle time before each query in the last row")
    args = parser.parse_args()
    main(args.faces, args.device, args.queries, args.gap_ms)
