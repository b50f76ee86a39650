"""PostgreSQL for the local stack: Debian's server on loopback, its data
directory under $FACESEARCH_DATA_DIR/postgres, created by initdb on first
start (with the `facesearch` database and role, trusted on loopback only).
The Procfile runs it; it ends by exec'ing the server, so the pid that `make
run` and the tests hold is the postmaster's, and SIGTERM stops it.

PostgreSQL refuses to run as root. As root (this project's VMs), the server
runs as the `postgres` user that Debian's package creates; its data
directory is given to that user and the directories above it are made
traversable (o+x, not readable) so that it can reach it.

    POSTGRES_PORT=5432 FACESEARCH_DATA_DIR=.data python -m devkit.postgres
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "facesearch"
DATABASE = "facesearch"


def bin_dir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not versions:
        sys.exit("PostgreSQL is not installed: `make postgresql` installs Debian's (or set DATABASE_URL)")
    return Path(versions[-1])


def url(port: int, host: str = "127.0.0.1") -> str:
    return f"postgresql://{USER}@{host}:{port}/{DATABASE}"


def _as_server_user(data: Path) -> list[str]:
    """The command prefix that runs as the server's user, after giving it `data`."""
    if os.geteuid() != 0:
        return []
    owner = pwd.getpwnam("postgres")
    for directory in [data, *data.parents]:
        if directory == data:
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            os.chmod(directory, 0o700)
        else:
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(directory, mode | stat.S_IXOTH)
    # Changing user clears a parent-death signal set before (devkit/supervise.py):
    # set it again as that user, so the server still dies with its supervisor.
    return [
        "setpriv",
        f"--reuid={owner.pw_uid}",
        f"--regid={owner.pw_gid}",
        "--clear-groups",
        "--pdeathsig",
        "KILL",
        "--",
    ]


def initialise(data: Path, prefix: list[str], bin: Path) -> None:
    subprocess.run(
        [*prefix, str(bin / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-locale"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # Single-user mode creates the database before the server first listens.
    subprocess.run(
        [*prefix, str(bin / "postgres"), "--single", "-D", str(data), "postgres"],
        input=f"CREATE DATABASE {DATABASE};\n".encode(),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def wait_ready(url: str, timeout_s: float = 60) -> None:
    """Until the server at `url` accepts sessions (it listens before it does)."""
    import asyncio

    import asyncpg

    async def attempt() -> None:
        connection = await asyncpg.connect(url, timeout=2)
        await connection.close()

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            asyncio.run(attempt())
            return
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.InvalidCatalogNameError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def running(data_dir: Path, port: int) -> Iterator[str]:
    """A server of its own for tests and benches, on `port`; yields its URL
    and stops it by pid."""
    log = (data_dir / "postgres.log").open("ab")
    env = {**os.environ, "FACESEARCH_DATA_DIR": str(data_dir), "POSTGRES_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "devkit.postgres"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited with {process.returncode}: see {data_dir / 'postgres.log'}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("postgres did not listen in 60 s") from None
                time.sleep(0.1)
        yield url(port)
    finally:
        process.send_signal(signal.SIGINT)  # fast shutdown: sessions are cut, not waited for
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def clear_stale_lock(data: Path) -> bool:
    """Removes postmaster.pid when the postmaster it names is gone (a run that
    was killed): PostgreSQL would refuse to start while its pid is reused."""
    lock = data / "postmaster.pid"
    try:
        pid = int(lock.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        with open(f"/proc/{pid}/comm") as comm:
            if comm.read().strip() == "postgres":
                return False  # alive: PostgreSQL itself refuses a second server
    except OSError:
        pass
    lock.unlink(missing_ok=True)
    return True


def main() -> None:
    data = Path(os.environ.get("FACESEARCH_DATA_DIR", ".data")).resolve() / "postgres"
    port = os.environ.get("POSTGRES_PORT", "5432")
    data.mkdir(parents=True, exist_ok=True)
    bin = bin_dir()
    prefix = _as_server_user(data)
    if not (data / "PG_VERSION").exists():
        initialise(data, prefix, bin)
    if clear_stale_lock(data):
        print("postgres: removed the stale postmaster.pid of a server that is gone", file=sys.stderr, flush=True)
    command = [
        *prefix,
        str(bin / "postgres"),
        "-D",
        str(data),
        "-p",
        port,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
    ]
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
