"""The CPU a search/crops takes in each of the stack's processes, at 32 in
flight through Envoy: `make load`'s top row alone, after a warm-up, for
comparing two trees (or two settings) in turns, with how many searches
the gateways' crop-embedder and indexer calls carried; with --py-spy, a
sampled profile of one process while it runs.

    python -m bench.load.cpu [--seconds 20] [--py-spy gateway-0] [--out .data/py-spy]

With --py-spy, py-spy (the dev group installs it) records NAME's Python
stacks as collapsed text in DIR/NAME.txt, and the hottest frames are
printed: the leaves and the frames of this project's code they run under.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import console
from bench.load import enrolled
from devkit import cpu, ghz, lfw
from devkit.client import scrape_all
from devkit.stack import Stack

IN_FLIGHT = 32
WARM_S = 5.0
SAMPLES_A_SECOND = 200


def hottest(collapsed: Path, shown: int = 25) -> None:
    """The frames most often on the stack (inclusive) and at its top (leaf)."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        total += n
        leaves[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    for title, counts in (("leaf", leaves), ("inclusive", inclusive)):
        console.print(f"[bold]{title}[/bold], of {total} samples")
        for frame, n in counts.most_common(shown):
            console.print(f"{n / total:6.1%}  {frame}")


# The calls a gateway shares between searches, by backend: the histogram of
# how many searches each call carried.
SHARED = {
    "the crop embedder": "facesearch_gateway_embedder_call_requests",
    "the indexer": "facesearch_gateway_indexer_call_searches",
}


def shared_calls(stack: Stack) -> dict[str, tuple[float, float]]:
    """For each backend in SHARED, the gateways' calls so far and the
    searches they carried."""
    samples = scrape_all(stack.gateways.metrics_ports)
    return {
        backend: (samples.get((f"{family}_count", ()), 0.0), samples.get((f"{family}_sum", ()), 0.0))
        for backend, family in SHARED.items()
    }


def main(seconds: float, profiled: str | None, out: Path) -> None:
    # The venv's own, beside this Python, else one on PATH.
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if profiled and not spy:
        raise SystemExit("py-spy is not installed (make deps puts it in .venv/bin)")
    with Stack(Path(tempfile.mkdtemp(prefix="facesearch-cpu-")), lfw.evaluation_model()).running() as stack:
        if profiled and profiled not in stack.names():
            raise SystemExit(f"no process {profiled!r} in the stack: {', '.join(stack.names())}")
        configs = enrolled(stack)

        def load(duration: float) -> ghz.Result:
            config = ghz.Config.load(
                configs["search_crops"], concurrency=IN_FLIGHT, duration=duration, host=stack.grpc_target
            )
            return asyncio.run(ghz.run(config))

        load(WARM_S)
        recorder = None
        if spy and profiled:
            out.mkdir(parents=True, exist_ok=True)
            # The recording stops before the load does, so it holds load only.
            recorder = subprocess.Popen(
                [spy, "record", "--pid", str(stack.pid(profiled)), "--duration", str(max(1, int(seconds) - 2)),
                 "--format", "raw", "--output", str(out / f"{profiled}.txt"), "--rate", str(SAMPLES_A_SECOND),
                 "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        before = shared_calls(stack)
        with cpu.measured(stack) as total:
            result = load(seconds)
        after = shared_calls(stack)
        if recorder is not None:
            recorder.wait()
    answered = sum(result.statuses.values())
    per = cpu.per_request(total, answered)
    console.print(f"{answered} answered in {seconds:.0f} s, {result.rps:.1f} requests/s, {dict(result.statuses)}")
    console.print(f"CPU a search/crops: {per}")
    for backend in SHARED:
        calls, searches = (a - b for a, b in zip(after[backend], before[backend], strict=True))
        if calls:
            carried = f"{searches:.0f} searches sent in {calls:.0f} calls, {searches / calls:.2f} a call"
            console.print(f"{backend}: {carried}")
    if recorder is not None and profiled:
        hottest(out / f"{profiled}.txt")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--py-spy", dest="profiled", metavar="NAME", help="a process of the stack: gateway-0, indexer, envoy..."
    )
    parser.add_argument("--out", type=Path, default=Path(".data/py-spy"))
    args = parser.parse_args()
    main(args.seconds, args.profiled, args.out)
