"""The indexer at 100k and 1M faces: build, memory, QPS and latency for single
queries and batches of 32, ACCURATE and FAST, next to raw FAISS IndexFlatIP
called in-process and Milvus Lite on the same vectors and queries.

Data (512-d, unit length): identities whose faces are noisy copies of a
centre, centres drawn from a low-rank subspace so that strangers' cosines
spread like real faces' (about 0 +/- 0.1) while one identity's faces sit
near 0.6; plus the real lfw-dev MobileFaceNet embeddings, lifted into 512-d
by an orthonormal map that keeps every inner product. Queries are fresh
samples of enrolled identities and real lfw-dev photos.

    python -m bench.indexer [--sizes 100000 1000000] [--queries 200] [--paths raw service milvus]
                            [--device cpu|cuda:0] [--real-faces FILE] [--nprobe N]

With --device cuda:0 (faiss-gpu installed: `make deps FAISS=gpu`) the
service's shards and the raw FAISS baseline are on the GPU; Milvus Lite
stays on the CPU, which is all it runs on. --real-faces keeps the lfw-dev
embeddings in an .npz file (computed on first use), so a machine without
lfw-dev (the lent GPU machine) runs on the same real faces.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import faiss
import grpc
import numpy as np
import psutil
from rich.table import Table

from bench import plots
from bench.common import Result, console, timed_loop
from devkit import lfw, postgres
from devkit.stack import Stack
from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from facesearch_common import database
from facesearch_common.placement import person_shard
from facesearch_common.specs import MOBILEFACENET_CASIA
from indexer.shard import AnnPolicy

DIM = 512
PER_PERSON = 4
RANK = 96  # subspace of identity centres
NOISE = 0.8  # per-face noise: same-identity cosine about 0.6
TENANT, COLLECTION = "bench", "c" * 24
BATCH = 32
CLIENTS = 16  # single-query clients in flight, for the concurrent rows
IN_FLIGHT = 32  # enrollment writes in flight
# The line under which the gateway has FAST look again (gateway/shards.py),
# for these faces: real ones are MobileFaceNet's, synthetic ones their like.
WEAK_COSINE = MOBILEFACENET_CASIA.calibration.weak_cosine


def lfw_embeddings(cache: Path | None = None, dim: int = DIM) -> tuple[np.ndarray, list[str]]:
    """Real faces: MobileFaceNet embeddings of lfw-dev (128-d), lifted to
    `dim` (512 unless told) by an orthonormal map that keeps every inner
    product; read from `cache` where it exists and holds `dim`-d vectors,
    else computed (and kept there)."""
    if cache is not None and cache.is_file():
        kept = np.load(cache)
        if kept["vectors"].shape[1] == dim:
            return kept["vectors"], kept["names"].tolist()
    from devkit.recipe import Recipe

    recipe = Recipe(MOBILEFACENET_CASIA)
    identities = lfw.identities()
    small, labels = recipe.lfw_portraits(len(identities))
    names = [f"lfw:{identities[label]}" for label in labels]
    if dim < small.shape[1]:
        raise ValueError(f"{dim}-d is fewer dimensions than the model's {small.shape[1]}")
    lift, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((dim, small.shape[1])))
    vectors = (small @ lift.T).astype(np.float32)
    if cache is not None:
        np.savez(cache, vectors=vectors, names=np.array(names))
    return vectors, names


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def real_start(n: int, real: np.ndarray) -> int:
    """The row of face_like's first enrolled real face: they follow the synthetic identities."""
    return (n - len(real)) // PER_PERSON * PER_PERSON


