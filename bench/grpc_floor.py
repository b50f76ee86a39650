"""The gRPC floor under the stack's Python services: the CPU that one call
costs a bare grpc.aio server and its client, answering at once and doing
nothing else, at the call rates the search path runs at. Whatever the
gateway and the indexer spend a search above these figures is theirs to cut;
below them, only fewer calls help.

Each call goes out at a fixed rate (not as fast as it can), as the stack's
calls do: a call that finds its server asleep costs a wake-up, so the cost
falls as the rate climbs. Unary calls are set against messages on one
bidirectional stream at the same rate, which skip a call's setup and its
completion. Both sides run as the services do (uvloop, grpc_settings).

    python -m bench.grpc_floor [--seconds 10] [--rates 25,100,200] [--bytes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass

from facesearch_common import grpc_settings

grpc_settings.apply()  # before grpc is imported, as the services do

import grpc  # noqa: E402
import psutil  # noqa: E402
import uvloop  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.common import console  # noqa: E402

SERVICE = "floor.Echo"
WARM_CALLS = 50
# Answers are small beside what a call may send (a crop-embedder call sends
# its canvases, 460 KB for six, and gets 12 KB back): the server answers
# with at most this much of the request.
REPLY_BYTES = 2000


async def _unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request[:REPLY_BYTES]


async def _stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request[:REPLY_BYTES]


async def serve() -> None:
    """The bare server: echoes (up to REPLY_BYTES), unary and streamed; prints its port."""
    server = grpc.aio.server()
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "Stream": grpc.stream_stream_rpc_method_handler(_stream),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


@dataclass(frozen=True)
class Floor:
    kind: str  # "unary" or "stream"
    rate: float  # calls (or messages) a second
    server_ms: float  # the server's CPU a call
    client_ms: float  # the client's


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _unary_sender(channel: grpc.aio.Channel, payload: bytes) -> Callable[[], Awaitable[bytes]]:
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/Unary")
    return lambda: call(payload)


async def _stream_sender(channel: grpc.aio.Channel, payload: bytes) -> Callable[[], Awaitable[bytes]]:
    """One message on one open stream, and its echo."""
    outbox: asyncio.Queue[bytes] = asyncio.Queue()

    async def requests() -> AsyncIterator[bytes]:
        while True:
            yield await outbox.get()

    open_stream: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(f"/{SERVICE}/Stream")
    stream = open_stream(requests())

    async def send() -> bytes:
        await outbox.put(payload)
        echo = await stream.read()
        assert isinstance(echo, bytes), "the stream ended"
        return echo

    return send


async def measure(port: int, server: psutil.Process, kind: str, rate: float, seconds: float, size: int) -> Floor:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        sender = _unary_sender if kind == "unary" else _stream_sender
        send = await sender(channel, b"\x00" * size)
        for _ in range(WARM_CALLS):
            await send()
        me = psutil.Process()
        server_before, client_before = cpu_s(server), cpu_s(me)
        started, calls = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            await send()
            calls += 1
            await asyncio.sleep(max(0.0, started + calls / rate - time.monotonic()))
        return Floor(
            kind,
            rate,
            1e3 * (cpu_s(server) - server_before) / calls,
            1e3 * (cpu_s(me) - client_before) / calls,
        )


def main(seconds: float, rates: list[float], size: int) -> None:
    server = subprocess.Popen([sys.executable, "-m", "bench.grpc_floor", "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        process = psutil.Process(server.pid)
        floors = [
            uvloop.run(measure(port, process, kind, rate, seconds, size))
            for rate in rates
            for kind in ("unary", "stream")
        ]
    finally:
        server.kill()
        server.wait()
    reply = min(size, REPLY_BYTES)
    table = Table(
        title=f"CPU a call, a bare grpc.aio server and its client ({size} B out, {reply} B back, {seconds:.0f} s a row)"
    )
    for column in (
        "calls/s",
        "unary: server ms",
        "client ms",
        "stream message: server ms",
        "client ms",
        "stream / unary",
    ):
        table.add_column(column, justify="right")
    for rate in rates:
        unary, stream = (next(f for f in floors if f.rate == rate and f.kind == k) for k in ("unary", "stream"))
        table.add_row(
            f"{rate:.0f}",
            f"{unary.server_ms:.3f}",
            f"{unary.client_ms:.3f}",
            f"{stream.server_ms:.3f}",
            f"{stream.client_ms:.3f}",
            f"{(stream.server_ms + stream.client_ms) / (unary.server_ms + unary.client_ms):.2f}x",
        )
    console.print(table)
    print(json.dumps({"bytes": size, "floors": [asdict(f) for f in floors]}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="25,100,200", help="calls a second, comma-separated")
    parser.add_argument("--bytes", type=int, default=2000, help="what a call sends (the answer is at most 2,000)")
    args = parser.parse_args()
    if args.serve:
        uvloop.run(serve())
    else:
        main(args.seconds, [float(r) for r in args.rates.split(",")], args.bytes)
