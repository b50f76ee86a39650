"""SIGKILL the data path (PostgreSQL, the indexer and every gateway at once)
in the middle of a stream of enrollments and deletes sent through Envoy, at
several points, let the supervisor bring them back, and check that every
acknowledged write is there, every acknowledged delete is gone, and nothing
unacknowledged is half-there."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import pytest

from devkit import lfw
from facesearch.indexer.v1 import indexer_pb2, indexer_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
KILLS_AFTER = (8, 20, 32)  # acknowledged writes before each SIGKILL
IDENTITIES = range(150, 300)


class Writer(threading.Thread):
    """Creates a person per identity and deletes every third one, forever;
    keeps what was acknowledged (HTTP 200) apart from what was not."""

    def __init__(self, rest, collection: str):
        super().__init__(daemon=True)
        self.rest, self.collection = rest, collection
        self.created: dict[str, int] = {}  # acknowledged: person id -> identity
        self.deleted: set[str] = set()  # acknowledged deletes
        self.delete_unanswered: set[str] = set()  # deletes sent with no answer: they may have been made
        self.unanswered = 0  # writes with no answer, or 503/504
        self.refused = 0  # 4xx: refused, nothing stored
        self.acks = 0
        self.stop = threading.Event()

    def run(self) -> None:
        for n, identity in enumerate(IDENTITIES):
            if self.stop.is_set():
                return
            name = lfw.identities()[identity]
            body = {"name": name, "images": [lfw.b64(lfw.crop(lfw.photos(name)[0]))], "collections": [self.collection]}
            response = self._send("POST", "/persons", body)
            if response is not None and response.status_code == 200:
                self.created[response.json()["data"]["id"]] = identity
                self.acks += 1
            if n % 3 == 2:
                victim = next((p for p in self.created if p not in self.deleted), None)
                if victim is None:
                    continue
                r = self._send("DELETE", f"/persons/{victim}")
                if r is not None and r.status_code == 200:
                    self.deleted.add(victim)
                    self.acks += 1
                elif r is not None and r.status_code == 404 and victim in self.delete_unanswered:
                    # An earlier attempt's answer was lost to a kill, but the
                    # delete was made: the person is gone, as asked.
                    self.deleted.add(victim)
                elif r is None or r.status_code >= 500:
                    self.delete_unanswered.add(victim)

    def _send(self, method: str, path: str, body=None):
        try:
            response = self.rest.http.request(method, path, json=body, timeout=30)
        except Exception:
            response = None
        if response is not None and 400 <= response.status_code < 500:
            self.refused += 1
        elif response is None or response.status_code != 200:
            self.unanswered += 1
            assert response is None or response.status_code in (503, 504), response.text
            time.sleep(0.2)
        return response


def wait_answering(rest, collection: str, timeout_s: float = 60) -> float:
    """Seconds until the API searches again: PostgreSQL, the gateway and the
    indexer all back (a collection read alone does not reach the indexer)."""
    probe = lfw.b64(lfw.crop(lfw.photos(lfw.identities()[0])[0]))
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if rest.search([probe], collection_id=collection).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError("the API did not recover")


def test_sigkill_loses_nothing_acknowledged(stack, rest):
    collection = rest.collection("durability")
    writer = Writer(rest, collection)
    writer.start()
    for target in KILLS_AFTER:
        while writer.acks < target:
            assert writer.is_alive(), "the writer stopped"
            time.sleep(0.05)
        for name in ("postgres", "indexer", *stack.gateways.names()):
            stack.kill(name, signal.SIGKILL)  # supervisord restarts each
        recovered = wait_answering(rest, collection)
        print(f"\nSIGKILL after {writer.acks} acknowledged writes; answering again {recovered:.1f} s after")
    while writer.acks < KILLS_AFTER[-1] + 6 and writer.is_alive():
        time.sleep(0.05)
    writer.stop.set()
    writer.join(timeout=60)

    alive = {p for p in writer.created if p not in writer.deleted}
    listed = {p["id"]: p for p in rest.ok("/persons", method="GET", collection=collection, limit=100)["data"]}
    print(
        f"\nacknowledged: {len(writer.created)} creates, {len(writer.deleted)} deletes; "
        f"unanswered writes: {writer.unanswered}; refused: {writer.refused}; kills: {len(KILLS_AFTER)}"
    )
    assert writer.unanswered >= 1  # the kills did land in the middle of the stream
    assert alive <= set(listed), "an acknowledged enrollment was lost"
    assert not writer.deleted & set(listed), "an acknowledged delete came back"
    for person in writer.deleted:
        assert rest.http.get(f"/persons/{person}").status_code == 404
    # Whatever exists beyond the acknowledged is an unanswered create, whole:
    # its record, its thumbnail and its face in the index, or nothing at all.
    assert len(set(listed) - alive) <= writer.unanswered
    assert all(len(p["thumbnails"]) == 1 for p in listed.values())
    stub = indexer_pb2_grpc.IndexerStub(grpc.insecure_channel(f"127.0.0.1:{stack.ports.indexer}"))
    assert stub.ShardStats(indexer_pb2.Ref(tenant="default", id=collection), timeout=10).faces == len(listed)
    for person in sorted(alive)[:8]:
        name = lfw.identities()[writer.created[person]]
        answer = rest.search([lfw.b64(lfw.crop(lfw.photos(name)[1]))], collection_id=collection)
        assert answer.status_code == 200, answer.text
        found = answer.json()["data"]
        assert found and found[0]["id"] == person
