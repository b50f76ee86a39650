"""The real stack for end-to-end tests: every Procfile entry started as its own
process (its own process group) on free loopback ports, stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devkit.stackenv import Indexers, Ports, environment, key_files, processes
from facesearch_common import tokens

START_TIMEOUT_S = 180


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


@dataclass
class Stack:
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: Ports = field(default_factory=Ports.free)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    indexer_count: int = 1
    replicas: int = 1

    def __post_init__(self) -> None:
        self.indexers = Indexers.free(self.ports, self.indexer_count, self.replicas)

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.ports.envoy}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports.envoy}"

    def token(self, tenant: str = "default", ttl_s: float = 3600) -> str:
        return tokens.create_token(key_files(self.data_dir), tenant, ttl_s)

    def env(self) -> dict[str, str]:
        env = environment(self.ports, self.data_dir, indexers=self.indexers)
        env.update(self.extra_env)
        return env

    def processes(self) -> dict[str, tuple[str, dict[str, str]]]:
        return processes(self.env(), self.indexers)

    @contextmanager
    def running(
        self, only: list[str] | None = None, extra: dict[str, tuple[str, dict[str, str]]] | None = None
    ) -> Iterator[Stack]:
        """The stack started, and stopped by pid when the block ends however it
        ends. Every Procfile entry (then it waits until Envoy reports the whole
        stack healthy), or `only` those (the caller waits for what it needs).
        `extra` names more processes: a command and the variables it adds."""
        try:
            self.start(only)
            for name, (command, env) in (extra or {}).items():
                self.start_one(name, command, {**self.env(), **env})
            if only is None:
                self.wait_healthy()
            yield self
        finally:
            self.stop()

    def start(self, only: list[str] | None = None) -> None:
        for name, (command, env) in self.processes().items():
            if only is None or name in only:
                self.start_one(name, command, env)

    def start_one(self, name: str, command: str, env: dict[str, str]) -> None:
        log = (self.data_dir / f"{name}.log").open("ab")
        # exec: the pid we hold is the service itself, not a shell.
        self.procs[name] = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def restart(self, name: str) -> None:
        self.stop_one(name)
        command, env = self.processes()[name]
        self.start_one(name, command, env)

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                if httpx.get(f"{self.rest}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError("stack not healthy in time:\n" + "\n".join(self.log_tail(n) for n in self.procs))

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.data_dir / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"--- {name} ---\n" + "\n".join(text)

    def stop_one(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        # Front to back, so nothing is asked of a service already gone.
        indexers = [n for n in self.procs if n.startswith("indexer")]
        for name in ("envoy", "gateway", "embedder", *indexers, "redis", *list(self.procs)):
            # PostgreSQL's fast shutdown (SIGINT) cuts sessions rather than wait for them.
            self.stop_one(name, signal.SIGINT if name == "postgres" else signal.SIGTERM)
