"""The indexer process on each device: writes, ACCURATE and FAST searches,
real deletes, and recovery after SIGKILL, over its gRPC API."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from devkit.stack import Stack
from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc

TENANT, COLLECTION, DIM = "t", "c" * 24, 32
PERSONS, PER_PERSON = 300, 2


def started(stack: Stack) -> pb_grpc.IndexerStub:
    stack.start(only=["indexer"])
    stub = pb_grpc.IndexerStub(grpc.insecure_channel(f"127.0.0.1:{stack.ports.indexer}"))
    deadline = time.monotonic() + 60
    while True:
        try:
            stub.ShardStats(pb.Ref(tenant=TENANT, id=COLLECTION), timeout=2)
            return stub
        except grpc.RpcError:
            assert time.monotonic() < deadline, stack.log_tail("indexer")
            time.sleep(0.2)


def best(stub, queries: np.ndarray, mode) -> list[str]:
    answer = stub.Search(
        pb.SearchRequest(
            tenant=TENANT,
            collections=[COLLECTION],
            dim=DIM,
            queries=queries.astype("<f4").tobytes(),
            top_k=3,
            min_cosine=-1,
            mode=mode,
        ),
        timeout=30,
    )
    return [r.hits[0].person_id for r in answer.results]


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
        stub = started(stack)
        stub.PutCollection(pb.PutCollectionRequest(tenant=TENANT, id=COLLECTION, name="c", data=b"{}"), timeout=10)
        for i, person in enumerate(persons):
            stub.PutPerson(
                pb.PutPersonRequest(
                    tenant=TENANT,
                    id=person,
                    data=b"{}",
                    set_faces=True,
                    dim=DIM,
                    set_collections=True,
                    collections=[COLLECTION],
                    faces=[
                        pb.Face(face_id=f"{person}-{j}", vector=faces[i * PER_PERSON + j].astype("<f4").tobytes())
                        for j in range(PER_PERSON)
                    ],
                ),
                timeout=10,
            )
        while not stub.ShardStats(pb.Ref(tenant=TENANT, id=COLLECTION), timeout=5).ann:
            time.sleep(0.2)
        assert best(stub, probes, pb.ACCURATE) == persons
        assert np.mean(np.array(best(stub, probes, pb.FAST)) == np.array(persons)) >= 0.99
        # Searches in flight together (answered by one FAISS call) get what they get alone.
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda i: best(stub, probes[i : i + 1], pb.ACCURATE)[0], range(96)))
        assert together == persons[:96]

        gone = persons[:50]
        for person in gone:
            stub.DeletePerson(pb.DeletePersonRequest(tenant=TENANT, id=person), timeout=10)
        for mode in (pb.ACCURATE, pb.FAST):
            assert set(best(stub, probes[:50], mode)).isdisjoint(gone)
        assert best(stub, probes[50:], pb.ACCURATE) == persons[50:]

        stack.stop_one("indexer", signal.SIGKILL)
        stub = started(stack)
        stats = stub.ShardStats(pb.Ref(tenant=TENANT, id=COLLECTION), timeout=5)
        assert (stats.faces, stats.persons) == ((PERSONS - 50) * PER_PERSON, PERSONS - 50)
        assert set(best(stub, probes[:50], pb.ACCURATE)).isdisjoint(gone)
        assert best(stub, probes[50:], pb.ACCURATE) == persons[50:]
        assert f'"device": "{device}"' in stack.log_tail("indexer", lines=200)
    finally:
        stack.stop()