def face_like(n: int, real: np.ndarray, real_names: list[str], queries: int, rng, hold_out_real: bool = True) -> tuple:
    """(vectors, person of each, query vectors): n faces in all, real ones
    included, in the real faces' dimension (`real.shape[1]`). With
    `hold_out_real` False every real face is enrolled, in its order from
    real_start, and every query is synthetic."""
    dim = real.shape[1]
    identities = real_start(n, real) // PER_PERSON
    basis = normalise(rng.standard_normal((RANK, dim)))
    centres = normalise(
        rng.standard_normal((identities, RANK)).astype(np.float32) @ basis
        + 0.3 * rng.standard_normal((identities, dim)).astype(np.float32) / np.sqrt(dim) * np.sqrt(RANK)
    )
    vectors = np.empty((n, dim), np.float32)
    for start in range(0, identities * PER_PERSON, 200_000):
        stop = min(start + 200_000, identities * PER_PERSON)
        idx = np.arange(start, stop) // PER_PERSON
        noise = rng.standard_normal((stop - start, dim)).astype(np.float32) * (NOISE / np.sqrt(dim))
        vectors[start:stop] = normalise(centres[idx] + noise)
    # Real faces: all but one photo of each lfw identity enrolled; the rest are queries.
    enrolled_real: list[int] = []
    real_queries: list[int] = []
    seen: set[str] = set()
    for i, name in enumerate(real_names):
        held = hold_out_real and name not in seen and len(real_queries) < queries // 2
        (real_queries if held else enrolled_real).append(i)
        seen.add(name)
    fill = n - identities * PER_PERSON
    take = enrolled_real[:fill]
    vectors[identities * PER_PERSON : identities * PER_PERSON + len(take)] = real[take]
    persons = [f"s{i // PER_PERSON}" for i in range(identities * PER_PERSON)] + [real_names[i] for i in take]
    rest = fill - len(take)
    if rest:
        vectors[n - rest :] = normalise(rng.standard_normal((rest, dim)))
        persons += [f"x{i}" for i in range(rest)]
    picked = rng.choice(identities, queries - len(real_queries), replace=False)
    synthetic_queries = normalise(
        centres[picked] + rng.standard_normal((len(picked), dim)).astype(np.float32) * (NOISE / np.sqrt(dim))
    )
    return vectors, persons, np.concatenate([synthetic_queries, real[real_queries]])


def rate_rows(
    name: str, single: Result, batched: Result, build_s: float, memory_mb: float, best: list[str], truth: list[str]
) -> dict:
    agreement = np.mean([a == b for a, b in zip(best, truth, strict=True)])
    return {
        "path": name,
        "build s": build_s,
        "memory MB": memory_mb,
        "qps 1": single.rate,
        "p50 1": single.pct(50),
        "p99 1": single.pct(99),
        "qps 32": batched.rate,
        "p50 32": batched.pct(50),
        "p99 32": batched.pct(99),
        "same best": agreement,
    }


def measure(search_one, search_batch, queries: np.ndarray) -> tuple[Result, Result, list[str]]:
    best: list[str] = [""] * len(queries)

    def one(i):
        def run() -> int:
            best[i] = search_one(queries[i])
            return 1

        return run

    def batch(i):
        def run() -> int:
            search_batch(queries[i : i + BATCH])
            return BATCH

        return run

    search_one(queries[0])
    single = timed_loop("1", [one(i) for i in range(len(queries))])
    batched = timed_loop("32", [batch(i) for i in range(0, len(queries) - BATCH + 1, BATCH)])
    return single, batched, best


Searches = tuple[Callable[[np.ndarray], str], Callable[[np.ndarray], object]]  # one query, a batch


def in_turns(raw: Searches, service: Searches, queries: np.ndarray, rounds: int = 4) -> Table:
    """Raw FAISS and the service's ACCURATE, taken in turns, so that the
    machine's drift (15-25% here) hits both alike: a ratio per round and the
    median, for single queries and for batches of 32."""
    table = Table(title="service ACCURATE / raw FAISS, in turns")
    for column in ("round", "raw qps 1", "service qps 1", "ratio 1", "raw qps 32", "service qps 32", "ratio 32"):
        table.add_column(column, justify="right")
    ratios: list[tuple[float, float]] = []
    for round_ in range(1, rounds + 1):
        a, b = measure(*raw, queries)[:2], measure(*service, queries)[:2]
        ratios.append((b[0].rate / a[0].rate, b[1].rate / a[1].rate))
        table.add_row(
            str(round_),
            f"{a[0].rate:.1f}",
            f"{b[0].rate:.1f}",
            f"{ratios[-1][0]:.2f}x",
            f"{a[1].rate:.1f}",
            f"{b[1].rate:.1f}",
            f"{ratios[-1][1]:.2f}x",
        )
    single, batched = np.median(ratios, axis=0)
    table.add_row("median", "", "", f"{single:.2f}x", "", "", f"{batched:.2f}x")
    return table


