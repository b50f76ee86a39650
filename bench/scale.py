"""One scale run of the indexer tier: 10M faces of 128 dimensions (the
shipped model's, MobileFaceNet) in one collection of S = 4 shards on 2
indexers, each shard held once (R = 1), so each indexer holds about two.

The faces are bench/indexer.py's face-like vectors in `--dim` dimensions,
the real lfw-dev embeddings among them, bulk-loaded into PostgreSQL with
COPY (then VACUUM ANALYZE, so that autovacuum does not run into the
indexers' start). Measured: the bulk load; the time from starting the
indexers until both serve ACCURATE (every held shard loaded) and until
every shard has its FAST index; each indexer's resident memory (VmRSS,
VmHWM) once serving; PostgreSQL's database and `faces` table sizes; and,
one query at a time through the gateway's shard fan-out (gateway/shards.py)
straight to the indexers, top_k 1, ACCURATE, FAST with one look (its
baseline: FAST before its second look) and FAST p50/p99 latency and
queries/s, and how often FAST's best person and face are ACCURATE's.
Then what the run says a 512-d collection of the same size needs, and
last one line holding a JSON object of the headline figures, for scripts
that compare runs.

    python -m bench.scale [--faces 10000000] [--dim 128] [--shards 4] [--queries 200]
                          [--real-faces FILE]

--real-faces keeps the lfw-dev embeddings (at --dim) in an .npz file,
computed on first use.

An indexer loads each shard in batches (indexer/follower.py, LOAD_BATCH);
until 2026-12-02 it loaded a shard with one fetch, which the database pool's
30 s command timeout cut off at 2.5M faces a shard on this machine, so the
indexers loaded again and again and never served. The bench still counts
load timeouts from the indexers' logs and stops after MAX_LOAD_TIMEOUTS,
saying so, rather than wait forever.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from rich.table import Table

from bench import indexer as data
from bench.common import console
from devkit import postgres
from devkit.stack import Stack
from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from facesearch_common import database
from facesearch_common.placement import holders, shard_keys
from facesearch_common.specs import MOBILEFACENET_CASIA
from gateway.indexer_client import ShardSearch
from gateway.shards import Shards
from gateway.validation import MIN_SCORE_RANGE
from indexer.rescored import subquantizers

INDICES = 2
GiB = 2**30
READY_TIMEOUT_S = 4 * 3600
# An indexer whose shard load outlasts its database pool's command timeout
# (facesearch_common.database.pool: 30 s) logs `database unavailable` with a
# TimeoutError and loads again from scratch: after this many, it never will.
MAX_LOAD_TIMEOUTS = 3
# In PostgreSQL a 512-d face's 2,052-byte value does not fit in its row
# (values move out of rows over about 2 kB): the row keeps an 18-byte
# pointer, the TOAST table two chunks (1,996 bytes and the 52 left), and a
# bulk load fills each 8 kB page with three faces' chunks and a gap no
# fourth fits in; two TOAST index entries more (about 2,770 B a face measured
# on those 300k faces).
TOAST_POINTER = 18
TOAST_PER_FACE = 8192 / 3 + 36


def name_split_evenly(addresses: list[str], shards: int) -> str:
    """A collection whose `shards` shards fall as evenly as can be on the indexers."""
    fair = -(-shards // len(addresses))
    for i in range(10_000):
        name = f"scale-{i}"
        held = [holders(addresses, data.TENANT, k, 1)[0] for k in shard_keys(name, shards)]
        if max(held.count(j) for j in range(len(addresses))) == fair:
            return name
    raise RuntimeError("no collection name splits its shards evenly")


def memory_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024
    return found


def available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def total_memory() -> int:
    return int(Path("/proc/meminfo").read_text().split()[1]) * 1024


@dataclass
class Start:
    """What starting the indexers took, from the moment they were started."""

    accurate_s: dict[str, float] = field(default_factory=dict)  # indexer -> health SERVING (its shards loaded)
    fast_s: dict[str, float] = field(default_factory=dict)  # shard key -> its FAST index built
    faces: dict[str, int] = field(default_factory=dict)  # shard key -> faces
    rss_accurate: dict[str, int] = field(default_factory=dict)  # indexer -> VmRSS when it began serving
    load_timeouts: dict[str, int] = field(default_factory=dict)  # indexer -> loads that timed out
    min_available: int = 0  # the machine's MemAvailable, lowest seen meanwhile

    @property
    def all_accurate_s(self) -> float:
        return max(self.accurate_s.values())

    @property
    def all_fast_s(self) -> float:
        return max(self.fast_s.values())


def load_timeouts(stack: Stack, name: str) -> int:
    """How many times the indexer's load from PostgreSQL timed out, from its log."""
    log = stack.data_dir / f"{name}.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return sum('"database unavailable"' in line and "TimeoutError" in line for line in lines)


