"""`make load`: the local stack under load from the ghz configurations.

Starts the stack on free loopback ports, enrolls the 300 lfw-dev identities,
writes the ghz configs (bench/load/payloads.py) and drives search/crops with
devkit/ghz.py at concurrency 1, 4, 8, 16 and 32 through Envoy, and at 8 straight to
the gateway (the baseline: the same work without the edge), then times the
crop embedder alone on the same stack (1 crop per request, 32 in flight),
what search/crops is measured against. Prints ghz's
summary for each, one table, and a plot (bench/results/search_crops_load.png).

Beside each row's RPS: the CPU a request took in each of the stack's
processes (devkit/cpu.py, from /proc), and the CPU around the face model
(everything but the embedder's tritonserver) as a share of the model's own.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from rich.table import Table

from bench import plots
from bench.common import console
from bench.embedder import real_crops, served
from bench.load import enrolled
from devkit import cpu, ghz, lfw
from devkit.stack import Stack

DURATION_S = 20.0


def main() -> None:
    with Stack(Path(tempfile.mkdtemp(prefix="facesearch-load-")), lfw.evaluation_model()).running() as stack:
        configs = enrolled(stack)
        runs = [("envoy", c, stack.grpc_target) for c in (1, 4, 8, 16, 32)]
        runs.append(("gateway (baseline)", 8, f"127.0.0.1:{stack.ports.gateway}"))
        results, used = {}, {}
        for door, concurrency, host in runs:
            config = ghz.Config.load(configs["search_crops"], concurrency=concurrency, duration=DURATION_S, host=host)
            console.print(f"\n[bold]search/crops via {door}, concurrency {concurrency}, {DURATION_S:.0f} s[/bold]")
            with cpu.measured(stack) as total:
                results[(door, concurrency)] = result = asyncio.run(ghz.run(config))
            used[(door, concurrency)] = cpu.per_request(total, sum(result.statuses.values()))
            console.print(result.summary())
        # The crop embedder alone on the same stack and day, one crop per
        # request, 32 in flight: what search/crops is measured against.
        alone = served(real_crops(), f"127.0.0.1:{stack.ports.embedder_grpc}")[2]

    baseline = results[("gateway (baseline)", 8)]
    table = Table(title=f"search/crops under load, 300 enrolled, {DURATION_S:.0f} s each")
    roles = sorted({r for u in used.values() for r in u.ms}, key=lambda r: (r != cpu.MODEL, r))
    for column in (
        "path",
        "concurrency",
        "count",
        "RPS",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "errors",
        "vs gateway c=8",
        *(f"CPU ms/req {r}" for r in roles),
        "CPU around / model",
    ):
        table.add_column(column, justify="left" if column == "path" else "right")
    for (door, concurrency), r in results.items():
        failed = sum(n for code, n in r.statuses.items() if code != "OK")
        table.add_row(
            door,
            str(concurrency),
            str(sum(r.statuses.values())),
            f"{r.rps:.1f}",
            f"{r.percentile_ms(50):.1f}",
            f"{r.percentile_ms(90):.1f}",
            f"{r.percentile_ms(99):.1f}",
            str(failed),
            f"{r.rps / baseline.rps:.2f}x",
            *(f"{used[(door, concurrency)].ms.get(role, 0.0):.2f}" for role in roles),
            f"{used[(door, concurrency)].around_vs_model:.2f}x",
        )
    console.print(table)
    top = results[("envoy", 32)]
    console.print(
        f"the crop embedder alone, same stack, 1 crop/request, 32 in flight: {alone.rate:.1f} crops/s; "
        f"search/crops through Envoy at 32 in flight: {top.rps:.1f} requests/s, {top.rps / alone.rate:.2f}x of it"
    )
    console.print(f"CPU a search/crops at 32 in flight through Envoy: {used[('envoy', 32)]}")
    envoy = sorted((c, r) for (door, c), r in results.items() if door == "envoy")
    levels = [c for c, _ in envoy]
    path = plots.draw(
        "search_crops_load",
        "search/crops through Envoy, 300 enrolled (MobileFaceNet, 2 cores)",
        [
            plots.Panel(
                "requests in flight",
                "requests/s",
                {"through Envoy": (levels, [r.rps for _, r in envoy])},
                logx=True,
                levels={"gateway directly, 8 in flight": baseline.rps},
            ),
            plots.Panel(
                "requests in flight",
                "latency, ms",
                {
                    "p50": (levels, [r.percentile_ms(50) for _, r in envoy]),
                    "p99": (levels, [r.percentile_ms(99) for _, r in envoy]),
                },
                logx=True,
            ),
        ],
    )
    console.print(f"plot: {path}")


if __name__ == "__main__":
    main()