def raw_faiss(vectors, persons, queries, device: str) -> tuple[dict, list[str], Searches]:
    started = time.perf_counter()
    index = faiss.IndexFlatIP(DIM)
    if device.startswith("cuda:"):
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, int(device[5:]), index)
    index.add(vectors)
    build = time.perf_counter() - started
    searches = (lambda q: persons[index.search(q[None], 1)[1][0][0]], lambda qs: index.search(qs, 10))
    single, batched, best = measure(*searches, queries)
    name = "raw FAISS IndexFlatIP" + (" (GPU)" if device != "cpu" else "")
    return rate_rows(name, single, batched, build, vectors.nbytes / 2**20, best, best), best, searches


def bulk_load(
    url: str, vectors: np.ndarray, persons: list[str], collection: str = COLLECTION, shards: int = 1
) -> float:
    """Every face written into PostgreSQL with COPY, as an operator's bulk
    import would (the system of record the indexer loads on start): the
    collection (in `shards` shards), its persons, their memberships and
    faces. Returns the seconds."""

    async def load() -> None:
        connection = await asyncpg.connect(url)
        try:
            await database.migrate(connection)
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO collections (tenant, id, name, data, shards) VALUES ($1, $2, $2, '{}', $3)",
                    TENANT,
                    collection,
                    shards,
                )
                # Person ids are the collection's own, so collections can share a database.
                unique = [f"{collection}/{p}" for p in dict.fromkeys(persons)]
                await connection.copy_records_to_table(
                    "persons",
                    records=[(TENANT, p, "{}", 0) for p in unique],
                    columns=["tenant", "id", "data", "version"],
                )
                await connection.copy_records_to_table(
                    "memberships",
                    records=[(TENANT, collection, p, person_shard(p, shards)) for p in unique],
                    columns=["tenant", "collection", "person", "shard"],
                )
                await connection.copy_records_to_table(
                    "faces",
                    records=(
                        (TENANT, f"{collection}/{p}", f"f{i}", vectors[i].tobytes()) for i, p in enumerate(persons)
                    ),
                    columns=["tenant", "person", "face_id", "vector"],
                )
        finally:
            await connection.close()

    started = time.perf_counter()
    asyncio.run(load())
    return time.perf_counter() - started


def serving(stub: pb_grpc.IndexerStub, ref: pb.Ref) -> pb.ShardStatsResponse:
    """Waits until the indexer serves (it answers once it has loaded its shards)."""
    while True:
        try:
            stats = stub.ShardStats(ref, timeout=5)
            if stats.faces:
                return stats
        except grpc.RpcError:
            pass
        time.sleep(0.2)


def concurrent(name: str, search_one, queries: np.ndarray) -> Result:
    """Single-query requests, CLIENTS in flight: the indexer answers those
    that arrive together with one FAISS call (indexer/batching.py)."""

    def call(q):
        def run() -> int:
            search_one(q)
            return 1

        return run

    return timed_loop(name, [call(q) for q in np.concatenate([queries] * 4)], CLIENTS)


