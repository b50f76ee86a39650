"""`facesearch enroll`'s terminal side: a rich progress bar with persons/s
and time left, Ctrl-C as a clean stop, the summary and the report."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from . import enroll

INTERRUPTED = 130  # the shell's status for SIGINT


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.1f} persons/s")


def enroll_with_progress(
    source: Path, collection: str, create: bool, url: str, token: str, workers: int, report: Path
) -> int:
    """Runs an enrollment; returns the exit status."""
    console = Console(stderr=True)
    listed = enroll.entries(source)

    async def main() -> tuple[enroll.Summary, int]:
        api = enroll.Api(url, token)
        stop = asyncio.Event()

        def interrupted() -> None:
            console.print("stopping: waiting for the enrollments in flight (run it again to resume)")
            stop.set()

        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted)
        try:
            target = await api.collection(collection, create)
            todo = await enroll.missing(api, listed, target)
            columns = (
                TextColumn("enrolling"),
                BarColumn(),
                MofNCompleteColumn(),
                RateColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=console) as progress:
                bar = progress.add_task("enroll", total=len(todo))
                summary = await enroll.run(api, todo, target, workers, stop, on_done=lambda e, f: progress.advance(bar))
            return summary, len(listed) - len(todo)
        finally:
            await api.close()

    try:
        summary, already = asyncio.run(main())
    except enroll.EnrollError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    enroll.write_report(report, summary)
    console.print(
        f"{summary.enrolled} enrolled in {summary.seconds:.1f} s ({summary.rate:.1f} persons/s), "
        f"{already} already there, {len(summary.failures)} failed"
        + (f" (listed in {report})" if summary.failures else "")
    )
    for reason, count in Counter(f.reason for f in summary.failures).most_common():
        console.print(f"  {count} {reason}")
    if summary.interrupted:
        return INTERRUPTED
    return 1 if summary.failures else 0