def wait_serving(stack: Stack, names: list[str], keys: list[str], holder: dict[str, int], started: float) -> Start:
    """Polls until every indexer serves and every shard has its FAST index,
    noting when each did and each indexer's memory when it began to serve."""
    addresses = stack.indexers.addresses
    channels = [grpc.insecure_channel(a) for a in addresses]
    stubs = [pb_grpc.IndexerStub(c) for c in channels]
    health = [health_pb2_grpc.HealthStub(c) for c in channels]
    start = Start(min_available=available())
    while len(start.fast_s) < len(keys) or len(start.accurate_s) < len(names):
        now = time.perf_counter() - started
        if now > READY_TIMEOUT_S:
            raise TimeoutError(f"not every shard served FAST after {READY_TIMEOUT_S} s")
        for i, name in enumerate(names):
            if stack.failed(name):
                raise RuntimeError(f"{name} failed:\n{stack.log_tail(name)}")
            if name in start.accurate_s:
                continue
            start.load_timeouts[name] = load_timeouts(stack, name)
            if start.load_timeouts[name] >= MAX_LOAD_TIMEOUTS:
                raise RuntimeError(
                    f"{name} never serves: its shard load timed out {start.load_timeouts[name]} times (the "
                    f"database pool's command timeout, 30 s), each time starting again:\n{stack.log_tail(name, 5)}"
                )
            try:
                status = health[i].Check(health_pb2.HealthCheckRequest(), timeout=5).status
            except grpc.RpcError:
                continue
            if status == health_pb2.HealthCheckResponse.SERVING:
                start.accurate_s[name] = now
                start.rss_accurate[name] = memory_of(stack.pid(name))["VmRSS"]
                console.print(f"{now:8.1f} s  {name} serving ACCURATE")
        for key in keys:
            if key in start.fast_s:
                continue
            try:
                stats = stubs[holder[key]].ShardStats(pb.Ref(tenant=data.TENANT, id=key), timeout=5)
            except grpc.RpcError:
                continue
            if stats.ann:
                start.fast_s[key] = now
                start.faces[key] = stats.faces
                console.print(f"{now:8.1f} s  {key} FAST index built ({stats.faces:,} faces)")
        start.min_available = min(start.min_available, available())
        time.sleep(0.5)
    for channel in channels:
        channel.close()
    return start


async def sizes(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT pg_database_size(current_database()) AS database,"
            " pg_total_relation_size('faces') AS faces,"
            " pg_relation_size('faces') AS heap,"
            " pg_indexes_size('faces') AS indexes,"
            " coalesce(pg_total_relation_size(nullif(reltoastrelid, 0)), 0) AS toast"
            " FROM pg_class WHERE oid = 'faces'::regclass"
        )
        return dict(row)
    finally:
        await connection.close()


