"""Two indexer processes behind one gateway (INDEXER_ADDRESSES), through
Envoy's REST API: collections, writes and searches land on the indexer the
collection's id names, and stopping one indexer leaves the other's
collections answering."""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from devkit import lfw
from devkit.client import Rest
from devkit.stack import Stack
from devkit.stackenv import free_port
from facesearch.indexer.v1 import indexer_pb2, indexer_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
SECOND = "indexer-1"


@pytest.fixture(scope="module")
def placed(tmp_path_factory):
    root = tmp_path_factory.mktemp("placed")
    second_port = free_port()
    stack = Stack(root, lfw.evaluation_model())
    stack.extra_env["INDEXER_ADDRESSES"] = f"127.0.0.1:{stack.ports.indexer},127.0.0.1:{second_port}"
    second_env = {"INDEXER_ADDRESS": f"127.0.0.1:{second_port}", "FACESEARCH_DATA_DIR": str(root / SECOND)}
    with stack.running(extra={SECOND: ("python -m indexer.server", second_env)}):
        yield stack, [stack.ports.indexer, second_port], second_env


def indexer(port: int) -> indexer_pb2_grpc.IndexerStub:
    return indexer_pb2_grpc.IndexerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


def held_collections(port: int, ids: list[str]) -> list[str]:
    return [
        r.id
        for r in indexer(port).GetCollections(indexer_pb2.GetRequest(tenant="default", ids=ids), timeout=10).records
    ]


def faces(port: int, collection: str) -> int:
    return indexer(port).ShardStats(indexer_pb2.Ref(tenant="default", id=collection), timeout=10).faces


def crop(identity: int, photo: int) -> str:
    return lfw.b64(lfw.crop(lfw.photos(lfw.identities()[identity])[photo]))


def wait_until_answered(rest: Rest, path: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while rest.http.get(path).status_code != 200:
        assert time.monotonic() < deadline, f"{path} not answered again in {timeout_s} s"
        time.sleep(0.2)


def test_collections_writes_and_searches_land_on_their_owner(placed):
    stack, ports, second_env = placed
    rest = Rest(stack.rest, stack.token())
    by_owner: dict[int, str] = {}
    for n in range(40):  # new collections go to a random indexer
        id = rest.collection(f"placed-{n}")
        by_owner.setdefault(int(id[:2], 16), id)
        if len(by_owner) == 2:
            break
    a, b = by_owner[0], by_owner[1]
    assert held_collections(ports[0], [a, b]) == [a]
    assert held_collections(ports[1], [a, b]) == [b]

    name0, name1 = lfw.identities()[0], lfw.identities()[1]
    both = rest.enroll(name0, lfw.photos(name0)[0], [a, b])
    only_b = rest.enroll(name1, lfw.photos(name1)[0], [b])
    assert rest.ok(f"/persons/{both['id']}", method="GET")["data"]["collections"] == [a, b]
    assert (faces(ports[0], a), faces(ports[1], b)) == (1, 2)

    def top(collection: str, identity: int):
        return rest.search([crop(identity, 1)], collection_id=collection)

    assert [p["id"] for p in top(b, 1).json()["data"]][:1] == [only_b["id"]]
    assert [p["id"] for p in top(a, 0).json()["data"]][:1] == [both["id"]]

    # With b's owner stopped, a's searches and writes still land on a's owner;
    # b's answer 503 rather than a partial answer.
    stack.stop_one(SECOND, signal.SIGTERM)
    try:
        response = top(a, 0)
        assert response.status_code == 200, response.text
        assert [p["id"] for p in response.json()["data"]][:1] == [both["id"]]
        name2 = lfw.identities()[2]
        assert rest.enroll(name2, lfw.photos(name2)[0], [a])["collections"] == [a]
        down = top(b, 1)
        assert (down.status_code, down.json()["code"]) == (503, "UNAVAILABLE")
    finally:
        stack.start_one(SECOND, "python -m indexer.server", {**stack.env(), **second_env})
    assert faces(ports[0], a) == 2
    wait_until_answered(rest, f"/persons/{both['id']}")

    # Moving a person between owners: out of b, into a only.
    moved = rest.ok(f"/persons/{only_b['id']}", {"collections": [a]}, method="PUT")["data"]
    assert moved["collections"] == [a]
    assert (faces(ports[0], a), faces(ports[1], b)) == (3, 1)
    assert [p["id"] for p in top(a, 1).json()["data"]][:1] == [only_b["id"]]

    rest.ok(f"/persons/{both['id']}", method="DELETE")
    assert (faces(ports[0], a), faces(ports[1], b)) == (2, 0)
    listed = rest.ok("/persons", method="GET", limit=50)
    assert both["id"] not in {p["id"] for p in listed["data"]}
    assert listed["pagination"]["total"] == 2
