"""One collection in S = 2 shards on 2 indexers against S = 1 on one, in the
same run: queries/s for ACCURATE and FAST, one query at a time and 16 in
flight, through the gateway's shard fan-out (gateway/shards.py) straight to
the indexers. The faces are bench/indexer.py's face-like 512-d vectors, the
same ones in both collections, bulk-loaded into PostgreSQL.

    python -m bench.shards [--faces 1000000] [--queries 200]

On this 2-core machine both indexers share the two cores that one indexer
uses alone, so the ratio measures the fan-out's cost more than its gain;
on machines with a core set per indexer, each shard is half the work.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
from rich.table import Table

from bench import indexer as data
from bench.common import console
from devkit import postgres
from devkit.stack import Stack
from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from facesearch_common.placement import holders, shard_keys
from gateway.indexer_client import ShardSearch
from gateway.shards import Shards

CLIENTS = 16


def names_apart(addresses: list[str]) -> tuple[str, str]:
    """A one-shard collection, and a two-shard one whose shards sit on different indexers."""
    two = next(
        f"two-{i}"
        for i in range(1000)
        if len({holders(addresses, data.TENANT, k, 1)[0] for k in shard_keys(f"two-{i}", 2)}) == 2
    )
    return "one", two


def wait_ready(addresses: list[str], keys: list[str]) -> None:
    """Until every shard is loaded and has its FAST index, wherever it is."""
    stubs = [pb_grpc.IndexerStub(grpc.insecure_channel(a)) for a in addresses]
    pending = set(keys)
    while pending:
        for key in list(pending):
            for stub in stubs:
                try:
                    if stub.ShardStats(pb.Ref(tenant=data.TENANT, id=key), timeout=5).ann:
                        pending.discard(key)
                except grpc.RpcError:
                    pass
        time.sleep(1)


async def rates(shards: Shards, collection: dict[str, int], queries: np.ndarray, mode: pb.Mode) -> tuple[float, float]:
    async def one(q: np.ndarray) -> None:
        await shards.search(ShardSearch(data.TENANT, collection, q, 1, -1.0, mode, 0, data.WEAK_COSINE))

    await one(queries[0])
    started = time.perf_counter()
    for q in queries:
        await one(q)
    single = len(queries) / (time.perf_counter() - started)
    gate = asyncio.Semaphore(CLIENTS)

    async def limited(q: np.ndarray) -> None:
        async with gate:
            await one(q)

    many = np.concatenate([queries] * 4)
    started = time.perf_counter()
    await asyncio.gather(*(limited(q) for q in many))
    return single, len(many) / (time.perf_counter() - started)


def main(faces: int = 1_000_000, query_count: int = 200) -> None:
    rng = np.random.default_rng(0)
    real, real_names = data.lfw_embeddings()
    vectors, persons, queries = data.face_like(faces, real, real_names, query_count, rng)
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), {"INDEXER_ANN_MIN_FACES": "20000"}, indexer_count=2, replicas=1)
        one, two = names_apart(stack.indexers.addresses)
        with stack.running(only=["postgres"]):
            url = stack.env()["DATABASE_URL"]
            postgres.wait_ready(url)
            loaded = [data.bulk_load(url, vectors, persons, one, 1), data.bulk_load(url, vectors, persons, two, 2)]
            started = time.perf_counter()
            stack.start(only=stack.indexers.names())
            wait_ready(stack.indexers.addresses, [one, *shard_keys(two, 2)])
            ready_s = time.perf_counter() - started
            table = Table(title=f"one collection of {faces:,} faces x 512-d: S = 2 on 2 indexers against S = 1 on one")
            for column in (
                "mode",
                "S = 1 qps",
                "S = 2 qps",
                "ratio",
                f"S = 1, {CLIENTS} in flight",
                f"S = 2, {CLIENTS} in flight",
                "ratio",
            ):
                table.add_column(column, justify="right")

            async def measure() -> None:
                shards = Shards.connect(stack.indexers.addresses, 1, 120)  # grpc.aio channels need the loop
                for label, mode in (("ACCURATE", pb.ACCURATE), ("FAST", pb.FAST)):
                    s1 = await rates(shards, {one: 1}, queries, mode)
                    s2 = await rates(shards, {two: 2}, queries, mode)
                    table.add_row(
                        label,
                        f"{s1[0]:.1f}",
                        f"{s2[0]:.1f}",
                        f"{s2[0] / s1[0]:.2f}x",
                        f"{s1[1]:.1f}",
                        f"{s2[1]:.1f}",
                        f"{s2[1] / s1[1]:.2f}x",
                    )
                await shards.close()

            asyncio.run(measure())
    console.print(table)
    console.print(
        f"bulk loads {loaded[0]:.1f} s and {loaded[1]:.1f} s; "
        f"both indexers serving with FAST indexes {ready_s:.1f} s after start"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    main(args.faces, args.queries)
