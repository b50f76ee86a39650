"""A short chaos soak (devkit/chaos.py; `python -m bench.chaos` runs a
random one for minutes): every kind of process of the stack SIGKILLed once,
and Redis, PostgreSQL and the gateway that takes the calls (gateway-1 is
Envoy's standby) SIGSTOPped, under mixed load. Nothing acknowledged is
lost, no delete comes back, no answer is older than a write acknowledged
before it was asked, and the stack is back within 30 s of every fault."""

from __future__ import annotations

import pytest

from devkit import lfw
from devkit.chaos import TARGETS, Soak
from devkit.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
PLAN = [(target, "SIGKILL") for target in TARGETS] + [
    (target, "SIGSTOP") for target in ("redis", "postgres", "gateway-0")
]


def test_a_minute_of_chaos(tmp_path):
    stack = Stack(tmp_path, lfw.evaluation_model(), indexer_count=2, replicas=2)
    with stack.running():
        report = Soak(stack, seconds=300, fault_every_s=4, seed=7, plan=PLAN).run()
    for row in report.table():
        print(row)
    print(dict(report.requests))
    assert [(f.target, f.kind) for f in report.faults] == PLAN
    assert report.lost == [] and report.resurrected == [] and report.stale == []
    assert all(f.back_s <= 30 for f in report.faults), [(f.name, f.back_s) for f in report.faults]
    assert report.requests[("search", "ok")] > 100 and report.requests[("update", "ok")] > 10
