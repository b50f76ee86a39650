"""A chaos soak of the real stack under supervisord: mixed load (searches,
enrollments, updates, deletes through Envoy) while a loop SIGKILLs and
SIGSTOPs random processes of the stack, and the checks that matter to a
user:

- acknowledged writes lost: a person whose create was acknowledged (and
  whose delete was not) is missing at the end, or shows notes older than its
  last acknowledged update;
- deletes that come back: a person whose delete was acknowledged is found
  by a search sent after that, or exists at the end;
- stale answers: a search answers a person with notes older than an update
  acknowledged before the search was sent;
- failed requests, by the fault in force when each was sent, and each
  fault's time back to service (from the kill, or from SIGCONT, until a
  search answers again).

Used by `python -m bench.chaos` (minutes) and tests/test_chaos.py (one).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx

from devkit import lfw
from devkit.client import API, Rest
from devkit.stack import Stack

TARGETS = ("indexer-0", "indexer-1", "gateway-0", "gateway-1", "redis", "postgres", "embedder", "envoy")
KINDS = ("SIGKILL", "SIGSTOP")


@dataclass
class Fault:
    target: str
    kind: str
    started: float
    ended: float = 0.0  # SIGCONT for a stop, the kill itself otherwise
    back_s: float = float("nan")  # from `ended` until a search answered again
    restarted_s: float = float("nan")  # a kill: until supervisord ran the process again

    @property
    def name(self) -> str:
        return f"{self.kind} {self.target.split('-')[0]}"


@dataclass
class Report:
    seconds: float
    faults: list[Fault]
    requests: Counter  # (operation, "ok" | "failed" | "refused": a 4xx) -> count
    failed_by_fault: Counter  # fault name ("none" outside faults) -> failed requests
    sent_by_fault: Counter  # requests in flight during each kind of fault
    lost: list[str]
    resurrected: list[str]
    stale: list[str]

    def table(self) -> list[tuple[str, int, int, int, str, str]]:
        """(fault kind, faults, requests in flight, failed, time back to
        service p50 / max, time until the killed process ran again p50 / max)."""

        def spread(values: list[float]) -> str:
            values = sorted(v for v in values if v == v)  # NaN: not a kill
            return f"{values[len(values) // 2]:.1f} / {values[-1]:.1f} s" if values else "-"

        rows = []
        for name in sorted({f.name for f in self.faults} | {"none"}):
            faults = [f for f in self.faults if f.name == name]
            rows.append(
                (
                    name,
                    len(faults),
                    self.sent_by_fault[name],
                    self.failed_by_fault[name],
                    spread([f.back_s for f in faults]),
                    spread([f.restarted_s for f in faults]),
                )
            )
        return rows


@dataclass
class Ledger:
    """What the writers had acknowledged, and when, for the checks."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    identity: dict[str, int] = field(default_factory=dict)  # person -> lfw identity (acknowledged creates)
    updates: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # person -> (acked at, notes)
    deleted: dict[str, float] = field(default_factory=dict)  # person -> acknowledged at
    # Deletes sent whose answer never came (a gateway or Envoy killed on
    # the way back): made or not, nobody was told, so either end is right.
    maybe_deleted: set[str] = field(default_factory=set)
    stale: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)

    def live(self) -> list[str]:
        with self.lock:
            return [p for p in self.identity if p not in self.deleted and p not in self.maybe_deleted]

    def check(self, sent: float, answer: list[dict]) -> None:
        """A search sent at `sent` against what was acknowledged before it."""
        with self.lock:
            for person in answer:
                pid = person["id"]
                if pid in self.deleted and self.deleted[pid] < sent:
                    self.resurrected.append(f"{pid} found {sent - self.deleted[pid]:.2f} s after its delete")
                acked = [n for at, n in self.updates.get(pid, []) if at < sent]
                if acked and int(person["notes"] or 0) < max(acked):
                    self.stale.append(f"{pid}: notes {person['notes']} after update {max(acked)} was acknowledged")


