"""Terminal output shared by the commands: one-line errors, progress, result tables."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drivers.base import ProgressCallback
from drivers.errors import ParameterError, shown
from drivers.interface import JobState, Operation
from drivers.units import format_quantity


def _width(stream: TextIO) -> int | None:
    """Rich wraps at 80 columns when piped; logs and CI are wider than that."""
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return 132


out = Console(highlight=False, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, width=_width(sys.stderr))

# Exit codes shared by every command; an error's code is its category's (drivers/errors.py:
# 2 usage, 5 not found, 6 conflict, 7 a service unavailable, 1 a tool, 70 a bug)
EXIT_OK = 0
EXIT_FAILED = 1  # a tool or job failed (alarm, offline, refused by the tool), or a lot aborted
EXIT_USAGE = 2  # bad usage, bad parameter, invalid recipe or line file
EXIT_HELD = 3  # a lot ended held
EXIT_WAITING = 4  # a lot waits at an external step for its confirmation


def key_values(items: list[str], what: str) -> dict[str, str]:
    """KEY=VALUE arguments (options, inputs, confirmed fields): each key once."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ParameterError(f"{what} {shown(item)!r} is not KEY=VALUE")
        if key in out:
            raise ParameterError(f"{what} {shown(key)!r} given twice")
        out[key] = value
    return out


def error(message: str) -> None:
    """One line on stderr; never a traceback."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True, highlight=False)


@contextmanager
def job_progress(label: str) -> Iterator[ProgressCallback]:
    """A progress callback: a bar on a terminal, a plain line per 10 % when piped."""
    if sys.stdout.isatty():
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=out,
            transient=False,
        ) as bar:
            task = bar.add_task(label, total=100.0, state="")

            def update(percent: float, state: JobState) -> None:
                bar.update(task, completed=percent, state=state.name.lower())

            yield update
        return
    last = [-10.0]

    def plain(percent: float, state: JobState) -> None:
        if percent >= last[0] + 10 or state.finished:
            last[0] = percent
            print(f"{label}: {percent:5.1f}% {state.name.lower()}", flush=True)

    yield plain


def results_table(title: str, op: Operation, results: Mapping[str, float]) -> Table:
    units = {r.name: r.unit for r in op.results}
    table = Table(title=title, title_justify="left")
    table.add_column("result")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, value in results.items():
        table.add_row(name, format_quantity(value, ""), units.get(name, ""))
    return table
