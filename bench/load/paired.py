"""One gateway of this tree against one of another commit, under the same
load at the same moment: gateway-0 runs this tree's gateway (and common/),
gateway-1 runs REV's, behind the same Envoy, model server and indexer. Each
window of `make load`'s top row (search/crops, 32 in flight through Envoy)
gives the CPU ms a search/crops each gateway served and their ratio.

Taken in turns, two runs differ by 10% on this host from its drift alone;
side by side, drift reaches both gateways alike, and REV against itself
gives ratios within a few percent.

    python -m bench.load.paired --base REV [--windows 6] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.common import console
from bench.load import enrolled
from bench.load.cpu import IN_FLIGHT, WARM_S
from devkit import ghz, lfw
from devkit.stack import Stack
from devkit.stackenv import ROOT

TREES = ("services/gateway", "common")


def checkout(rev: str, into: Path) -> str:
    """REV's gateway and common/ under `into`; the PYTHONPATH that imports them."""
    archive = subprocess.run(["git", "archive", rev, *TREES], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    path = os.pathsep.join(str(into / tree) for tree in TREES)
    found = subprocess.run(
        [sys.executable, "-c", "import gateway, facesearch_common as c; print(gateway.__file__, c.__file__)"],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not all(f.startswith(str(into)) for f in found):
        raise SystemExit(f"PYTHONPATH={path} still imports {found}")
    return path


def searches_served(metrics_port: int) -> float:
    """search/crops a gateway answered so far (facesearch_gateway_requests_total)."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "facesearch_gateway_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("rpc") == "SearchCrops"
    )


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def main(base: str, windows: int, seconds: float) -> None:
    data = Path(tempfile.mkdtemp(prefix="facesearch-paired-"))
    path = checkout(base, data / "base")
    (data / "stack").mkdir()
    # Both gateways take calls (no standby), half each.
    stack = Stack(
        data / "stack", lfw.evaluation_model(), gateway_standby=False, program_env={"gateway-1": {"PYTHONPATH": path}}
    )
    with stack.running():
        configs = enrolled(stack)

        def load(duration: float) -> None:
            config = ghz.Config.load(
                configs["search_crops"], concurrency=IN_FLIGHT, duration=duration, host=stack.grpc_target
            )
            asyncio.run(ghz.run(config))

        load(WARM_S)
        names, ports = ("gateway-0", "gateway-1"), stack.gateways.metrics_ports
        ratios = []
        for window in range(windows):
            before = [(cpu_seconds(stack.pid(n)), searches_served(p)) for n, p in zip(names, ports, strict=True)]
            load(seconds)
            after = [(cpu_seconds(stack.pid(n)), searches_served(p)) for n, p in zip(names, ports, strict=True)]
            ms = [1e3 * (a[0] - b[0]) / max(a[1] - b[1], 1) for a, b in zip(after, before, strict=True)]
            served = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
            ratios.append(ms[0] / ms[1])
            console.print(
                f"window {window}: this tree {ms[0]:.2f} ms a search/crops ({served[0]:.0f} served), "
                f"{base} {ms[1]:.2f} ms ({served[1]:.0f}): {ratios[-1]:.3f}x"
            )
    console.print(
        f"gateway CPU a search/crops, this tree against {base}: median {statistics.median(ratios):.3f}x "
        f"(windows {min(ratios):.3f}-{max(ratios):.3f}x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit gateway-1 runs (HEAD for an A/A check)")
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    main(args.base, args.windows, args.seconds)
