"""The real stack for end-to-end tests and benches: every Procfile entry
under supervisord (devkit/supervise.py), as `make run` runs them, on free
loopback ports, so that fault tests see what users see: a process that dies
is restarted. Stopped by pid at the end, and nothing outlives the test
process (supervisord and each program run under PR_SET_PDEATHSIG)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devkit.stackenv import ROOT, Gateways, Indexers, Ports, environment, key_files, processes
from devkit.supervise import Program, Supervisor, config
from facesearch_common import tokens

START_TIMEOUT_S = 180
SUPERVISORD = Path(sys.executable).parent / "supervisord"


def wait_triton_ready(
    http_port: int, timeout_s: float = START_TIMEOUT_S, process: subprocess.Popen | None = None
) -> None:
    """Until the tritonserver on `http_port` has loaded every model (it runs
    with strict readiness); returns early if `process` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/v2/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    if process is None or process.poll() is None:
        raise TimeoutError(f"tritonserver on port {http_port} not ready after {timeout_s:.0f} s")


def serving(address: str) -> bool:
    """Whether the gRPC server at `address` answers its health check SERVING."""
    try:
        with grpc.insecure_channel(address) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


@dataclass
class Stack:
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: Ports = field(default_factory=Ports.free)
    indexer_count: int = 1
    replicas: int = 1
    gateway_count: int = 0  # 0: as `make run` (stackenv.DEFAULT_GATEWAYS)
    gateway_standby: bool = True  # the last gateway a hot standby, as `make run`
    # Variables for one program on top of the stack's (bench.load.paired runs
    # gateway-1 from another tree with its own PYTHONPATH).
    program_env: dict[str, dict[str, str]] = field(default_factory=dict)
    supervisord: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.indexers = Indexers.free(self.ports, self.indexer_count, self.replicas)
        self.gateways = Gateways.free(self.ports, self.gateway_count, self.gateway_standby)
        self.logs = self.data_dir / "supervisor"
        self.supervisor = Supervisor(self.logs)

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.ports.envoy}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports.envoy}"

    def token(self, tenant: str = "default", ttl_s: float = 3600) -> str:
        return tokens.create_token(key_files(self.data_dir), tenant, ttl_s)

    def env(self) -> dict[str, str]:
        env = environment(self.ports, self.data_dir, self.indexers, self.gateways)
        env.update(self.extra_env)
        return env

    def programs(self) -> list[Program]:
        return [
            dataclasses.replace(p, env={**p.env, **self.program_env[p.name]}) if p.name in self.program_env else p
            for p in processes(self.env(), self.indexers, self.gateways)
        ]

    @contextmanager
    def running(self, only: list[str] | None = None) -> Iterator[Stack]:
        """The stack started, and stopped by pid when the block ends however it
        ends. Every program (then it waits until the whole stack serves), or
        `only` those (the caller waits for what it needs; `start` starts more)."""
        try:
            self.launch(only)
            if only is None:
                self.wait_healthy()
            yield self
        finally:
            self.stop()

    def launch(self, only: list[str] | None = None) -> None:
        """supervisord with every program, those of `only` (or all) started."""
        env = self.env()
        programs = [
            Program(p.name, p.command, p.env, autostart=only is None or p.name in only) for p in self.programs()
        ]
        conf = config(programs, self.logs, ROOT)
        out = (self.logs / "supervisord.out").open("ab")
        self.supervisord = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "--", str(SUPERVISORD), "-c", str(conf)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.supervisor.wait_up()

    def names(self) -> list[str]:
        return [p.name for p in self.programs()]

    def start(self, only: list[str]) -> None:
        """Starts these programs (and supervisord, with them, if it is not up)."""
        if self.supervisord is None:
            self.launch(only)
            return
        for name in only:
            self.supervisor.start(name)

    def start_one(self, name: str) -> None:
        self.supervisor.start(name)

    def pid(self, name: str) -> int:
        """The program's pid (0 while it is not running)."""
        return self.supervisor.pid(name)

    def failed(self, name: str) -> bool:
        """Whether supervisord gave the program up (it kept failing to start)."""
        return self.supervisor.info(name)["statename"] in ("FATAL", "EXITED")

    def running_pid(self, name: str, not_pid: int = 0, timeout_s: float = 60) -> int:
        """The pid of the program once it runs as another process than `not_pid`."""
        deadline = time.monotonic() + timeout_s
        while True:
            pid = self.pid(name)
            if pid and pid != not_pid:
                return pid
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not running again in {timeout_s:.0f} s:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Signals the program as a crash or a freeze would; supervisord
        restarts it if it dies. Answers the pid signalled."""
        pid = self.pid(name)
        os.kill(pid, sig)
        return pid

    def stop_one(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stops the program, and keeps it stopped until started: with its
        stop signal, or with SIGKILL first (a crash that is not restarted)."""
        if sig == signal.SIGKILL and self.pid(name):
            self.supervisor.signal(name, "KILL")
        self.supervisor.stop(name)

    def restart(self, name: str) -> None:
        self.supervisor.stop(name)
        self.supervisor.start(name)

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until every program runs, every gateway answers SERVING and Envoy
        says the stack is healthy."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            failed = {n: s for n, s in self.supervisor.states().items() if s in ("FATAL", "EXITED")}
            if failed:
                raise RuntimeError(f"{failed}:\n" + "\n".join(self.log_tail(n) for n in failed))
            try:
                if (
                    all(serving(a) for a in self.gateways.addresses)
                    and httpx.get(f"{self.rest}/healthz", timeout=2).status_code == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        names = [p.name for p in self.programs()]
        raise TimeoutError("stack not healthy in time:\n" + "\n".join(self.log_tail(n) for n in names))

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"--- {name} ---\n" + "\n".join(text)

    def stop(self) -> None:
        """supervisord stops the programs (front to back: the reverse of its
        start order) and exits; by pid, SIGKILL if it will not."""
        process, self.supervisord = self.supervisord, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # its programs die with it (PR_SET_PDEATHSIG)
            process.wait()
