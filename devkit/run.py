"""`make run`: the whole stack in the foreground on loopback, under
supervisord (devkit/supervise.py): a process that dies is restarted, the
rest keeps serving, every line the stack logs comes out here as one JSON
object, and Ctrl-C stops it all.

Nothing outlives this runner: supervisord is its child and each program
supervisord's, all under PR_SET_PDEATHSIG, so whatever kills the runner (an
OOM kill, a closed terminal) takes the stack with it. A start first clears
what a crashed run left (PostgreSQL's lock, Triton's shared memory: their
owners do that themselves), and a second `make run` on the same data
directory or ports says so and leaves the running one alone.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import psutil

from devkit import lfw
from devkit.stack import SUPERVISORD
from devkit.stackenv import ROOT, Gateways, Indexers, Ports, environment, key_files, processes
from devkit.supervise import config
from facesearch_common.specs import DEFAULT_MODEL, YUNET, get_spec


class AlreadyRunning(Exception):
    pass


def choose_model(env: dict[str, str], data_dir: Path) -> None:
    """Fail early, with a useful message, when the model's weights are missing."""
    from embedder import weights  # torch-free import path; only resolves files

    name = env.setdefault("FACESEARCH_MODEL", DEFAULT_MODEL)
    explicit = Path(env["FACESEARCH_WEIGHTS"]) if env.get("FACESEARCH_WEIGHTS") else None
    try:
        weights.resolve(get_spec(name), explicit, data_dir / "models")
        return
    except (weights.WeightsError, ValueError) as exc:
        problem = str(exc)
    fallback = lfw.evaluation_model()
    if "FACESEARCH_MODEL" not in os.environ and explicit is None and lfw.MOBILEFACENET.is_file():
        print(
            f"run: {problem}\nrun: falling back to {fallback['FACESEARCH_MODEL']} with the evaluation weights at "
            f"{lfw.MOBILEFACENET} (set FACESEARCH_MODEL to choose)",
            file=sys.stderr,
        )
        env.update(fallback)
        return
    sys.exit(f"run: {problem}")


def choose_detector(env: dict[str, str], data_dir: Path) -> None:
    """YuNet's weights: the variable's file, the cache or a download; where
    none of them can be had, the copy this project's machines carry."""
    from embedder import weights

    if env.get("FACESEARCH_YUNET_WEIGHTS"):
        return
    try:
        weights.resolve(YUNET, None, data_dir / "models", download=False)
        return
    except weights.WeightsError:
        pass
    if lfw.YUNET.is_file():
        print(f"run: using YuNet's weights at {lfw.YUNET} (set FACESEARCH_YUNET_WEIGHTS to choose)", file=sys.stderr)
        env["FACESEARCH_YUNET_WEIGHTS"] = str(lfw.YUNET)


def lock(data_dir: Path, port: int) -> IO[str]:
    """The data directory's run lock, held (flock) as long as this runner
    lives; the kernel drops it however the runner ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "run.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid, _, held_port = handle.read().strip().partition(" ")
        raise AlreadyRunning(
            f"FaceSearch is already running (pid {pid or '?'}, port {held_port or '?'}) on {data_dir}"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()} {port}")
    handle.flush()
    return handle


def holder(port: int) -> psutil.Process | None:
    """The process listening on loopback `port`, if it can be told."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for c in connections:
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
            return psutil.Process(c.pid)
    return None


def runner_of(process: psutil.Process) -> psutil.Process | None:
    """The FaceSearch runner above `process`, if it is part of a stack."""
    for ancestor in process.parents():
        if "devkit.run" in " ".join(ancestor.cmdline()):
            return ancestor
    return None


def check_ports(wanted: dict[str, int]) -> None:
    """Every port the stack will listen on is free, or AlreadyRunning says who has it."""
    import socket

    for variable, port in wanted.items():
        with socket.socket() as probe:
            # As the servers bind: a port whose old connections linger
            # (TIME_WAIT) after a stop is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                continue
            except OSError:
                pass
        process = holder(port)
        runner = runner_of(process) if process else None
        if runner is not None:
            raise AlreadyRunning(f"FaceSearch is already running (pid {runner.pid}, port {port})")
        who = f"pid {process.pid} ({process.name()})" if process else "another process"
        raise AlreadyRunning(f"port {port} ({variable}) is in use by {who}: set {variable} to a free port")


def stack_ports(ports: Ports, indexers: Indexers, gateways: Gateways, env: dict[str, str]) -> dict[str, int]:
    """Each port the stack listens on, by what sets it; two of them the same
    port is refused like a port in use."""
    wanted = {f"{name.upper()}_PORT": port for name, port in vars(ports).items()}
    for name in ("GATEWAY_PORT", "GATEWAY_METRICS_PORT", "INDEXER_PORT", "INDEXER_METRICS_PORT"):
        wanted.pop(name)  # counted with their copies below
    if not any(p.name == "postgres" for p in processes(env, indexers, gateways)):
        wanted.pop("POSTGRES_PORT")
    for copies in (gateways, indexers):
        for name, port, metrics in zip(copies.names(), copies.ports, copies.metrics_ports, strict=True):
            wanted[f"{name} port"] = port
            if metrics:
                wanted[f"{name} metrics port"] = metrics
    seen: dict[int, str] = {}
    for what, port in wanted.items():
        if port in seen:
            raise AlreadyRunning(f"{seen[port]} and {what} are both {port}: set the ports apart")
        seen[port] = what
    return wanted


def announce_when_healthy(url: str, data_dir: Path, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                print(
                    f"\n  FaceSearch is ready: {url}/v2/face-recognition  (REST and gRPC)"
                    f"\n  Every call needs a token; get one for a tenant with:"
                    f"\n    FACESEARCH_DATA_DIR={data_dir} .venv/bin/facesearch token create --tenant demo --ttl 12h"
                    f"\n  and send it as `Authorization: Bearer <token>`. Ctrl-C stops it.\n",
                    flush=True,
                )
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    print(f"\n  FaceSearch did not turn healthy within {timeout_s:.0f}s\n", flush=True)


def main() -> None:
    data_dir = Path(os.environ.get("FACESEARCH_DATA_DIR", ROOT / ".data")).resolve()
    ports = Ports.from_env(os.environ)
    indexers = Indexers.from_env(os.environ, ports)
    gateways = Gateways.from_env(os.environ, ports)
    try:
        held = lock(data_dir, ports.envoy)
        created = not key_files(data_dir).exist()
        env = environment(ports, data_dir, indexers, gateways)  # creates the development key pair on first start
        check_ports(stack_ports(ports, indexers, gateways, env))
    except AlreadyRunning as exc:
        sys.exit(f"run: {exc}")
    if created:
        print(f"run: created the development JWT key pair in {key_files(data_dir).private_key.parent}", flush=True)
    choose_model(env, data_dir)
    choose_detector(env, data_dir)
    conf = config(processes(env, indexers, gateways), data_dir / "supervisor", ROOT, log_events=True)
    supervisord = subprocess.Popen(
        ["setpriv", "--pdeathsig", "KILL", "--", str(SUPERVISORD), "-c", str(conf)], env=env, cwd=ROOT
    )
    url = f"http://127.0.0.1:{ports.envoy}"
    threading.Thread(target=announce_when_healthy, args=(url, data_dir), daemon=True).start()
    # supervisord stops the stack in order on SIGINT or SIGTERM: the runner's
    # are passed on (Ctrl-C at a terminal reaches both; once is enough).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _: supervisord.send_signal(number))
    code = supervisord.wait()
    held.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
