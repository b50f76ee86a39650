"""CPU time of a running stack's processes, by role, for CPU-per-request
figures: each program's process and its children (PostgreSQL's backends),
with the time of children it has already reaped.

Roles are program names without their replica number (`gateway-1` ->
`gateway`); the embedder is the face model's server (tritonserver, exec'd
by it), the rest is the CPU around the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

from devkit.stack import Stack

MODEL = "embedder"


def role(name: str) -> str:
    return re.sub(r"-\d+$", "", name)


def seconds(stack: Stack) -> dict[str, float]:
    """CPU seconds each role has used so far."""
    used: dict[str, float] = {}
    for name in stack.names():
        pid = stack.pid(name)
        if not pid:
            continue  # not running: it adds nothing
        try:
            root = psutil.Process(pid)
            times = root.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in root.children(recursive=True):
                with_child = child.cpu_times()
                total += with_child.user + with_child.system
        except psutil.Error:
            continue  # gone meanwhile
        used[role(name)] = used.get(role(name), 0.0) + total
    return used


@dataclass
class PerRequest:
    """CPU milliseconds by role: all of a measured stretch (`measured`), or a
    request's share of it (`per_request`)."""

    ms: dict[str, float] = field(default_factory=dict)

    @property
    def model_ms(self) -> float:
        return self.ms.get(MODEL, 0.0)

    @property
    def around_ms(self) -> float:
        return sum(v for k, v in self.ms.items() if k != MODEL)

    @property
    def around_vs_model(self) -> float:
        return self.around_ms / self.model_ms if self.model_ms else float("inf")

    def __str__(self) -> str:
        around = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.ms.items(), key=lambda kv: -kv[1]) if k != MODEL)
        return (
            f"the face model's server {self.model_ms:.2f} ms, around it {self.around_ms:.2f} ms ({around}): "
            f"{self.around_vs_model:.2f}x the model's own"
        )


@contextmanager
def measured(stack: Stack) -> Iterator[PerRequest]:
    """Fills the yielded PerRequest with each role's CPU seconds over the
    block, in total; `per_request` divides them."""
    result = PerRequest()
    before = seconds(stack)
    yield result
    after = seconds(stack)
    result.ms = {k: (after[k] - before.get(k, 0.0)) * 1e3 for k in after}


def per_request(total: PerRequest, requests: int) -> PerRequest:
    return PerRequest({k: v / max(requests, 1) for k, v in total.ms.items()})
