"""The local stack under supervisord, for `make run` and the tests alike.

supervisord (Supervisor 4) restarts a process that dies, with its backoff
for one that keeps failing to start, and stops everything in order on
SIGINT or SIGTERM. What it does not promise, that nothing outlives it, each
program's command adds: it runs under `setpriv --pdeathsig KILL` (util-linux),
so the kernel kills it the moment supervisord is gone, however supervisord
went (devkit/postgres.py sets it again after dropping to the postgres user,
which clears it). PostgreSQL's own children leave when their postmaster does.

`config()` writes the configuration; `Supervisor` drives a running
supervisord through its XML-RPC interface on a unix socket (what
supervisorctl uses): the pid of a program, stop, start, signal.
"""

from __future__ import annotations

import http.client
import shlex
import sys
import time
import xmlrpc.client
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

# Start order: what others connect to first. supervisord does not wait for
# readiness; each service waits for its own dependencies.
PRIORITY = {"postgres": 10, "redis": 10, "embedder": 20, "indexer": 30, "gateway": 40, "envoy": 50}
# PostgreSQL's fast shutdown (SIGINT) cuts sessions instead of waiting for them.
STOP_SIGNAL = {"postgres": "INT"}
# A program that dies within this many seconds of its start has failed to
# start: supervisord retries it after 1, 2, 3... s, STARTRETRIES times.
START_SECONDS = 2
START_RETRIES = 30


@dataclass(frozen=True)
class Program:
    name: str
    command: str  # a shell command line; its variables come from `env`
    env: Mapping[str, str]  # on top of supervisord's own environment
    autostart: bool = True

    @property
    def kind(self) -> str:
        return self.name.split("-")[0]


def _quoted(value: str) -> str:
    """A value in supervisord's INI: `%` doubled (its interpolation), quoted."""
    return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'


def config(programs: list[Program], folder: Path, root: Path, log_events: bool = False) -> Path:
    """supervisord.conf for `programs`, with its socket, pid file and each
    program's log file (`<name>.log`) in `folder`. With `log_events`, every
    line a program writes and every change of its state also go to
    devkit.logstream, which prints them on supervisord's stdout as one JSON
    object per line (`make run`)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={folder / 'supervisord.log'}",
        "logfile_maxbytes=10MB",
        "logfile_backups=1",
        f"pidfile={folder / 'supervisord.pid'}",
        f"childlogdir={folder}",
        "silent=true",
        "",
        "[unix_http_server]",
        f"file={socket_path(folder)}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    for program in programs:
        command = f"setpriv --pdeathsig KILL -- /bin/sh -c {shlex.quote('exec ' + program.command)}"
        lines += [
            f"[program:{program.name}]",
            f"command={command.replace('%', '%%')}",
            f"directory={root}",
            f"priority={PRIORITY.get(program.kind, 60)}",
            f"autostart={'true' if program.autostart else 'false'}",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            f"stopsignal={STOP_SIGNAL.get(program.kind, 'TERM')}",
            "stopwaitsecs=20",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={folder / (program.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=1",
            f"stdout_events_enabled={'true' if log_events else 'false'}",
        ]
        if program.env:
            lines.append("environment=" + ",".join(f"{k}={_quoted(v)}" for k, v in program.env.items()))
        lines.append("")
    if log_events:
        lines += [
            "[eventlistener:logstream]",
            f"command={sys.executable} -m devkit.logstream",
            f"directory={root}",
            "events=PROCESS_LOG,PROCESS_STATE",
            "buffer_size=65536",
            "priority=1",
            "autorestart=true",
            "stderr_logfile=/dev/stdout",
            "stderr_logfile_maxbytes=0",
            "",
        ]
    path = folder / "supervisord.conf"
    path.write_text("\n".join(lines))
    return path


def socket_path(folder: Path) -> Path:
    return folder / "supervisor.sock"


class Supervisor:
    """A running supervisord, through its XML-RPC interface."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.rpc: Any = self._proxy()

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{socket_path(self.folder)}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def up(self) -> bool:
        try:
            return self.rpc.supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            self.rpc = self._proxy()  # a failed call leaves the transport's connection unusable
            return False

    def wait_up(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.up():
            if time.monotonic() > deadline:
                raise TimeoutError(f"supervisord did not answer on {socket_path(self.folder)} in {timeout_s:.0f} s")
            time.sleep(0.1)

    def info(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.rpc.supervisor.getProcessInfo(name)
        return found

    def states(self) -> dict[str, str]:
        return {p["name"]: p["statename"] for p in self.rpc.supervisor.getAllProcessInfo()}

    def pid(self, name: str) -> int:
        """The program's pid; 0 while it is not running."""
        return int(self.info(name)["pid"])

    def start(self, name: str) -> None:
        """Starts it, and waits until supervisord counts it started."""
        if self.info(name)["statename"] not in ("RUNNING", "STARTING"):
            self.rpc.supervisor.startProcess(name, True)

    def stop(self, name: str) -> None:
        """Stops it with its stop signal; it stays stopped until started."""
        if self.info(name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
            try:
                self.rpc.supervisor.stopProcess(name, True)
            except xmlrpc.client.Fault as fault:
                if "NOT_RUNNING" not in fault.faultString:
                    raise

    def signal(self, name: str, signal: str) -> None:
        self.rpc.supervisor.signalProcess(name, signal)

    def shutdown(self) -> None:
        self.rpc.supervisor.shutdown()
