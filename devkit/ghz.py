"""A load driver that reads ghz's JSON configuration and prints ghz's summary
(count, RPS, latency percentiles, status counts). ghz itself is a Go binary
that cannot be installed here; configs written for one run on the other.

    python -m devkit.ghz bench/load/search_crops.json [--concurrency 8] [--duration 30s]

Supported keys: call, host, insecure, data, data-file, metadata, total,
duration, concurrency, connections, timeout. `proto`, `protoset` and
`import-paths` (how ghz finds the method; without them it uses server
reflection) are read by ghz alone: this driver has the compiled stubs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format, symbol_database

import facesearch.v1.facesearch_pb2  # noqa: F401  (registers the service)

UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str | float | int | None) -> float | None:
    if text is None or isinstance(text, (int, float)):
        return text
    match = re.fullmatch(r"([\d.]+)(ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 500ms, 30s, 2m)")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass
class Config:
    call: str
    host: str
    data: dict
    metadata: dict[str, str] = field(default_factory=dict)
    total: int | None = 200
    duration: float | None = None
    concurrency: int = 50
    connections: int = 1
    timeout: float = 20.0

    @classmethod
    def load(cls, path: Path, **override) -> Config:
        raw = json.loads(path.read_text())
        data = raw.get("data")
        if data is None and "data-file" in raw:
            data = json.loads((path.parent / raw["data-file"]).read_text())
        config = cls(
            call=raw["call"],
            host=raw["host"],
            data=data or {},
            metadata=raw.get("metadata", {}),
            total=raw.get("total", 200),
            duration=seconds(raw.get("duration")),
            concurrency=raw.get("concurrency", 50),
            connections=raw.get("connections", 1),
            timeout=seconds(raw.get("timeout", "20s")) or 20.0,
        )
        for key, value in override.items():
            if value is not None:
                setattr(config, key, value)
        if config.duration:
            config.total = None  # as ghz: a duration wins over a count
        return config


def method_of(call: str):
    """'package.Service.Method' (or 'package.Service/Method') -> (path, request class, response class)."""
    service_name, _, method_name = call.replace("/", ".").rpartition(".")
    pool = symbol_database.Default().pool
    method = pool.FindServiceByName(service_name).methods_by_name[method_name]
    db = symbol_database.Default()
    return (
        f"/{service_name}/{method_name}",
        db.GetSymbol(method.input_type.full_name),
        db.GetSymbol(method.output_type.full_name),
    )


@dataclass
class Result:
    latencies: list[float]
    statuses: Counter
    errors: Counter
    wall_s: float

    def summary(self) -> str:
        lat = np.array(self.latencies) * 1e3
        count = sum(self.statuses.values())
        lines = ["", "Summary:", f"  Count:\t{count}", f"  Total:\t{self.wall_s:.2f} s"]
        if lat.size:
            lines += [
                f"  Slowest:\t{lat.max():.2f} ms",
                f"  Fastest:\t{lat.min():.2f} ms",
                f"  Average:\t{lat.mean():.2f} ms",
            ]
        lines += [f"  Requests/sec:\t{count / self.wall_s:.2f}", "", "Latency distribution:"]
        for p in (10, 25, 50, 75, 90, 95, 99):
            lines.append(f"  {p} % in {np.percentile(lat, p):.2f} ms" if lat.size else f"  {p} % in - ms")
        lines += ["", "Status code distribution:"]
        lines += [f"  [{code}]\t{n} responses" for code, n in self.statuses.most_common()]
        if self.errors:
            lines += ["", "Error distribution:"]
            lines += [f"  [{n}]\t{text}" for text, n in self.errors.most_common(10)]
        return "\n".join(lines)

    def percentile_ms(self, p: float) -> float:
        return float(np.percentile(np.array(self.latencies) * 1e3, p)) if self.latencies else float("nan")

    @property
    def rps(self) -> float:
        return sum(self.statuses.values()) / self.wall_s


async def run(config: Config) -> Result:
    path, request_type, response_type = method_of(config.call)
    request = json_format.ParseDict(config.data, request_type())
    metadata = tuple((k.lower(), v) for k, v in config.metadata.items())
    channels = [
        grpc.aio.insecure_channel(config.host, options=[("grpc.max_send_message_length", 64 << 20)])
        for _ in range(max(1, config.connections))
    ]
    calls = [
        ch.unary_unary(
            path, request_serializer=request_type.SerializeToString, response_deserializer=response_type.FromString
        )
        for ch in channels
    ]
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: Counter = Counter()
    issued = 0
    deadline = time.perf_counter() + config.duration if config.duration else None

    def another() -> bool:
        nonlocal issued
        if deadline is not None:
            return time.perf_counter() < deadline
        if config.total is None or issued >= config.total:
            return False
        issued += 1
        return True

    async def worker(n: int) -> None:
        call = calls[n % len(calls)]
        while another():
            started = time.perf_counter()
            try:
                await call(request, metadata=metadata, timeout=config.timeout)
                statuses["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                statuses[exc.code().name.title().replace("_", "")] += 1
                errors[f"rpc error: code = {exc.code().name} desc = {exc.details()}"] += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(config.concurrency)))
    wall = time.perf_counter() - started
    for ch in channels:
        await ch.close()
    return Result(latencies, statuses, errors, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("-c", "--concurrency", type=int)
    parser.add_argument("-n", "--total", type=int)
    parser.add_argument("-z", "--duration", type=seconds)
    parser.add_argument("--host")
    args = parser.parse_args()
    config = Config.load(
        args.config, concurrency=args.concurrency, total=args.total, duration=args.duration, host=args.host
    )
    print(asyncio.run(run(config)).summary())


if __name__ == "__main__":
    main()
