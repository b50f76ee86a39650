"""Timing helpers and the printed table."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

console = Console(width=140)


@dataclass(frozen=True)
class Result:
    name: str
    items: int  # crops, searches...
    seconds: float
    latencies_ms: np.ndarray
    cpu_seconds: float = 0.0  # this (client) process's CPU time meanwhile

    @property
    def client_cores(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


def timed_loop(name: str, calls: Iterable[Callable[[], int]], concurrency: int = 1) -> Result:
    """Runs each call (which returns how many items it handled), `concurrency` at a time."""

    def one(call):
        start = time.perf_counter()
        items = call()
        return items, (time.perf_counter() - start) * 1e3

    calls = list(calls)
    cpu = time.process_time()
    start = time.perf_counter()
    if concurrency == 1:
        done = [one(c) for c in calls]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(one, calls))
    seconds = time.perf_counter() - start
    return Result(name, sum(i for i, _ in done), seconds, np.array([ms for _, ms in done]), time.process_time() - cpu)


def print_table(title: str, results: list[Result], baseline: Result, unit: str) -> None:
    table = Table(title=title)
    for column in ("path", f"{unit}/s", "p50 ms", "p99 ms", f"vs {baseline.name}"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for r in results:
        table.add_row(
            r.name, f"{r.rate:,.1f}", f"{r.pct(50):.1f}", f"{r.pct(99):.1f}", f"{r.rate / baseline.rate:.2f}x"
        )
    console.print(table)
