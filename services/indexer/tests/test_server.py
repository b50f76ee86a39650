"""The indexer process on each device, following a real PostgreSQL: writes
committed there become searchable (ACCURATE and FAST), deletes leave, and
after SIGKILL it loads everything again, over its gRPC API."""

from __future__ import annotations

import asyncio
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devkit import postgres
from devkit.client import scrape
from devkit.stack import Stack
from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from facesearch_common import database

TENANT, COLLECTION, DIM = "t", "c" * 24, 32
PERSONS, PER_PERSON = 300, 2


def started(stack: Stack) -> pb_grpc.IndexerStub:
    stack.start(only=["indexer"])
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.ports.indexer}")
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 60
    while True:
        try:
            if (
                health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                == health_pb2.HealthCheckResponse.SERVING
            ):
                return pb_grpc.IndexerStub(channel)
        except grpc.RpcError:
            pass
        assert time.monotonic() < deadline, stack.log_tail("indexer")
        time.sleep(0.2)


def committed(url: str, statements: list[tuple[str, tuple]], persons: list[str]) -> int:
    """Runs `statements` in one transaction that logs `persons` as changed; returns its log position."""

    async def run() -> int:
        db = await asyncpg.connect(url)
        try:
            await database.migrate(db)
            async with db.transaction():
                for statement, args in statements:
                    await db.execute(statement, *args)
                seq = 0
                for person in persons:
                    seq = await database.log_changes(db, TENANT, [COLLECTION], person)
                return seq
        finally:
            await db.close()

    return asyncio.run(run())


def best(stub, queries: np.ndarray, mode, min_seq: int = 0) -> list[str]:
    return [r.hits[0].person_id for r in search(stub, queries, mode, min_seq).results]


def search(stub, queries: np.ndarray, mode, min_seq: int = 0) -> pb.SearchResponse:
    return stub.Search(
        pb.SearchRequest(
            tenant=TENANT,
            shards=[COLLECTION],
            dim=DIM,
            queries=queries.astype("<f4").tobytes(),
            top_k=3,
            min_cosine=-1,
            mode=mode,
            min_seq=min_seq,
        ),
        timeout=30,
    )


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda:0", marks=pytest.mark.gpu)])
def test_writes_searches_deletes_and_a_kill_on_each_device(tmp_path, device):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((PERSONS, DIM))
    faces = np.repeat(centres, PER_PERSON, axis=0) + 0.3 * rng.standard_normal((PERSONS * PER_PERSON, DIM))
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    probes = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    persons = [f"p{i:03d}" for i in range(PERSONS)]

    stack = Stack(tmp_path, {"INDEXER_DEVICE": device, "INDEXER_ANN_MIN_FACES": "200", "INDEXER_NPROBE": "16"})
    try:
        stack.start(only=["postgres"])
        url = stack.env()["DATABASE_URL"]
        postgres.wait_ready(url)
        committed(url, [], [])  # the schema, before the indexer reads it
        stub = started(stack)
        rows: list[tuple[str, tuple]] = [
            ("INSERT INTO collections (tenant, id, name, data) VALUES ($1, $2, 'c', '{}')", (TENANT, COLLECTION))
        ]
        for i, person in enumerate(persons):
            rows.append(("INSERT INTO persons (tenant, id, data, version) VALUES ($1, $2, '{}', 0)", (TENANT, person)))
            rows.append(("INSERT INTO memberships VALUES ($1, $2, $3)", (TENANT, COLLECTION, person)))
            for j in range(PER_PERSON):
                vector = faces[i * PER_PERSON + j].astype("<f4").tobytes()
                rows.append(("INSERT INTO faces VALUES ($1, $2, $3, $4)", (TENANT, person, f"{person}-{j}", vector)))
        seq = committed(url, rows, persons)
        # The first search names the write: it is answered from at least there.
        assert best(stub, probes, pb.ACCURATE, min_seq=seq) == persons
        while not stub.ShardStats(pb.Ref(tenant=TENANT, id=COLLECTION), timeout=5).ann:
            time.sleep(0.2)
        assert np.mean(np.array(best(stub, probes, pb.FAST)) == np.array(persons)) >= 0.99
        # FAST's second look (the gateway's, for weak matches) is as right, and both say they are approximate.
        second = search(stub, probes, pb.FAST_SECOND_LOOK)
        assert np.mean(np.array([r.hits[0].person_id for r in second.results]) == np.array(persons)) >= 0.99
        assert second.approximate and not search(stub, probes[:1], pb.ACCURATE).approximate
        # Searches in flight together (answered by one FAISS call) get what they get alone.
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda i: best(stub, probes[i : i + 1], pb.ACCURATE)[0], range(96)))
        assert together == persons[:96]

        gone = persons[:50]
        seq = committed(url, [("DELETE FROM persons WHERE id = ANY($1::text[])", (gone,))], gone)
        for mode in (pb.ACCURATE, pb.FAST):
            assert set(best(stub, probes[:50], mode, min_seq=seq)).isdisjoint(gone)
        assert best(stub, probes[50:], pb.ACCURATE) == persons[50:]
        with pytest.raises(grpc.RpcError) as behind:
            best(stub, probes[:1], pb.ACCURATE, min_seq=seq + 10)
        assert behind.value.code() == grpc.StatusCode.UNAVAILABLE
        shard = (("shard", COLLECTION), ("tenant", TENANT))
        seen = scrape(stack.ports.indexer_metrics)
        assert seen[("facesearch_indexer_shard_faces", shard)] == (PERSONS - 50) * PER_PERSON
        assert seen[("facesearch_indexer_shard_persons", shard)] == PERSONS - 50
        assert seen[("facesearch_indexer_fast_index_ready", shard)] == 1
        assert seen[("facesearch_indexer_fast_index_build_seconds_count", ())] >= 1
        assert (
            seen[("facesearch_indexer_change_log_applied", ())],
            seen[("facesearch_indexer_change_log_lag", ())],
        ) == (
            seq,
            0,
        )
        assert seen[("facesearch_indexer_searches_total", (("code", "OK"), ("mode", "FAST")))] == 2
        assert seen[("facesearch_indexer_searches_total", (("code", "UNAVAILABLE"), ("mode", "ACCURATE")))] == 1

        stack.stop_one("indexer", signal.SIGKILL)
        stub = started(stack)
        stats = stub.ShardStats(pb.Ref(tenant=TENANT, id=COLLECTION), timeout=5)
        assert (stats.faces, stats.persons) == ((PERSONS - 50) * PER_PERSON, PERSONS - 50)
        assert set(best(stub, probes[:50], pb.ACCURATE)).isdisjoint(gone)
        assert best(stub, probes[50:], pb.ACCURATE) == persons[50:]
        assert f'"device": "{device}"' in stack.log_tail("indexer", lines=200)
    finally:
        stack.stop()
