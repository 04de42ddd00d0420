"""Terminal output shared by the commands: one-line errors, exit codes, progress of jobs and
lots, result tables."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from controller.engine import (
    LotStopped,
    Outcome,
    StepBegan,
    StepDone,
    StepProgress,
)
from controller.engine import (
    Progress as LotProgress,
)
from drivers.base import ProgressCallback
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


def lots_exit_code(outcomes: Sequence[Outcome]) -> int:
    states = {o.state for o in outcomes}
    if states <= {"completed"}:
        return EXIT_OK
    if "held" in states:
        return EXIT_HELD
    if "waiting" in states:
        return EXIT_WAITING
    return EXIT_FAILED


def print_outcomes(outcomes: Sequence[Outcome], as_json: bool) -> None:
    if as_json:
        data = [o.__dict__ for o in outcomes]
        print(json.dumps(data[0] if len(data) == 1 else data))
        return
    for o in outcomes:
        units = ", ".join(f"{n} {k}" for k, n in sorted(o.units.items()))
        reason = f" — {o.hold_reason}" if o.hold_reason else ""
        out.print(f"lot {o.lot_id}: [bold]{o.state}[/]{reason}; {o.steps_run} steps run; {units}")


class Display:
    """Progress of running lots: bars on a terminal, one line per step when piped."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty() and not quiet
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Display:
        if self.tty:
            self.progress = Progress(
                TextColumn("{task.fields[lot]:<12}"),
                BarColumn(bar_width=24),
                TextColumn("{task.completed:>3.0f}/{task.total:.0f}"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=out,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)

    def __call__(self, message: LotProgress) -> None:
        m = message
        if self.quiet:
            return
        if self.progress is None:  # piped: one line per step and per stop
            if isinstance(m, StepBegan):
                print(
                    f"{m.lot_id}: step {m.index + 1}/{m.total} {m.step_id} on {m.tool}", flush=True
                )
            elif isinstance(m, LotStopped):
                print(f"{m.lot_id}: {_stopped(m)}", flush=True)
            return
        bar = self.progress
        task = self.tasks.get(m.lot_id)
        if task is None:
            total = m.total if isinstance(m, StepBegan) else 1
            task = self.tasks[m.lot_id] = bar.add_task("", total=total, lot=m.lot_id)
        match m:
            case StepBegan():
                bar.update(task, completed=m.index, description=f"{m.step_id} on {m.tool}")
            case StepProgress():
                bar.update(task, completed=m.index + m.percent / 100.0)
            case StepDone():
                bar.update(task, completed=m.index + 1)
            case LotStopped():
                bar.update(task, description=_stopped(m))


def _stopped(m: LotStopped) -> str:
    return f"{m.state}{f' — {m.reason}' if m.reason else ''}"
