"""Starts tritonserver on the embedder's model repository. The binary and the
Python-backend stub are the ones the nvidia-pytriton wheel ships; we serve our
own repository with them, the way the official image serves an exported one."""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytriton.utils.distribution import get_libs_path, get_root_module_path, get_stub_path

SHM_PREFIX = "facesearch_"
STUB_NAME = b"triton_python_backend_stub"  # the python backend's stub program
# Room for the largest batch in the stub's shared memory without regrowing:
# 64 detector canvases of 160x160x3 are 4.9 MB.
SHM_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]


def backends(directory: Path) -> Path:
    """A backend directory holding the Python backend and the stub built for
    this interpreter's version, linked from the wheel (nothing is copied)."""
    python = directory / "python"
    python.mkdir(parents=True, exist_ok=True)
    shipped = get_root_module_path() / "tritonserver" / "backends" / "python"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    links = {entry.name: entry for entry in shipped.iterdir()}
    links["triton_python_backend_stub"] = get_stub_path(version)
    for name, target in links.items():
        link = python / name
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return directory


def environment(base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    # The stub embeds libpython: a non-system Python (pyenv, uv) keeps it in
    # its own LIBDIR. tritonserver's own libraries ship beside the wheel.
    paths = [sysconfig.get_config_var("LIBDIR") or "", str(get_libs_path()), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = ":".join(p for p in paths if p)
    # The stub's interpreter finds this environment (and so `embedder`)
    # through the first python on PATH.
    env["PATH"] = f"{Path(sys.exec_prefix) / 'bin'}:{env.get('PATH', '')}"
    return env


def command(
    repository: Path, backend_dir: Path, bind: str, grpc_port: int, http_port: int, metrics_port: int
) -> Command:
    binary = get_root_module_path() / "tritonserver" / "bin" / "tritonserver"
    argv = [
        str(binary),
        f"--model-repository={repository}",
        f"--backend-directory={backend_dir}",
        f"--backend-config=python,shm-default-byte-size={SHM_BYTES}",
        f"--backend-config=python,shm-growth-byte-size={SHM_BYTES}",
        # Stubs' shared-memory regions must not collide with another server's.
        f"--backend-config=python,shm-region-prefix-name={SHM_PREFIX}{os.getpid()}_",
        f"--grpc-address={bind}",
        f"--grpc-port={grpc_port}",
        f"--http-address={bind}",
        f"--http-port={http_port}",
        f"--metrics-address={bind}",
        f"--metrics-port={metrics_port}",
        "--exit-on-error=true",
        "--strict-readiness=true",
        "--log-verbose=0",
    ]
    return Command(argv, environment(dict(os.environ)))


def remove_stale_regions(shm: Path = Path("/dev/shm")) -> list[Path]:
    """Shared memory left by servers that were killed (SIGKILL, OOM) before
    they could unlink it; the server's pid is in each region's name."""
    removed = []
    for region in shm.glob(f"{SHM_PREFIX}*_*"):
        if _of_dead_server(region.name):
            region.unlink(missing_ok=True)
            removed.append(region)
    return removed


def stubs(proc: Path = Path("/proc")) -> Iterator[tuple[int, str]]:
    """Running python-backend stubs: each one's pid and the shared-memory
    region its third argument names (its server's pid is in the name)."""
    for entry in proc.glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if len(argv) > 2 and argv[0].endswith(STUB_NAME):
            yield int(entry.name), argv[2].decode(errors="replace")


def stop_orphaned_stubs(proc: Path = Path("/proc")) -> list[int]:
    """Stubs of servers that were killed: a stub outlives its server, waiting
    on its shared memory, and keeps its model loaded (about 200 MB each)
    until it is killed itself."""
    stopped = []
    for pid, region in stubs(proc):
        if not _of_dead_server(region):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        stopped.append(pid)
    return stopped


def _of_dead_server(region: str) -> bool:
    """Whether a shared-memory region's name is ours and names a server pid
    that no longer runs."""
    if not region.startswith(SHM_PREFIX):
        return False
    pid = region[len(SHM_PREFIX) :].split("_", 1)[0]
    return pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True