async def migrate(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await database.migrate(connection)
    finally:
        await connection.close()


def idle_memory(stack: Stack, names: list[str]) -> dict[str, int]:
    """Each indexer's VmRSS serving an empty database: what it holds before
    any face (Python, FAISS, gRPC), taken off the per-face figures."""
    stack.start(only=names)
    channels = [grpc.insecure_channel(a) for a in stack.indexers.addresses]
    try:
        for name, channel in zip(names, channels, strict=True):
            check = health_pb2_grpc.HealthStub(channel).Check
            while True:
                if stack.failed(name):
                    raise RuntimeError(f"{name} failed:\n{stack.log_tail(name)}")
                try:
                    if (
                        check(health_pb2.HealthCheckRequest(), timeout=5).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        break
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        time.sleep(2)
        return {n: memory_of(stack.pid(n))["VmRSS"] for n in names}
    finally:
        for channel in channels:
            channel.close()
        for name in names:
            stack.stop_one(name)


async def vacuum_analyze(url: str) -> float:
    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await connection.execute("VACUUM ANALYZE collections, persons, memberships, faces")
        return time.perf_counter() - started
    finally:
        await connection.close()


@dataclass(frozen=True)
class Measured:
    latencies_ms: np.ndarray
    seconds: float
    best: list[tuple[str, str]]  # (person, face) of each query's best hit
    cosines: list[float]  # and its cosine
    second_looks: float  # the share of searches that looked again (FAST)

    @property
    def qps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


# What is measured, one query at a time: (mode, the line under which FAST looks again).
MODES = {
    "ACCURATE": (pb.ACCURATE, None),
    "FAST, one look (before)": (pb.FAST, None),
    "FAST": (pb.FAST, data.WEAK_COSINE),
}


async def one_at_a_time(
    shards: Shards, collection: dict[str, int], queries: np.ndarray, mode: pb.Mode, weak: float | None
) -> Measured:
    async def one(q: np.ndarray) -> tuple[str, str, float]:
        found = await shards.search(ShardSearch(data.TENANT, collection, q, 1, -1.0, mode, 0, weak))
        return found.hits[0].person_id, found.hits[0].face_id, found.hits[0].cosine

    await one(queries[0])
    looks = second_looks()
    latencies, best, cosines = [], [], []
    started = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        person, face, cosine = await one(q)
        latencies.append((time.perf_counter() - t) * 1e3)
        best.append((person, face))
        cosines.append(cosine)
    seconds = time.perf_counter() - started
    return Measured(np.array(latencies), seconds, best, cosines, (second_looks() - looks) / len(queries))


def second_looks() -> float:
    """FAST searches that looked again, so far (the gateway's counter, in this process)."""
    return REGISTRY.get_sample_value("facesearch_gateway_fast_second_looks_total") or 0.0


STRANGER = "lfw, stranger"  # a query whose person is not enrolled


def query_kinds(query_count: int, real_names: list[str]) -> list[str]:
    """What each of face_like's queries is: the synthetic ones first (a mate
    enrolled), then the first photo of each of the first lfw names, up to
    half the queries (a mate enrolled where the name has another photo)."""
    photos = Counter(real_names)
    real = list(dict.fromkeys(real_names))[: query_count // 2]
    return ["synthetic, mate enrolled"] * (query_count - len(real)) + [
        "lfw, mate enrolled" if photos[name] > 1 else STRANGER for name in real
    ]


def same_best(measured: Measured, accurate: Measured) -> float:
    """The share of queries whose best person is ACCURATE's."""
    return float(np.mean([a[0] == b[0] for a, b in zip(measured.best, accurate.best, strict=True)]))


def answered_alike(accurate: Measured, fast: Measured, faces: int) -> list[bool]:
    """Whether FAST's answer is ACCURATE's at every min_score the API takes:
    the same best person, or none, because exact search's best scores below
    the lowest min_score at this many faces (1:N scores fall with the faces
    searched; the data are MobileFaceNet's lfw-dev faces and their like)."""
    calibration = MOBILEFACENET_CASIA.calibration
    return [
        a[0] == f[0] or calibration.score(cosine, faces) < MIN_SCORE_RANGE[0]
        for a, f, cosine in zip(accurate.best, fast.best, accurate.cosines, strict=True)
    ]


def misses(accurate: Measured, fast: Measured, kinds: list[str], faces: int) -> Table:
    """Each query whose best person FAST did not find: how close its own
    answer came, and what exact search's best scores at this many faces."""
    table = Table(title="queries where FAST's best person is not exact search's")
    for column in ("query", "kind", "exact best cosine", "FAST's best cosine", "short by", "exact best's 1:N score"):
        table.add_column(column, justify="right")
    calibration = MOBILEFACENET_CASIA.calibration
    for i, (a, f) in enumerate(zip(accurate.best, fast.best, strict=True)):
        if a[0] != f[0]:
            exact, found = accurate.cosines[i], fast.cosines[i]
            score = calibration.score(exact, faces)
            table.add_row(str(i), kinds[i], f"{exact:.4f}", f"{found:.4f}", f"{exact - found:.4f}", f"{score:.4f}")
    return table


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def main(
    faces: int = 10_000_000,
    dim: int = 128,
    shard_count: int = 4,
    query_count: int = 200,
    real_faces: Path | None = None,
) -> None:
    rng = np.random.default_rng(0)
    real, real_names = data.lfw_embeddings(real_faces, dim)
    started = time.perf_counter()
    vectors, persons, queries = data.face_like(faces, real, real_names, query_count, rng)
    console.print(f"{faces:,} face-like vectors x {dim}-d made in {time.perf_counter() - started:.1f} s")
    vector_bytes = vectors.nbytes
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), {"INDEXER_ANN_MIN_FACES": "20000"}, indexer_count=INDICES, replicas=1)
        addresses = stack.indexers.addresses
        names = stack.indexers.names()
        collection = name_split_evenly(addresses, shard_count)
        keys = shard_keys(collection, shard_count)
        holder = {k: holders(addresses, data.TENANT, k, 1)[0] for k in keys}
        placement = Table(title=f"collection {collection!r}: S = {shard_count}, R = 1, on {INDICES} indexers")
        for column in ("shard", "held by", "address", "faces"):
            placement.add_column(column, justify="left" if column != "faces" else "right")
        with stack.running(only=["postgres"]):
            url = stack.env()["DATABASE_URL"]
            postgres.wait_ready(url)
            asyncio.run(migrate(url))
            idle = idle_memory(stack, names)
            load_s = data.bulk_load(url, vectors, persons, collection, shard_count)
            console.print(f"bulk load {load_s:.1f} s")
            # Only the queries are needed from here: the indexers get the memory.
            del vectors, persons
            gc.collect()
            console.print(f"this process holds {gb(memory_of(os.getpid())['VmRSS'])} with the vectors freed")
            vacuum_s = asyncio.run(vacuum_analyze(url))
            console.print(f"VACUUM ANALYZE {vacuum_s:.1f} s")
            db = asyncio.run(sizes(url))
            started = time.perf_counter()
            stack.start(only=names)
            start = wait_serving(stack, names, keys, holder, started)
            memory = {n: memory_of(stack.pid(n)) for n in names}
            for k in keys:
                placement.add_row(k, names[holder[k]], addresses[holder[k]], f"{start.faces[k]:,}")

            async def measure() -> dict[str, Measured]:
                shards = Shards.connect(addresses, 1, 300)  # grpc.aio channels need the loop
                try:
                    return {
                        label: await one_at_a_time(shards, {collection: shard_count}, queries, mode, weak)
                        for label, (mode, weak) in MODES.items()
                    }
                finally:
                    await shards.close()

            measured = asyncio.run(measure())
            after = {n: memory_of(stack.pid(n)) for n in names}

    console.print(placement)
    per = Table(title="each indexer, from its start")
    for column in (
        "indexer",
        "shards",
        "faces",
        "serving ACCURATE after",
        "all its shards FAST after",
        "VmRSS idle",
        "VmRSS serving ACCURATE",
        "VmRSS, FAST built",
        "VmRSS after queries",
        "VmHWM",
    ):
        per.add_column(column, justify="left" if column in ("indexer", "shards") else "right")
    for i, n in enumerate(names):
        held = [k for k in keys if holder[k] == i]
        per.add_row(
            n,
            ", ".join(k.partition("#")[2] or k for k in held),
            f"{sum(start.faces[k] for k in held):,}",
            f"{start.accurate_s[n]:.1f} s",
            f"{max(start.fast_s[k] for k in held):.1f} s" if held else "-",
            gb(idle[n]),
            gb(start.rss_accurate[n]),
            gb(memory[n]["VmRSS"]),
            gb(after[n]["VmRSS"]),
            gb(after[n]["VmHWM"]),
        )
    console.print(per)

    accurate, fast, one_look = measured["ACCURATE"], measured["FAST"], measured["FAST, one look (before)"]
    agree = [a[0] == b[0] for a, b in zip(fast.best, accurate.best, strict=True)]
    alike = answered_alike(accurate, fast, faces)
    kinds = query_kinds(query_count, real_names)
    rates = Table(title=f"{query_count} queries one at a time, top_k 1, through the shard fan-out")
    for column in ("mode", "p50 ms", "p99 ms", "qps", "same best person as ACCURATE", "same best face"):
        rates.add_column(column, justify="left" if column == "mode" else "right")
    for label, m in measured.items():
        person = same_best(m, accurate)
        face = np.mean([a == b for a, b in zip(m.best, accurate.best, strict=True)])
        rates.add_row(label, f"{m.pct(50):.2f}", f"{m.pct(99):.2f}", f"{m.qps:.1f}", f"{person:.3f}", f"{face:.3f}")
    console.print(rates)

    base = sum(idle.values())
    rss = sum(m["VmRSS"] for m in memory.values())
    hwm = sum(m["VmHWM"] for m in after.values())
    summary = Table(title=f"{faces:,} faces x {dim}-d, S = {shard_count} on {INDICES} indexers: the figures")
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    for figure, value in (
        ("vectors (float32)", gb(vector_bytes)),
        ("bulk load into PostgreSQL (COPY)", f"{load_s:.1f} s"),
        ("VACUUM ANALYZE after it", f"{vacuum_s:.1f} s"),
        ("indexers started -> every indexer serving ACCURATE", f"{start.all_accurate_s:.1f} s"),
        ("indexers started -> every shard serving FAST", f"{start.all_fast_s:.1f} s"),
        ("shard loads that timed out and began again", f"{sum(start.load_timeouts.values())}"),
        ("indexers' VmRSS idle, no faces (sum)", gb(base)),
        ("indexers' VmRSS, FAST built (sum)", gb(rss)),
        ("indexers' VmHWM (sum)", gb(hwm)),
        (
            "indexers' VmRSS / VmHWM per face, idle taken off",
            f"{(rss - base) / faces:.0f} / {(hwm - base) / faces:.0f} B",
        ),
        (
            "machine's memory in use at most while they started",
            f"{(total_memory() - start.min_available) / GiB:.1f} GiB",
        ),
        ("PostgreSQL database", gb(db["database"])),
        ("faces table (heap + indexes + TOAST)", gb(db["faces"])),
        ("  heap / indexes / TOAST", f"{gb(db['heap'])} / {gb(db['indexes'])} / {gb(db['toast'])}"),
        (
            "  the same, a face",
            f"{db['heap'] / faces:.0f} / {db['indexes'] / faces:.0f} / {db['toast'] / faces:.0f} B",
        ),
        ("ACCURATE p50 / p99", f"{accurate.pct(50):.1f} / {accurate.pct(99):.1f} ms"),
        ("FAST p50 / p99", f"{fast.pct(50):.2f} / {fast.pct(99):.2f} ms"),
        ("ACCURATE / FAST qps", f"{accurate.qps:.1f} / {fast.qps:.1f}"),
        (
            "FAST same best person / face as ACCURATE",
            f"{np.mean(agree):.3f} / {np.mean([a == b for a, b in zip(fast.best, accurate.best, strict=True)]):.3f}",
        ),
        (f"FAST's answer ACCURATE's at every min_score from {MIN_SCORE_RANGE[0]}", f"{np.mean(alike):.3f}"),
        ("FAST searches that took a second look (weak best)", f"{fast.second_looks:.3f}"),
        (
            "FAST with one look (before): p50 / p99, same best person",
            f"{one_look.pct(50):.2f} / {one_look.pct(99):.2f} ms, {same_best(one_look, accurate):.3f}",
        ),
    ):
        summary.add_row(figure, value)
    console.print(summary)
    console.print(at_512(faces, dim, base, rss, hwm, db, start.min_available))
    console.print(misses(accurate, fast, kinds, faces))
    # Last, one line for scripts that compare runs.
    mated = np.mean([ok for ok, kind in zip(agree, kinds, strict=True) if kind != STRANGER])
    print(
        json.dumps(
            {
                "faces": faces,
                "dim": dim,
                "shards": shard_count,
                "fast_same_best": round(float(np.mean(agree)), 4),
                "fast_same_best_mate_enrolled": round(float(mated), 4),
                "fast_same_answer": round(float(np.mean(alike)), 4),
                "fast_p50_ms": round(fast.pct(50), 3),
                "fast_p99_ms": round(fast.pct(99), 3),
                "fast_second_looks": round(fast.second_looks, 4),
                "fast_one_look_same_best": round(same_best(one_look, accurate), 4),
                "fast_one_look_p50_ms": round(one_look.pct(50), 3),
                "accurate_p50_ms": round(accurate.pct(50), 3),
                "indexer_rss_bytes_per_face": round((rss - base) / faces, 1),
                "indexer_hwm_bytes_per_face": round((hwm - base) / faces, 1),
                "bulk_load_s": round(load_s, 1),
                "accurate_ready_s": round(start.all_accurate_s, 1),
                "fast_ready_s": round(start.all_fast_s, 1),
            }
        )
    )


def at_512(faces: int, dim: int, base: int, rss: int, hwm: int, db: dict[str, int], min_available: int) -> str:
    """What this machine allowed, and what a 512-d collection of `faces`
    faces needs, projected from this run. In the indexers, what a face costs
    besides its vector and its fast-scan codes (ids, the table's columns) is
    the same at any dimension; the vector and the codes grow with it, and so
    does everything the peak holds beyond that (the fetched batches, the
    FAST build's copy). In PostgreSQL the vector moves from the row to TOAST."""
    machine = total_memory()
    used = machine - min_available
    vector, codes = 4 * dim, subquantizers(dim) // 2
    steady, peak = (rss - base) / faces, (hwm - base) / faces  # bytes a face in the indexers
    other = steady - vector - codes
    grow = 512 / dim
    steady512 = other + 4 * 512 + subquantizers(512) // 2
    peak512 = other + (peak - other) * grow
    used512 = used + (peak512 - peak) * faces
    if db["toast"] > 4 * dim * faces / 2:  # already out of the rows
        pg512 = db["faces"] * (4 * 512 + 4 + TOAST_PER_FACE - 2048) / (4 * dim + 4 + TOAST_PER_FACE - 2048)
    else:
        pg512 = db["faces"] + (TOAST_POINTER + TOAST_PER_FACE - 4 * dim - 4) * faces
    verdict = "fits in" if used512 < machine else "does not fit in"
    return (
        f"This machine ({machine / GiB:.1f} GiB) held {faces:,} x {dim}-d with the indexers at {gb(rss)} resident "
        f"({steady:.0f} B a face over their idle {gb(base)}: {vector} of vector, {codes} of codes, {other:.0f} "
        f"of ids and columns), {gb(hwm)} at their peak, and {used / GiB:.1f} GiB in use at most; PostgreSQL keeps "
        f"it in {gb(db['faces'])} on disk. At 512-d the same {faces:,} faces are {gb(4 * 512 * faces)} of vectors: "
        f"PostgreSQL about {gb(pg512)} on disk (TOASTed), the indexers about {gb(steady512 * faces + base)} "
        f"resident ({steady512:.0f} B a face) and {gb(peak512 * faces + base)} at their peak while loading and "
        f"building, so about {used512 / GiB:.1f} GiB in use at most: it {verdict} this machine's "
        f"{machine / GiB:.1f} GiB."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=10_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real-faces", type=Path, help=".npz of the lfw-dev embeddings: read if present, else written")
    args = parser.parse_args()
    main(args.faces, args.dim, args.shards, args.queries, args.real_faces)
