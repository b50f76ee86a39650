"""supervisord's event listener for `make run`: every line a program of the
stack writes, and every change of a program's state (started, exited,
restarting, given up), printed on the terminal as one JSON object per line.

A line that is already a JSON object (the gateway's, the indexers', the
embedder's) keeps its fields and gains `service`; any other line (Envoy,
redis-server, PostgreSQL, tritonserver) becomes {"ts", "service", "event":
the line}. Runs under supervisord (devkit/supervise.py), which sends it
PROCESS_LOG and PROCESS_STATE events on stdin and copies what it writes on
stderr to its own stdout.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from supervisor import childutils


def event_line(service: str, text: str) -> str:
    """One event of a program's output (a line, or a traceback) as a JSON line."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return json.dumps({"service": service, **parsed})
    return json.dumps({"ts": round(time.time(), 3), "service": service, "event": stripped})


def state_line(headers: dict[str, str], payload: dict[str, str]) -> str:
    state = headers["eventname"].removeprefix("PROCESS_STATE_").lower()
    event: dict[str, Any] = {
        "ts": round(time.time(), 3),
        "service": payload["processname"],
        "event": "supervisor",
        "state": state,
        "from": payload.get("from_state", "").lower(),
    }
    if "pid" in payload:
        event["pid"] = int(payload["pid"])
    if "expected" in payload:
        event["expected"] = payload["expected"] == "1"
    return json.dumps(event)


class Lines:
    """Events out of the chunks a program writes, per program: each complete
    line, but a Python traceback (from its header to its first line that is
    not indented, the exception) as one event."""

    def __init__(self) -> None:
        self.partial: dict[str, str] = {}
        self.traceback: dict[str, list[str]] = {}

    def feed(self, service: str, data: str) -> list[str]:
        text = self.partial.pop(service, "") + data
        *lines, rest = text.split("\n")
        if rest:
            self.partial[service] = rest
        events = []
        for line in lines:
            held = self.traceback.get(service)
            if held is not None:
                held.append(line)
                if line and not line[0].isspace():  # the exception's own line ends it
                    events.append("\n".join(self.traceback.pop(service)))
            elif line.startswith("Traceback (most recent call last):"):
                self.traceback[service] = [line]
            elif line.strip():
                events.append(line)
        return events


def main() -> None:
    protocol = childutils.EventListenerProtocol()
    lines = Lines()
    while True:
        headers, body = protocol.wait(sys.stdin, sys.stdout)
        name = headers["eventname"]
        if name.startswith("PROCESS_LOG"):
            payload, data = childutils.eventdata(body)
            for line in lines.feed(payload["processname"], data):
                print(event_line(payload["processname"], line), file=sys.stderr, flush=True)
        elif name.startswith("PROCESS_STATE"):
            print(state_line(headers, childutils.get_headers(body)), file=sys.stderr, flush=True)
        protocol.ok(sys.stdout)


if __name__ == "__main__":
    main()
