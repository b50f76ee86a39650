"""A chaos soak: the stack as `make run` runs it (supervisord, two gateways
behind Envoy), with two indexers holding every collection, under mixed load
(searches, enrollments, updates, deletes) while a random process is SIGKILLed
or SIGSTOPped (for 3 s) every few seconds: indexers, gateways, Redis,
PostgreSQL, the embedder, Envoy (devkit/chaos.py says what is checked).

    python -m bench.chaos [--minutes 5] [--every 6] [--seed 1]

Prints the faults, the requests failed by the fault in force when each was
sent, each kind's time back to service, and the writes lost, deletes come
back and stale answers (each must be 0).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.table import Table

from bench.common import console
from devkit import lfw
from devkit.chaos import Soak
from devkit.stack import Stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=6.0, help="seconds between faults")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), lfw.evaluation_model(), indexer_count=2, replicas=2)
        with stack.running():
            report = Soak(stack, args.minutes * 60, args.every, seed=args.seed).run()
    table = Table(title=f"chaos soak, {report.seconds / 60:.1f} min, {len(report.faults)} faults")
    for column in ("fault", "faults", "requests in flight", "failed", "back to service p50 / max", "running again"):
        table.add_column(column, justify="left" if column == "fault" else "right")
    for row in report.table():
        table.add_row(*(str(c) for c in row))
    console.print(table)
    console.print("requests:", dict(sorted(report.requests.items())))
    console.print(
        f"acknowledged writes lost: {len(report.lost)}; deletes that came back: {len(report.resurrected)}; "
        f"stale answers: {len(report.stale)}"
    )
    for problem in (report.lost + report.resurrected + report.stale)[:20]:
        console.print(f"  {problem}")


if __name__ == "__main__":
    main()
