"""`make run` itself (devkit/run.py), as a user meets it: the stack comes up
under supervisord with one JSON line per event on the terminal, a killed
process comes back by itself, a second start beside it refuses at once,
killing the runner leaves nothing behind, and the next start clears what the
killed one left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from devkit import lfw
from devkit.client import Rest
from devkit.stackenv import ROOT, Ports, key_files
from facesearch_common import tokens

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


def runner(data_dir: Path, ports: Ports, out: Path) -> subprocess.Popen:
    """`make run`'s command, its terminal output to `out`."""
    env = {**os.environ, **ports.as_env(), **lfw.evaluation_model(), "FACESEARCH_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "devkit.run"], cwd=ROOT, env=env, stdout=out.open("ab"), stderr=subprocess.STDOUT
    )


def wait_ready(ports: Ports, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the runner exited with {process.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{ports.envoy}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("make run did not turn healthy")


def stack_pids(process: subprocess.Popen) -> set[int]:
    return {p.pid for p in psutil.Process(process.pid).children(recursive=True)}


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}


def wait_gone(pids: set[int], what: str, timeout_s: float = 10) -> None:
    """Waits until none of `pids` is alive; fails naming those left."""
    deadline = time.monotonic() + timeout_s
    while left := alive(pids):
        assert time.monotonic() < deadline, f"{what}: {sorted(left)}"
        time.sleep(0.2)


def pid_of(process: subprocess.Popen, module: str) -> int:
    for child in psutil.Process(process.pid).children(recursive=True):
        if module in " ".join(child.cmdline()):
            return child.pid
    raise LookupError(module)


def refusal(data_dir: Path, ports: Ports, out: Path) -> tuple[int, str, float]:
    """A second runner's exit status, output and seconds."""
    started = time.monotonic()
    code = runner(data_dir, ports, out).wait(timeout=60)
    return code, out.read_text(), time.monotonic() - started


def test_make_run_heals_refuses_a_second_start_and_leaves_nothing(tmp_path):
    data_dir, ports, terminal = tmp_path / "data", Ports.free(), tmp_path / "terminal.out"
    first = runner(data_dir, ports, terminal)
    try:
        wait_ready(ports, first)
        token = tokens.create_token(key_files(data_dir), "demo", 600)
        rest = Rest(f"http://127.0.0.1:{ports.envoy}", token)
        collection = rest.collection("door")
        name = lfw.identities()[2]
        rest.enroll(name, lfw.photos(name)[0], [collection])
        probe = [lfw.b64(lfw.crop(lfw.photos(name)[1]))]
        assert rest.search(probe, collection_id=collection).json()["data"]

        # A second start, on the same data directory or the same ports: refused at once.
        for i, other in enumerate((data_dir, tmp_path / "other")):
            code, out, seconds = refusal(other, ports, tmp_path / f"second-{i}.out")
            assert code != 0 and seconds < 15, out
            assert f"FaceSearch is already running (pid {first.pid}, port {ports.envoy})" in out, out

        # A killed indexer comes back by itself and the search answers again.
        indexer = pid_of(first, "indexer.server")
        os.kill(indexer, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (
            rest.search(probe, collection_id=collection).status_code != 200
            or pid_of(first, "indexer.server") == indexer
        ):
            assert time.monotonic() < deadline, "the indexer did not come back within 30 s"
            time.sleep(0.2)

        # One JSON object per line, for every event of every process.
        lines = terminal.read_text().splitlines()
        events = [json.loads(line) for line in lines if line.startswith("{")]
        services = {e.get("service") for e in events}
        assert {"envoy", "gateway-0", "gateway-1", "indexer", "embedder", "postgres", "redis"} <= services
        assert any(e.get("state") == "exited" and e.get("pid") == indexer for e in events)
        assert all(line.startswith("{") or not line.strip() or line.startswith(("run:", "  ")) for line in lines), [
            line for line in lines if not line.startswith("{")
        ][:5]

        # Killing the runner takes every process of the stack with it.
        pids = stack_pids(first)
        assert len(pids) >= 8
        first.kill()
        first.wait()
        wait_gone(pids, "left behind")
    finally:
        if first.poll() is None:
            first.kill()

    # The next start clears what the killed one left (its lock, PostgreSQL's
    # postmaster.pid, supervisord's socket) and serves the same data.
    again = runner(data_dir, ports, tmp_path / "again.out")
    try:
        wait_ready(ports, again)
        assert rest.search(probe, collection_id=collection).json()["data"][0]["name"] == name
        pids = stack_pids(again)
        again.send_signal(signal.SIGINT)  # Ctrl-C
        assert again.wait(timeout=60) == 0
        wait_gone(pids, "left behind after Ctrl-C")
    finally:
        if again.poll() is None:
            again.kill()