def concurrent_table(title: str, rows: list[Result], singles: dict[str, float], raw_batched: float) -> Table:
    table = Table(title=title)
    for column in ("path", "qps", "p50 ms", "p99 ms", "vs one client", "vs raw FAISS, batches of 32"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for r in rows:
        table.add_row(
            r.name,
            f"{r.rate:.1f}",
            f"{r.pct(50):.2f}",
            f"{r.pct(99):.2f}",
            f"{r.rate / singles[r.name]:.2f}x",
            f"{r.rate / raw_batched:.2f}x",
        )
    return table


def service(
    vectors, persons, queries, truth, workdir: Path, device: str, nprobe: int, raw: Searches
) -> tuple[list[dict], dict, Table, list[Result], dict[str, float]]:
    # Bulk-loaded into PostgreSQL, then the indexer started as deployed: it
    # loads the shard from the database and trains the FAST index once.
    served = {"INDEXER_ANN_MIN_FACES": "20000", "INDEXER_DEVICE": device, "INDEXER_NPROBE": str(nprobe)}
    stack = Stack(workdir / "stack", served)
    rows = []
    with stack.running(only=["postgres"]):
        postgres.wait_ready(stack.env()["DATABASE_URL"])
        load_s = bulk_load(stack.env()["DATABASE_URL"], vectors, persons)
        started = time.perf_counter()
        stack.start(only=["indexer"])
        channel = grpc.insecure_channel(f"127.0.0.1:{stack.ports.indexer}")
        stub = pb_grpc.IndexerStub(channel)
        ref = pb.Ref(tenant=TENANT, id=COLLECTION)
        stats = serving(stub, ref)
        restart_s = time.perf_counter() - started
        while not stub.ShardStats(ref, timeout=5).ann:
            time.sleep(0.5)
        ann_s = time.perf_counter() - started
        memory = psutil.Process(stack.pid("indexer")).memory_info().rss / 2**20

        def search(mode: pb.Mode) -> Searches:
            def request(qs: np.ndarray, top_k: int) -> pb.SearchRequest:
                return pb.SearchRequest(
                    tenant=TENANT,
                    shards=[COLLECTION],
                    dim=DIM,
                    queries=qs.tobytes(),
                    top_k=top_k,
                    min_cosine=-1,
                    mode=mode,
                )

            def one(q):
                return stub.Search(request(q, 1), timeout=60).results[0].hits[0].person_id.partition("/")[2]

            def batch(qs):
                stub.Search(request(qs, 10), timeout=60)

            return one, batch

        loaded, singles = [], {}
        fast = "IVF-Flat" if device.startswith("cuda:") else "IVF fast-scan, rescored"
        for label, mode, build in (
            ("service ACCURATE", pb.ACCURATE, restart_s),
            (f"service FAST ({fast})", pb.FAST, ann_s),
        ):
            single, batched, best = measure(*search(mode), queries)
            rows.append(rate_rows(label, single, batched, build, memory, best, truth))
            loaded.append(concurrent(f"{label}, {CLIENTS} clients", search(mode)[0], queries))
            singles[loaded[-1].name] = single.rate
        turns = in_turns(raw, search(pb.ACCURATE), queries)
    restart = {"faces": stats.faces, "enrollment s": load_s, "restart s": restart_s, "ann ready s": ann_s}
    return rows, restart, turns, loaded, singles


def milvus(vectors, persons, queries, truth, workdir: Path, nprobe: int) -> list[dict]:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(workdir / "milvus.db"))
    rows = []
    for label, index_type, params in (
        ("Milvus Lite FLAT", "FLAT", {}),
        ("Milvus Lite IVF_FLAT", "IVF_FLAT", {"nlist": AnnPolicy().lists_for(len(vectors))}),
    ):
        name = index_type.lower()
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        index_params = client.prepare_index_params()
        index_params.add_index("vector", index_type=index_type, metric_type="IP", params=params)
        rss_before = psutil.Process().memory_info().rss  # Milvus Lite runs inside this process
        started = time.perf_counter()
        client.create_collection(name, schema=schema, index_params=index_params)
        for start in range(0, len(vectors), 20_000):
            chunk = vectors[start : start + 20_000]
            client.insert(name, [{"id": start + i, "vector": v} for i, v in enumerate(chunk)])
        # Sealed, indexed segments: without a flush Milvus scans a growing
        # segment unindexed (seconds per query at 100k).
        client.flush(name)
        client.release_collection(name)
        client.load_collection(name)
        build = time.perf_counter() - started
        search_params = {"metric_type": "IP", "params": {"nprobe": nprobe} if index_type == "IVF_FLAT" else {}}

        def one(q: np.ndarray, name: str = name, params: dict = search_params) -> str:
            return persons[client.search(name, [q], limit=1, search_params=params)[0][0]["id"]]

        def batch(qs: np.ndarray, name: str = name, params: dict = search_params) -> object:
            return client.search(name, list(qs), limit=10, search_params=params)

        single, batched, best = measure(one, batch, queries)
        memory = (psutil.Process().memory_info().rss - rss_before) / 2**20
        rows.append(rate_rows(label, single, batched, build, memory, best, truth))
        client.drop_collection(name)
    return rows


