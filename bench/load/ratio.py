"""search/crops at 32 in flight through Envoy against the crop embedder
alone (the same stack's Triton, 1 crop a request, 32 in flight), in turns
on one stack: `make load`'s ratio, measured ROUNDS times so that its
spread shows. The host's speed drifts by 10% between runs; a round's two
rows run back to back, so each round's ratio holds within a run.

    python -m bench.load.ratio [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import tritonclient.grpc as triton

from bench.common import console, timed_loop
from bench.embedder import count, real_crops, take, triton_call
from bench.load import enrolled
from bench.load.cpu import IN_FLIGHT, WARM_S
from devkit import cpu, ghz, lfw
from devkit.stack import Stack


def main(rounds: int, seconds: float) -> None:
    ratios = []
    with Stack(Path(tempfile.mkdtemp(prefix="facesearch-ratio-")), lfw.evaluation_model()).running() as stack:
        configs = enrolled(stack)
        faces = real_crops()
        client = triton.InferenceServerClient(f"127.0.0.1:{stack.ports.embedder_grpc}")

        def searches(duration: float) -> tuple[float, cpu.PerRequest]:
            config = ghz.Config.load(
                configs["search_crops"], concurrency=IN_FLIGHT, duration=duration, host=stack.grpc_target
            )
            before = time.process_time()
            with cpu.measured(stack) as total:
                result = asyncio.run(ghz.run(config))
            answered = sum(result.statuses.values())
            client_ms["searches"] = (time.process_time() - before) * 1e3 / answered
            return result.rps, cpu.per_request(total, answered)

        client_ms: dict[str, float] = {}  # the load's own CPU a request (this process), by row
        rate = 50.0  # crops/s alone, a first guess, then the last seen

        def alone(duration: float) -> tuple[float, cpu.PerRequest]:
            nonlocal rate
            # As many requests as take about `duration` at the last rate seen.
            requests = max(IN_FLIGHT, int(duration * rate))
            calls = [triton_call(client, take(faces, i % count(faces), i % count(faces) + 1)) for i in range(requests)]
            with cpu.measured(stack) as total:
                result = timed_loop("alone", calls, IN_FLIGHT)
            client_ms["alone"] = result.cpu_seconds * 1e3 / requests
            rate = result.rate
            return rate, cpu.per_request(total, requests)

        searches(WARM_S)
        alone(WARM_S)
        for i in range(rounds):
            started = time.monotonic()
            rps, used = searches(seconds)
            crops, used_alone = alone(seconds)
            ratios.append(rps / crops)
            console.print(
                f"round {i + 1}: search/crops {rps:.1f} requests/s (the model {used.model_ms:.2f} ms, around it "
                f"{used.around_ms:.2f}: {used.around_vs_model:.2f}x; the client {client_ms['searches']:.2f}); "
                f"the crop embedder alone {crops:.1f} crops/s (the model {used_alone.model_ms:.2f} ms a crop, "
                f"the client {client_ms['alone']:.2f}); [bold]{ratios[-1]:.3f}x[/bold] "
                f"({time.monotonic() - started:.0f} s)"
            )
    console.print(
        f"search/crops / the crop embedder alone, {rounds} rounds: median {statistics.median(ratios):.3f}x "
        f"({min(ratios):.3f}-{max(ratios):.3f}x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    main(args.rounds, args.seconds)
