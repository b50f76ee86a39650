"""Two indexers, each collection in two shards and each shard held by both
(INDEXER_COUNT 2, INDEXER_REPLICAS 2, COLLECTION_SHARDS 2), through Envoy's
REST API: with searches and enrollments under way, one
indexer SIGKILLed, then the other frozen (SIGSTOP: a hung node, which answers
nothing and closes nothing): no search fails, enrollments are acknowledged,
and each indexer catches up by itself when it is back."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devkit import lfw
from devkit.client import Rest
from devkit.stack import Stack
from facesearch.indexer.v1 import indexer_pb2, indexer_pb2_grpc
from facesearch_common.placement import shard_keys

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
SHARDS = 2


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("replicated"),
        {**lfw.evaluation_model(), "COLLECTION_SHARDS": str(SHARDS)},
        indexer_count=2,
        replicas=2,
    )
    with stack.running():
        yield stack


class Traffic:
    """4 threads searching and 1 enrolling, each logging (status, seconds)."""

    def __init__(self, stack: Stack, collection: str, probes: list[str], photos: list):
        self.rest = [Rest(stack.rest, stack.token()) for _ in range(5)]
        self.collection, self.probes, self.photos = collection, probes, photos
        self.searches: list[tuple[int, float]] = []
        self.enrolled: list[str] = []  # acknowledged person ids
        self.refused: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.search, args=(r,), daemon=True) for r in self.rest[:4]]
        self.threads.append(threading.Thread(target=self.enroll, daemon=True))

    def search(self, rest: Rest) -> None:
        i = 0
        while not self.stop.is_set():
            started = time.monotonic()
            r = rest.search([self.probes[i % len(self.probes)]], collection_id=self.collection)
            self.searches.append((r.status_code, time.monotonic() - started))
            i += 1

    def enroll(self) -> None:
        for n, photo in enumerate(self.photos):
            if self.stop.is_set():
                return
            r = self.rest[4].post(
                "/persons", {"name": f"late {n}", "images": [photo], "collections": [self.collection]}
            )
            if r.status_code == 200:
                self.enrolled.append(r.json()["data"]["id"])
            elif r.status_code >= 500:
                assert r.status_code == 503, r.text  # refused clearly, never half-written
                self.refused.append(n)

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        time.sleep(2)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def serving(stack: Stack, name: str, timeout_s: float = 60) -> None:
    port = stack.indexers.ports[stack.indexers.names().index(name)]
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (
                health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                == health_pb2.HealthCheckResponse.SERVING
            ):
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{name} did not serve again")


def faces_held(stack: Stack, collection: str) -> list[int]:
    held = []
    for port in stack.indexers.ports:
        stub = indexer_pb2_grpc.IndexerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        shards = [
            stub.ShardStats(indexer_pb2.Ref(tenant="default", id=key), timeout=5)
            for key in shard_keys(collection, SHARDS)
        ]
        assert all(s.faces for s in shards)  # both shards have members
        held.append(sum(s.faces for s in shards))
    return held


def test_one_indexer_killed_or_frozen_fails_no_search(replicated):
    stack = replicated
    rest = Rest(stack.rest, stack.token())
    collection = rest.collection("replicated")
    names = lfw.identities()[:20]
    ids = {rest.enroll(n, lfw.photos(n)[0], [collection])["id"]: n for n in names}
    probes = [lfw.b64(lfw.crop(lfw.photos(n)[1])) for n in names]
    photos = [lfw.b64(lfw.crop(p, side=140)) for p in lfw.distractors()[:400]]
    assert faces_held(stack, collection) == [20, 20]

    with Traffic(stack, collection, probes, photos) as traffic:
        stack.stop_one("indexer-0", signal.SIGKILL)
        time.sleep(3)
        killed = len(traffic.searches)
        stack.start(only=["indexer-0"])
        serving(stack, "indexer-0")  # it loads from PostgreSQL and catches up by itself
        time.sleep(1)

        frozen_from = len(traffic.searches)
        stack.kill("indexer-1", signal.SIGSTOP)
        time.sleep(6)
        frozen_until = len(traffic.searches)
        stack.kill("indexer-1", signal.SIGCONT)
        time.sleep(2)

    statuses = [s for s, _ in traffic.searches]
    frozen = np.array([t for _, t in traffic.searches[frozen_from:frozen_until]])
    print(
        f"\n{len(statuses)} searches ({killed} before the restart), {statuses.count(200)} answered; "
        f"while frozen {len(frozen)}, p50 {np.percentile(frozen, 50) * 1e3:.0f} ms, "
        f"p99 {np.percentile(frozen, 99) * 1e3:.0f} ms; {len(traffic.enrolled)} enrollments acknowledged, "
        f"{len(traffic.refused)} refused"
    )
    assert statuses.count(200) == len(statuses) > 100
    assert len(frozen) > 20 and np.percentile(frozen, 99) < 2.0
    assert traffic.enrolled
    # Both caught up: every acknowledged person is held by both, and found.
    rest.search([probes[0]], collection_id=collection)  # reads its writes on whichever answers
    deadline = time.monotonic() + 30
    while faces_held(stack, collection) != [20 + len(traffic.enrolled)] * 2:
        assert time.monotonic() < deadline, faces_held(stack, collection)
        time.sleep(0.5)
    answer = rest.search([probes[3]], collection_id=collection).json()
    assert ids[answer["data"][0]["id"]] == names[3]