def print_rows(title: str, rows: list[dict]) -> None:
    baseline = rows[0]
    accurate = next((r for r in rows if r["path"] == "service ACCURATE"), baseline)
    table = Table(title=title)
    columns = [
        "path",
        "build s",
        "memory MB",
        "qps 1",
        "p50 1",
        "p99 1",
        "qps 32",
        "p50 32",
        "p99 32",
        "same best",
        "vs raw FAISS",
        "vs ACCURATE",
    ]
    for c in columns:
        table.add_column(c, justify="left" if c == "path" else "right")
    for r in rows:
        table.add_row(
            r["path"],
            f"{r['build s']:.1f}",
            f"{r['memory MB']:.0f}",
            f"{r['qps 1']:.1f}",
            f"{r['p50 1']:.2f}",
            f"{r['p99 1']:.2f}",
            f"{r['qps 32']:.1f}",
            f"{r['p50 32']:.1f}",
            f"{r['p99 32']:.1f}",
            f"{r['same best']:.4f}",
            f"{r['qps 1'] / baseline['qps 1']:.2f}x",
            f"{r['qps 1'] / accurate['qps 1']:.2f}x",
        )
    console.print(table)


def main(
    sizes=(100_000, 1_000_000),
    query_count: int = 200,
    paths=("raw", "service", "milvus"),
    device: str = "cpu",
    real_faces: Path | None = None,
    nprobe: int = AnnPolicy().nprobe,
) -> None:
    rng = np.random.default_rng(0)
    real, names = lfw_embeddings(real_faces)
    by_size: dict[str, list[dict]] = {}
    for n in sizes:
        vectors, persons, queries = face_like(n, real, names, query_count, rng)
        with tempfile.TemporaryDirectory() as tmp:
            raw, truth, raw_searches = raw_faiss(vectors, persons, queries, device)
            rows, restart, turns = [raw], None, None
            loaded: list[Result] = []
            if "service" in paths:
                service_rows, restart, turns, loaded, singles = service(
                    vectors, persons, queries, truth, Path(tmp), device, nprobe, raw_searches
                )
                rows += service_rows
            if "milvus" in paths:
                rows += milvus(vectors, persons, queries, truth, Path(tmp), nprobe)
        where = device if device != "cpu" else f"CPU ({faiss.omp_get_max_threads()} threads)"
        print_rows(f"Indexer, {n:,} faces x {DIM}-d, {len(queries)} queries, {where}, nprobe {nprobe}", rows)
        for row in rows:
            by_size.setdefault(row["path"], []).append({**row, "faces": n})
        if turns is not None:
            console.print(turns)
        if loaded:
            console.print(
                concurrent_table(
                    f"Single-query requests, {CLIENTS} in flight, {n:,} faces", loaded, singles, raw["qps 32"]
                )
            )
        if restart:
            console.print(
                f"restart with {restart['faces']:,} faces: serving after {restart['restart s']:.1f} s "
                f"(shards loaded from PostgreSQL), FAST index ready after {restart['ann ready s']:.1f} s; "
                f"bulk-loaded into PostgreSQL in {restart['enrollment s']:.1f} s"
            )
    where = device if device != "cpu" else f"{faiss.omp_get_max_threads()} CPU threads"
    path = plots.draw(
        f"indexer_by_size_{device.replace(':', '')}",
        f"One query at a time by collection size, {DIM}-d, {where}, nprobe {nprobe}",
        [
            plots.Panel(
                "faces in the collection",
                "queries/s, one at a time",
                {p: ([r["faces"] for r in rs], [r["qps 1"] for r in rs]) for p, rs in by_size.items()},
                logx=True,
                logy=True,
            ),
            plots.Panel(
                "faces in the collection",
                "same best person as exact search",
                {p: ([r["faces"] for r in rs], [r["same best"] for r in rs]) for p, rs in by_size.items()},
                logx=True,
            ),
        ],
    )
    console.print(f"plot: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--paths", nargs="+", default=["raw", "service", "milvus"], choices=["raw", "service", "milvus"]
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda:N (faiss-gpu): where the shards and raw FAISS run")
    parser.add_argument("--real-faces", type=Path, help=".npz of the lfw-dev embeddings: read if present, else written")
    parser.add_argument(
        "--nprobe",
        type=int,
        default=AnnPolicy().nprobe,
        help="lists visited per FAST query, by the service and Milvus Lite alike",
    )
    args = parser.parse_args()
    main(tuple(args.sizes), args.queries, tuple(args.paths), args.device, args.real_faces, args.nprobe)
