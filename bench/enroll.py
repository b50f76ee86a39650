"""`facesearch enroll` against the API's own rate, in one run: the 1,300
lfw-dev persons (the 300 identities' first photos and the 1,000
distractors, each cut to its portrait as bench/search.py enrolls them) as a
folder of one subfolder per person, enrolled by the command with 4 workers,
next to a plain loop of 4 REST clients posting the same files (the
strongest baseline: no listing, no progress, no report). Then the command
once more on the same folder: the resume path, which finds every person
there and sends nothing.

    python -m bench.enroll
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.table import Table

from bench.common import console, timed_loop
from bench.search import gallery
from devkit import lfw
from devkit.client import Rest
from devkit.stack import Stack

WORKERS = 4
FACESEARCH = Path(sys.executable).parent / "facesearch"


def folder(root: Path) -> list[tuple[str, Path]]:
    people = []
    for name, photo in gallery():
        (root / name).mkdir(parents=True)
        path = root / name / "1.jpg"
        lfw.portrait(photo).save(path, quality=92)
        people.append((name, path))
    return people


def command(stack: Stack, source: Path, report: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(FACESEARCH),
            "enroll",
            str(source),
            "--collection",
            "cli",
            "--create",
            "--url",
            stack.rest,
            "--workers",
            str(WORKERS),
            "--report",
            str(report),
        ],
        env={"FACESEARCH_TOKEN": stack.token(), "PATH": str(FACESEARCH.parent), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    summary = (done.stderr + done.stdout).strip().splitlines()
    return seconds, "\n".join(line for line in summary if "enrolled" in line or re.match(r"\s+\d+ \w+$", line))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), lfw.evaluation_model()).running() as stack:
        people = folder(Path(tmp) / "people")
        rest = Rest(stack.rest, stack.token())
        collection = rest.collection("api")
        refused: dict[str, int] = {}

        def post(person: tuple[str, Path]):
            name, path = person
            image = base64.b64encode(path.read_bytes()).decode()

            def run() -> int:
                r = rest.post("/persons", {"name": name, "images": [image], "collections": [collection]})
                if r.status_code != 200:
                    reason = r.json().get("error", str(r.status_code))
                    refused[reason] = refused.get(reason, 0) + 1
                return 1

            return run

        api = timed_loop("REST loop", [post(p) for p in people], WORKERS)
        cli_s, cli_said = command(stack, Path(tmp) / "people", Path(tmp) / "report.jsonl")
        resume_s, resume_said = command(stack, Path(tmp) / "people", Path(tmp) / "report-again.jsonl")

    table = Table(title=f"enrolling {len(people):,} lfw-dev persons, {WORKERS} in flight, through Envoy")
    for column in ("how", "persons/s", "seconds", "ratio to the REST loop"):
        table.add_column(column, justify="right")
    table.add_row("REST loop (baseline)", f"{api.rate:.1f}", f"{api.seconds:.1f}", "1.00x")
    cli_rate = len(people) / cli_s
    table.add_row("facesearch enroll (wall clock)", f"{cli_rate:.1f}", f"{cli_s:.1f}", f"{cli_rate / api.rate:.2f}x")
    table.add_row("facesearch enroll again (all there)", "", f"{resume_s:.1f}", "")
    console.print(table)
    console.print(f"REST loop refusals: {refused or 'none'}")
    console.print(f"the command said:\n{cli_said}\nthen, run again:\n{resume_said}")


if __name__ == "__main__":
    main()
