"""A rich progress display that library code drives through a plain (stage, done, total) callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def stage_progress(console: Console) -> Iterator:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if total == 0:
                return
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield report


def stage_lines(say: Callable[[str], None], prefix: str = "") -> Callable[[str, int, int], None]:
    """The same callback as plain lines, one per tenth of a stage: for logs (the loop, systemd, bench)."""
    last: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        tenth = done * 10 // total if total else 10
        if total and tenth != last.get(stage):
            last[stage] = tenth
            say(f"{prefix}{stage}: {done}/{total}")
    return report
