"""The environment of a local stack: ports, addresses, data directory and the
rendered Envoy config. Shared by `make run` and the end-to-end tests so that
both start exactly the same processes (the entries of the Procfile, under
supervisord: devkit/supervise.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from deploy.envoy.render import ANSWERS_LUA, CONSOLE, endpoints, envoy_config
from devkit import postgres
from devkit.supervise import Program
from facesearch_common import tokens

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
DEFAULT_GATEWAYS = 2
DESCRIPTOR = ROOT / "gen" / "envoy" / "facesearch.pb"


@dataclass(frozen=True)
class Ports:
    """Each port and the variable that sets it (default in brackets)."""

    envoy: int = 8080  # ENVOY_PORT: REST and gRPC, the public door
    envoy_admin: int = 9901  # ENVOY_ADMIN_PORT: Envoy admin, loopback only
    envoy_metrics: int = 9902  # ENVOY_METRICS_PORT: Envoy's Prometheus /metrics
    gateway: int = 50051  # GATEWAY_PORT
    gateway_metrics: int = 9464  # GATEWAY_METRICS_PORT: the gateway's Prometheus /metrics
    indexer: int = 50052  # INDEXER_PORT
    indexer_metrics: int = 9465  # INDEXER_METRICS_PORT: the first indexer's /metrics (then +1 each)
    embedder_http: int = 8000  # EMBEDDER_HTTP_PORT: Triton HTTP
    embedder_grpc: int = 8001  # EMBEDDER_GRPC_PORT: Triton gRPC
    embedder_metrics: int = 8002  # EMBEDDER_METRICS_PORT: Triton metrics
    redis: int = 6379  # REDIS_PORT
    postgres: int = 5432  # POSTGRES_PORT: the local PostgreSQL (unless DATABASE_URL names one)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        defaults = cls()
        return cls(**{f.name: int(env.get(f"{f.name.upper()}_PORT", getattr(defaults, f.name))) for f in fields(cls)})

    @classmethod
    def free(cls) -> Ports:
        """Free loopback ports, for tests."""
        socks = []
        try:
            for _ in fields(cls):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                socks.append(s)
            return cls(*(s.getsockname()[1] for s in socks))
        finally:
            for s in socks:
                s.close()

    def as_env(self) -> dict[str, str]:
        return {f"{f.name.upper()}_PORT": str(getattr(self, f.name)) for f in fields(self)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def key_files(data_dir: Path) -> tokens.KeyFiles:
    """The development key pair: created on first start, kept after."""
    return tokens.KeyFiles.in_dir(data_dir / "keys")


def render_envoy(ports: Ports, data_dir: Path, gateways: Gateways, listen_address: str = "127.0.0.1") -> Path:
    target = data_dir / "envoy" / "envoy.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    config = envoy_config(
        listen_address=listen_address,
        listen_port=ports.envoy,
        admin_port=ports.envoy_admin,
        metrics_port=ports.envoy_metrics,
        console_dir=CONSOLE,
        gateway_endpoints=endpoints(*([("127.0.0.1", port) for port in level] for level in gateways.priorities())),
        descriptor=DESCRIPTOR,
        answers_lua=ANSWERS_LUA,
        jwks=key_files(data_dir).jwks,
    )
    target.write_text(config)
    return target


@dataclass(frozen=True)
class Copies:
    """Several processes of one service on loopback: their gRPC and metrics
    ports (the first are the service's own, e.g. GATEWAY_PORT and
    GATEWAY_METRICS_PORT)."""

    ports: tuple[int, ...]
    metrics_ports: tuple[int, ...]

    KIND: ClassVar[str] = ""
    # `make run`'s copy i listens on the first ports + i * STRIDE.
    STRIDE: ClassVar[int] = 1

    @classmethod
    def counted(cls, first: int, first_metrics: int, count: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Ports from the first ones, STRIDE apart (`make run`)."""
        return (
            tuple(first + i * cls.STRIDE for i in range(count)),
            tuple(first_metrics + i * cls.STRIDE for i in range(count)),
        )

    @classmethod
    def freed(cls, first: int, first_metrics: int, count: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The first ones, then free ports (tests)."""
        more = count - 1
        return (first, *(free_port() for _ in range(more))), (first_metrics, *(free_port() for _ in range(more)))

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    def names(self) -> list[str]:
        """Process names: `indexer` alone, else indexer-0, indexer-1..."""
        return [self.KIND] if len(self.ports) == 1 else [f"{self.KIND}-{i}" for i in range(len(self.ports))]

    def env_of(self, i: int) -> dict[str, str]:
        """The variables that make copy `i` itself."""
        raise NotImplementedError


@dataclass(frozen=True)
class Gateways(Copies):
    """The gateways Envoy balances over (GATEWAY_COUNT, default 2, so that
    one that dies or restarts costs no request: Envoy retries the reads).

    With GATEWAY_STANDBY (default 1) the last is a hot standby: Envoy sends it
    calls only while the others are down, and retries there what failed on
    them. One busy gateway spends less CPU a search than two half-busy ones;
    docs/operations.md gives the figures and how many to run."""

    standby: bool = True

    KIND: ClassVar[str] = "gateway"
    # 100 apart: the next ports up are the indexers' (50052, 9465).
    STRIDE: ClassVar[int] = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str], ports: Ports) -> Gateways:
        count = int(env.get("GATEWAY_COUNT", str(DEFAULT_GATEWAYS)))
        if count < 1:
            raise ValueError(f"GATEWAY_COUNT must be 1 or more, got {count}")
        standby = env.get("GATEWAY_STANDBY", "1")
        if standby not in ("0", "1"):
            raise ValueError(f"GATEWAY_STANDBY must be 0 or 1, got {standby!r}")
        return cls(*cls.counted(ports.gateway, ports.gateway_metrics, count), standby == "1")

    @classmethod
    def free(cls, ports: Ports, count: int = 0, standby: bool = True) -> Gateways:
        return cls(*cls.freed(ports.gateway, ports.gateway_metrics, count or DEFAULT_GATEWAYS), standby)

    def priorities(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The ports of the gateways Envoy sends calls to, and the standby's."""
        if self.standby and len(self.ports) > 1:
            return self.ports[:-1], self.ports[-1:]
        return self.ports, ()

    def env_of(self, i: int) -> dict[str, str]:
        return {"GATEWAY_ADDRESS": self.addresses[i], "GATEWAY_METRICS_PORT": str(self.metrics_ports[i])}


@dataclass(frozen=True)
class Indexers(Copies):
    """How many indexers the stack runs and how many hold each collection."""

    replicas: int = 1

    KIND: ClassVar[str] = "indexer"

    @classmethod
    def from_env(cls, env: Mapping[str, str], ports: Ports) -> Indexers:
        count = int(env.get("INDEXER_COUNT", "1"))
        replicas = int(env.get("INDEXER_REPLICAS", "1"))
        if not 1 <= replicas <= count:
            raise ValueError(f"INDEXER_REPLICAS must be between 1 and INDEXER_COUNT ({count}), got {replicas}")
        return cls(*cls.counted(ports.indexer, ports.indexer_metrics, count), replicas)

    @classmethod
    def free(cls, ports: Ports, count: int, replicas: int) -> Indexers:
        return cls(*cls.freed(ports.indexer, ports.indexer_metrics, count), replicas)

    def env_of(self, i: int) -> dict[str, str]:
        return {
            "INDEXER_ADDRESS": self.addresses[i],
            "INDEXER_NAME": self.addresses[i],
            "INDEXER_METRICS_PORT": str(self.metrics_ports[i]),
        }


def procfile() -> dict[str, str]:
    """The Procfile's entries, name -> command (its `name: command` lines)."""
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def processes(env: Mapping[str, str], indexers: Indexers, gateways: Gateways) -> list[Program]:
    """Every process of the stack: the Procfile's entries, `indexer` and
    `gateway` once per copy with the variables that make each its own, and
    no `postgres` when DATABASE_URL names a server of the caller's. `env`
    is what they share (supervisord's environment)."""
    found: list[Program] = []
    for name, command in procfile().items():
        if name in ("indexer", "gateway"):
            copies: Copies = indexers if name == "indexer" else gateways
            for i, copy in enumerate(copies.names()):
                found.append(Program(copy, command, copies.env_of(i)))
        elif name != "postgres" or env["DATABASE_URL"] == postgres.url(int(env["POSTGRES_PORT"])):
            found.append(Program(name, command, {}))
    return found


def environment(
    ports: Ports, data_dir: Path, indexers: Indexers, gateways: Gateways, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables every Procfile entry reads, on top of `base`."""
    data_dir = data_dir.resolve()
    (data_dir / "redis").mkdir(parents=True, exist_ok=True)
    tokens.ensure_keys(key_files(data_dir))
    render_envoy(ports, data_dir, gateways)
    env = dict(os.environ if base is None else base)
    env.update(ports.as_env())
    env.update(
        {
            "FACESEARCH_DATA_DIR": str(data_dir),
            "GATEWAY_ADDRESS": gateways.addresses[0],
            "INDEXER_ADDRESS": indexers.addresses[0],
            "INDEXER_ADDRESSES": ",".join(indexers.addresses),
            "INDEXER_REPLICAS": str(indexers.replicas),
            "DATABASE_URL": env.get("DATABASE_URL") or postgres.url(ports.postgres),
            "EMBEDDER_URL": f"127.0.0.1:{ports.embedder_grpc}",
            "REDIS_URL": f"redis://127.0.0.1:{ports.redis}/0",
            "FACESEARCH_JWKS": str(key_files(data_dir).jwks),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The Procfile's `python` and `envoy` are the project's environment's.
    bin_dir = str(ROOT / ".venv" / "bin")
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env
