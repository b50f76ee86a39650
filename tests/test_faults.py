"""Faults under a running load of search/crops (and enrollments where writes
matter): kill the embedder, restart redis-server, kill and restart the
indexer, restart PostgreSQL, restart Envoy, kill the gateway that takes the
calls. Each test prints requests sent, failed and writes lost (always zero).
With replicated indexers, see test_replicas.py."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from devkit import lfw
from devkit.client import API, Rest, scrape
from embedder import launcher

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


class Load:
    """`workers` threads searching one crop as fast as answers come."""

    def __init__(self, stack, collection: str, workers: int = 4):
        self.url = f"{stack.rest}{API}/search/crops"
        self.headers = {"Authorization": f"Bearer {stack.token()}"}
        self.body = {
            "images": [lfw.b64(lfw.crop(lfw.photos(lfw.identities()[0])[1]))],
            "min_score": 0.6,
            "search_mode": "ACCURATE",
            "collection_id": collection,
        }
        self.log: list[tuple[float, int | str, float, str]] = []  # (start, status, seconds, error code)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        with httpx.Client(timeout=30, headers=self.headers) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = http.post(self.url, json=self.body)
                    status, code = r.status_code, (r.json().get("code", "") if r.status_code != 200 else "")
                except httpx.HTTPError as exc:
                    status, code = type(exc).__name__, ""
                self.log.append((started, status, time.monotonic() - started, code))
                if status != 200:
                    time.sleep(0.05)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def ok_since(self, moment: float) -> bool:
        after = [s for start, s, _, _ in self.log if start >= moment]
        return len(after) >= 3 and all(s == 200 for s in after[-3:])

    def wait_ok(self, timeout_s: float) -> float:
        moment = time.monotonic()
        while not self.ok_since(moment):
            assert time.monotonic() - moment < timeout_s, f"no recovery in {timeout_s} s: {self.counts()}"
            time.sleep(0.2)
        return time.monotonic() - moment

    def counts(self) -> Counter:
        return Counter(status for _, status, _, _ in self.log)

    def report(self, what: str, lost: int = 0) -> None:
        counts = self.counts()
        failed = sum(n for s, n in counts.items() if s != 200)
        print(f"\n{what}: {sum(counts.values())} requests sent, {failed} failed {dict(counts)}, {lost} writes lost")


@pytest.fixture(scope="module")
def collection(rest) -> str:
    collection = rest.collection("faults")
    name = lfw.identities()[0]
    rest.enroll(name, lfw.photos(name)[0], [collection])
    return collection


def test_embedder_killed_answers_503_fast_and_recovers_by_itself(stack, collection):
    with Load(stack, collection) as load:
        pid = stack.pid("embedder")
        stack.stop_one("embedder", signal.SIGKILL)
        # Once supervisord says it is gone, not before: on a slow, loaded
        # host the kill itself can land a second after it was asked for.
        killed = time.monotonic()
        time.sleep(4)
        during = [(s, secs, code) for start, s, secs, code in load.log if start >= killed + 0.5]
        stack.start(only=["embedder"])
        recovered_in = load.wait_ok(timeout_s=180)
        load.report(f"embedder killed, back in {recovered_in:.1f} s")
    assert during, "no requests while the embedder was down"
    assert {(s, code) for s, _, code in during} == {(503, "UNAVAILABLE")}, during[:5]
    assert max(secs for _, secs, _ in during) < 2.0, "a 503 should come at once, not after a timeout"
    # The killed server's stubs could not unlink their shared memory, and
    # outlived it holding their model; the restarted embedder cleared both.
    assert not list(Path("/dev/shm").glob(f"facesearch_{pid}_*"))
    assert not [stub for stub, region in launcher.stubs() if region.startswith(f"{launcher.SHM_PREFIX}{pid}_")]


def test_redis_restarted_no_errors_after_and_nothing_lost(stack, rest, collection):
    before = rest.ok("/persons", method="GET", collection=collection)["pagination"]["total"]
    with Load(stack, collection) as load:
        stack.restart("redis")
        time.sleep(3)
        back = time.monotonic()
        time.sleep(3)
        load.report("redis-server restarted")
        after = [s for start, s, _, _ in load.log if start >= back]
    # Redis is a cache: answers come from the catalog while it is away.
    assert after and all(s == 200 for s in after), Counter(after)
    assert rest.ok("/persons", method="GET", collection=collection)["pagination"]["total"] == before


def test_indexer_killed_under_load_loses_no_acknowledged_write(stack, collection):
    writer = Rest(stack.rest, stack.token())
    acknowledged: list[str] = []
    stop = threading.Event()

    def enroll() -> None:
        for identity in range(40, 80):
            if stop.is_set():
                return
            name = lfw.identities()[identity]
            try:
                r = writer.post(
                    "/persons",
                    {"name": name, "images": [lfw.b64(lfw.crop(lfw.photos(name)[0]))], "collections": [collection]},
                )
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                acknowledged.append(r.json()["data"]["id"])

    with Load(stack, collection) as load:
        thread = threading.Thread(target=enroll, daemon=True)
        thread.start()
        time.sleep(3)
        stack.stop_one("indexer", signal.SIGKILL)
        time.sleep(1)
        stack.start(only=["indexer"])
        load.wait_ok(timeout_s=60)
        stop.set()
        thread.join(timeout=120)
        lost = [p for p in acknowledged if writer.http.get(f"/persons/{p}").status_code != 200]
        load.report(f"indexer SIGKILLed under load ({len(acknowledged)} writes acknowledged)", len(lost))
    assert acknowledged and not lost


def test_postgres_restarted_searches_keep_answering_and_writes_get_503(stack, collection):
    writer = Rest(stack.rest, stack.token())
    acknowledged: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()

    def enroll() -> None:
        # Writes go on until the outage is over: enrollment is fast enough to
        # finish any fixed list before the kill lands.
        for identity in itertools.cycle(range(80, 120)):
            if stop.is_set():
                return
            name = lfw.identities()[identity]
            body = {"name": name, "images": [lfw.b64(lfw.crop(lfw.photos(name)[0]))], "collections": [collection]}
            r = writer.post("/persons", body)
            statuses.append(r.status_code)
            if r.status_code == 200:
                acknowledged.append(r.json()["data"]["id"])
            else:
                assert (r.status_code, r.json()["error"]) == (503, "database_unavailable"), r.text
                time.sleep(0.1)

    with Load(stack, collection) as load:
        thread = threading.Thread(target=enroll, daemon=True)
        thread.start()
        time.sleep(2)
        stack.stop_one("postgres", signal.SIGKILL)
        time.sleep(3)  # searches go on from the loaded shards and the cached persons
        stack.start(only=["postgres"])
        time.sleep(3)
        stop.set()
        thread.join(timeout=120)
    lost = [p for p in acknowledged if writer.http.get(f"/persons/{p}").status_code != 200]
    load.report(
        f"PostgreSQL SIGKILLed for 3 s ({len(acknowledged)} writes acknowledged, {statuses.count(503)} got 503)"
    )
    assert set(load.counts()) == {200}
    assert 503 in statuses and acknowledged and not lost


def test_envoy_restarted_serves_again(stack, collection):
    with Load(stack, collection) as load:
        stack.restart("envoy")
        recovered_in = load.wait_ok(timeout_s=60)
        load.report(f"Envoy restarted, serving again in {recovered_in:.1f} s")
    assert load.counts()[200] > 0


def searches_answered(stack, gateway: int) -> float:
    """SearchCrops calls the gateway has answered since it started."""
    key = ("facesearch_gateway_requests_total", (("code", "OK"), ("rpc", "SearchCrops")))
    return scrape(stack.gateways.metrics_ports[gateway]).get(key, 0.0)


def test_the_standby_gateway_answers_while_the_active_one_is_down(stack, collection):
    active, _ = stack.gateways.names()
    before = [searches_answered(stack, i) for i in (0, 1)]
    with Load(stack, collection) as load:
        time.sleep(2)
        during = [searches_answered(stack, i) for i in (0, 1)]
        stack.stop_one(active, signal.SIGKILL)  # and kept down
        time.sleep(4)
        down = searches_answered(stack, 1)
        stack.start_one(active)
        stack.running_pid(active)
        deadline = time.monotonic() + 30
        while True:  # until Envoy sends calls to it again (its counts start again from 0)
            try:
                if searches_answered(stack, 0) > 0:
                    break
            except httpx.HTTPError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "the active gateway took no call after it came back"
            time.sleep(0.5)
        back = searches_answered(stack, 1)
        time.sleep(2)
        load.report(f"{active} killed and started again")
    assert during[0] > before[0] and during[1] == before[1], "the standby took calls while the active one served"
    assert down > during[1], "the standby took no call while the active gateway was down"
    assert searches_answered(stack, 1) == back, "the standby kept taking calls once the active gateway was back"
    # Searches are reads: one the killed gateway had in hand is retried on the standby.
    assert set(load.counts()) == {200}, load.counts()