def random_plan(seed: int) -> Iterator[tuple[str, str]]:
    """Faults without end: a random process of TARGETS, SIGKILLed or SIGSTOPped."""
    chooser = random.Random(seed)
    while True:
        yield chooser.choice(TARGETS), chooser.choice(KINDS)


class Soak:
    def __init__(
        self,
        stack: Stack,
        seconds: float,
        fault_every_s: float = 6.0,
        stop_s: float = 3.0,
        seed: int = 1,
        plan: Iterable[tuple[str, str]] | None = None,
    ):
        """`plan`: the faults, (target, "SIGKILL" or "SIGSTOP"), in order, until
        `seconds` are up or the plan is; random ones by default."""
        self.stack = stack
        self.seconds = seconds
        self.fault_every_s = fault_every_s
        self.stop_s = stop_s
        self.plan = iter(plan) if plan is not None else random_plan(seed)
        self.random = random.Random(seed)  # the load's choices
        self.url = f"{stack.rest}{API}"
        self.headers = {"Authorization": f"Bearer {stack.token('chaos', ttl_s=7200)}"}
        self.ledger = Ledger()
        self.faults: list[Fault] = []
        self.log: list[tuple[str, float, float, str]] = []  # (operation, sent, answered, "ok" | status | error)
        self.done = threading.Event()
        self.collection = ""

    # Load.

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30)

    def _send(self, http: httpx.Client, operation: str, method: str, path: str, body: dict | None = None):
        sent = time.monotonic()
        try:
            response = http.request(method, path, json=body)
            outcome = "ok" if response.status_code == 200 else str(response.status_code)
        except httpx.HTTPError as exc:
            response, outcome = None, type(exc).__name__
        self.log.append((operation, sent, time.monotonic(), outcome))
        if outcome != "ok":
            time.sleep(0.05)  # as a client backs off: a down service is not hammered
        return sent, (response if outcome == "ok" else None), outcome

    def _crop(self, identity: int) -> str:
        return lfw.b64(lfw.crop(lfw.photos(lfw.identities()[identity])[1]))

    def _searcher(self) -> None:
        crops: dict[int, str] = {}
        with self._client() as http:
            while not self.done.is_set():
                live = self.ledger.live()
                if not live:
                    time.sleep(0.1)
                    continue
                identity = self.ledger.identity[self.random.choice(live)]
                crop = crops.setdefault(identity, self._crop(identity))
                body = {"images": [crop], "min_score": 0.5, "search_mode": "ACCURATE", "collection_id": self.collection}
                sent, response, _ = self._send(http, "search", "POST", "/search/crops", body)
                if response is not None:
                    self.ledger.check(sent, response.json()["data"])

    def _writer(self) -> None:
        identities = iter(self.random.sample(range(len(lfw.identities())), len(lfw.identities())))
        notes: dict[str, int] = {}
        with self._client() as http:
            while not self.done.is_set():
                live = self.ledger.live()
                roll = self.random.random()
                if len(live) < 20 or roll < 0.4:
                    identity = next(identities, None)
                    if identity is None:
                        identities = iter(self.random.sample(range(len(lfw.identities())), len(lfw.identities())))
                        continue
                    name = lfw.identities()[identity]
                    photo = lfw.b64(lfw.portrait(lfw.photos(name)[0]))
                    body = {"name": name, "images": [photo], "collections": [self.collection], "notes": "0"}
                    _, response, _ = self._send(http, "create", "POST", "/persons", body)
                    if response is not None:
                        with self.ledger.lock:
                            self.ledger.identity[response.json()["data"]["id"]] = identity
                elif roll < 0.85:
                    person = self.random.choice(live)
                    notes[person] = notes.get(person, 0) + 1
                    _, response, _ = self._send(
                        http, "update", "PUT", f"/persons/{person}", {"notes": str(notes[person])}
                    )
                    if response is not None:
                        with self.ledger.lock:
                            self.ledger.updates.setdefault(person, []).append((time.monotonic(), notes[person]))
                else:
                    person = self.random.choice(live)
                    _, response, outcome = self._send(http, "delete", "DELETE", f"/persons/{person}")
                    with self.ledger.lock:
                        if response is not None:
                            self.ledger.deleted[person] = time.monotonic()
                        elif not outcome.startswith("4"):  # no answer: it may have been made
                            self.ledger.maybe_deleted.add(person)
                time.sleep(0.05)

    # Faults.

    def _back(self, since: float, timeout_s: float = 120) -> float:
        """Seconds from `since` until a search answers again."""
        identity = 0
        body = {"images": [self._crop(identity)], "min_score": 0.5, "search_mode": "ACCURATE"}
        with self._client() as http:
            while time.monotonic() - since < timeout_s:
                try:
                    if http.post("/search/crops", json=body, timeout=5).status_code == 200:
                        return time.monotonic() - since
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        return float("inf")

    def _fault(self, target: str, kind: str) -> Fault:
        fault = Fault(target, kind, time.monotonic())
        if kind == "SIGKILL":
            killed = self.stack.kill(target, signal.SIGKILL)
            fault.ended = time.monotonic()

            def restarted() -> None:
                self.stack.running_pid(target, not_pid=killed, timeout_s=120)
                fault.restarted_s = time.monotonic() - fault.ended

            watcher = threading.Thread(target=restarted, daemon=True)
            watcher.start()
            fault.back_s = self._back(fault.ended)
            watcher.join(timeout=120)
            return fault
        else:
            pid = self.stack.kill(target, signal.SIGSTOP)
            time.sleep(self.stop_s)
            os.kill(pid, signal.SIGCONT)
        fault.ended = time.monotonic()
        fault.back_s = self._back(fault.ended)
        return fault

    # The run.

    def run(self) -> Report:
        self.collection = Rest(self.stack.rest, self.stack.token("chaos")).collection("chaos")
        threads = [threading.Thread(target=self._writer, daemon=True)]
        threads += [threading.Thread(target=self._searcher, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        time.sleep(min(5.0, self.seconds / 4))  # some persons first
        for target, kind in self.plan:
            if time.monotonic() - started >= self.seconds:
                break
            self.faults.append(self._fault(target, kind))
            time.sleep(max(0.0, self.fault_every_s - (time.monotonic() - self.faults[-1].started)))
        self.done.set()
        for thread in threads:
            thread.join(timeout=60)
        self.stack.wait_healthy()
        return self._report(time.monotonic() - started)

    def _fault_at(self, sent: float, answered: float) -> str:
        """The fault a request was in flight during (from the fault until
        service was back, or the killed process ran again), or "none"."""
        for fault in self.faults:
            until = fault.ended + max(fault.back_s, fault.restarted_s if fault.restarted_s == fault.restarted_s else 0)
            if sent <= until and answered >= fault.started:
                return fault.name
        return "none"

    def _report(self, seconds: float) -> Report:
        lost, resurrected = [], list(self.ledger.resurrected)
        with self._client() as http:
            for person, identity in self.ledger.identity.items():
                got = http.get(f"/persons/{person}")
                if person in self.ledger.deleted:
                    if got.status_code != 404:
                        resurrected.append(f"{person} exists at the end after its delete was acknowledged")
                    continue
                if got.status_code != 200:
                    if not (got.status_code == 404 and person in self.ledger.maybe_deleted):
                        lost.append(f"{person} (identity {identity}): {got.status_code}")
                    continue
                acked = [n for _, n in self.ledger.updates.get(person, [])]
                if acked and int(got.json()["data"]["notes"] or 0) < max(acked):
                    lost.append(f"{person}: notes {got.json()['data']['notes']}, update {max(acked)} acknowledged")
        requests: Counter = Counter()
        failed: Counter = Counter()
        sent: Counter = Counter()
        for operation, started, answered, outcome in self.log:
            # A 4xx is the request's own fault (a photo showing two people).
            verdict = "ok" if outcome == "ok" else "refused" if outcome.startswith("4") else "failed"
            requests[(operation, verdict)] += 1
            name = self._fault_at(started, answered)
            sent[name] += 1
            if verdict == "failed":
                failed[name] += 1
        return Report(seconds, self.faults, requests, failed, sent, lost, resurrected, list(self.ledger.stale))
