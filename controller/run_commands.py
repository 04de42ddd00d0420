"""`fabline run` and `fabline resume`: drive lots on a line, showing progress.

With no `--line` the embedded simulated line starts in-process (the zero-set-up default) and
external steps are confirmed at once by a simulated partner; with `--line FILE` the tools of
that line are driven and external steps wait for `fabline confirm`.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session

from controller.console import EXIT_FAILED, EXIT_HELD, EXIT_OK, EXIT_WAITING, key_values, out
from controller.engine.engine import Engine, EngineSettings, Outcome
from controller.engine.lotspec import LotSpec, build_inputs, parse_input_arg, supply_sources
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot, StepRun
from controller.lines import resolve_line
from controller.mes.config import MesConfig, mes_config
from controller.mes.service import mes_hook
from controller.recipes import find
from controller.station.registry import live_station, station_for_tools, tool_addresses
from drivers.errors import ParameterError
from drivers.line import Line
from drivers.registry import make_driver


@dataclass
class RunOptions:
    db_url: str | None = None
    line: Path | None = None
    time_scale: float = 2e4
    seed: int = 0
    as_json: bool = False
    allow_draft: bool = False
    retry_budget: float = 30.0
    mes: MesConfig = field(default_factory=lambda: mes_config(None))


def exit_code(outcomes: Sequence[Outcome]) -> int:
    states = {o.state for o in outcomes}
    if states <= {"completed"}:
        return EXIT_OK
    if "held" in states:
        return EXIT_HELD
    if "waiting" in states:
        return EXIT_WAITING
    return EXIT_FAILED


class Display:
    """Progress of running lots: bars on a terminal, one line per step when piped."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty() and not quiet
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.done: dict[str, int] = {}

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

    def __call__(self, lot_id: str, what: str, info: dict[str, Any]) -> None:
        if self.quiet:
            return
        step = info.get("step")
        if self.progress is not None:
            if lot_id not in self.tasks:
                total = info.get("total", 1)
                self.tasks[lot_id] = self.progress.add_task("", total=total, lot=lot_id)
            task = self.tasks[lot_id]
            if what == "step" and step is not None:
                self.progress.update(
                    task, completed=step.index, description=f"{step.id} on {info.get('tool')}"
                )
            elif what == "progress" and step is not None:
                self.progress.update(task, completed=step.index + info["percent"] / 100.0)
            elif what == "done" and step is not None:
                self.progress.update(task, completed=step.index + 1)
            elif what == "state":
                self.progress.update(task, description=_state_text(info))
            return
        if what == "step" and step is not None:
            print(
                f"{lot_id}: step {step.index + 1}/{info.get('total')} {step.id}"
                f" on {info.get('tool')}",
                flush=True,
            )
        elif what == "state":
            print(f"{lot_id}: {_state_text(info)}", flush=True)


def _state_text(info: Mapping[str, Any]) -> str:
    reason = f" — {info['reason']}" if info.get("reason") else ""
    return f"{info['state']}{reason}"


@asynccontextmanager
async def engine_for(
    opts: RunOptions, display: Display, *, with_hook: bool = True
) -> AsyncIterator[tuple[Engine, Line]]:
    """An engine on the embedded simulated line, or on the tools of --line."""
    async with AsyncExitStack() as stack:
        embedded = opts.line is None
        line: Line
        if embedded:
            from simulators.line import SimLine  # only the embedded default imports simulators

            sim = SimLine(
                time_scale=opts.time_scale if opts.time_scale > 0 else math.inf, seed=opts.seed
            )
            await stack.enter_async_context(sim)
            line = sim.describe()
        else:
            line = resolve_line(opts.line)
        db = Database(opts.db_url)
        stack.callback(db.close)
        await _migrate(db)
        settings = EngineSettings(
            station=opts.mes.station,
            retry_budget=opts.retry_budget,
            auto_confirm=embedded,
            allow_draft=opts.allow_draft,
        )
        engine = Engine(db, [make_driver(t) for t in line.tools], settings, notify=display)
        stack.push_async_callback(engine.close)
        await engine.connect()
        if with_hook:  # every controller publishes its events (or spools them) as it runs
            await stack.enter_async_context(mes_hook(db, opts.mes))
            await stack.enter_async_context(_monitoring(engine))
        yield engine, line


@asynccontextmanager
async def _monitoring(engine: Engine) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.monitor_tools(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


async def _migrate(db: Database) -> None:
    await asyncio.get_running_loop().run_in_executor(None, db.migrate)


def summary(o: Outcome) -> dict[str, Any]:
    return asdict(o)


def print_outcomes(outcomes: Sequence[Outcome], as_json: bool) -> None:
    if as_json:
        data = [summary(o) for o in outcomes]
        print(json.dumps(data[0] if len(data) == 1 else data))
        return
    for o in outcomes:
        units = ", ".join(f"{n} {k}" for k, n in sorted(o.units.items()))
        reason = f" — {o.hold_reason}" if o.hold_reason else ""
        out.print(f"lot {o.lot_id}: [bold]{o.state}[/]{reason}; {o.steps_run} steps run; {units}")


async def run_command(
    recipe_id: str,
    lot_id: str,
    options: list[str],
    inputs: list[str],
    wafers: int | None,
    priority: int,
    opts: RunOptions,
) -> int:
    given_opts = key_values(options, "option")
    loaded = find(recipe_id)
    given_inputs: dict[str, Any] = dict(parse_input_arg(i) for i in inputs)
    if wafers is not None:
        name = next(
            (n for n, s in loaded.recipe.inputs.items() if s.kind == "wafer" and s.count), None
        )
        if name is None:
            raise ParameterError(f"recipe {loaded.recipe.id} takes no counted wafers (--input)")
        given_inputs[name] = wafers
    loaded.expand(given_opts)  # an impossible combination fails before anything starts
    spec = LotSpec(
        lot_id,
        loaded,
        given_opts,
        build_inputs(lot_id, loaded, given_inputs),
        priority,
        supply_sources(lot_id, loaded, given_inputs),
    )
    if opts.line is not None:
        line = resolve_line(opts.line)
        station = await _station_of(opts, lambda s: station_for_tools(s, tool_addresses(line)))
        if station is not None:  # its tools are a live station's: the station runs the lot
            db = Database(opts.db_url)
            try:
                await _migrate(db)
                creator = Engine(db, [], EngineSettings(allow_draft=opts.allow_draft))
                await creator.create_lot(spec, owner=None, station=station)
                outcome = await follow(db, lot_id, station, opts.as_json)
            finally:
                db.close()
            print_outcomes([outcome], opts.as_json)
            return exit_code([outcome])
    with Display(opts.as_json) as display:
        async with engine_for(opts, display) as (engine, _line):
            await engine.create_lot(spec)
            outcome = await engine.run_lot(lot_id)
    print_outcomes([outcome], opts.as_json)
    return exit_code([outcome])


async def resume_command(lot_id: str, opts: RunOptions) -> int:
    db = Database(opts.db_url)
    try:
        await _migrate(db)

        def station_of_lot(s: Session) -> str | None:
            st = live_station(s, store.get_lot(s, lot_id).station)
            return st.name if st is not None else None

        station = await db.run(station_of_lot)
        if station is not None:  # a live station owns the lot's line: it runs the lot
            outcome = await follow(db, lot_id, station, opts.as_json)
            print_outcomes([outcome], opts.as_json)
            return exit_code([outcome])
    finally:
        db.close()
    with Display(opts.as_json) as display:
        async with engine_for(opts, display) as (engine, _line):
            outcome = await engine.run_lot(lot_id)
    print_outcomes([outcome], opts.as_json)
    return exit_code([outcome])


async def _station_of(opts: RunOptions, find: Any) -> str | None:
    db = Database(opts.db_url)
    try:
        await _migrate(db)
        st = await db.run(find)
        return st.name if st is not None else None
    finally:
        db.close()


STOPPED = ("completed", "held", "aborted", "waiting", "paused", "scrapped")


async def follow(db: Database, lot_id: str, station: str, quiet: bool) -> Outcome:
    """Show a lot that station `station` runs, step by step, until it stops."""
    if not quiet:
        out.print(
            f"lot {lot_id} is run by station {station}; following it (Ctrl-C stops following)"
        )
    shown = -1
    started = None
    while True:

        def read(s: Session) -> tuple[Lot, list[StepRun], dict[str, int]]:
            lot = store.get_lot(s, lot_id)
            return lot, store.step_runs(s, lot_id), store.count_units(s, lot_id)

        lot, runs, units = await db.run(read)
        started = started if started is not None else len(runs)
        for r in runs[shown + 1 :]:
            if not quiet:
                print(
                    f"{lot_id}: step {r.step_index + 1}/{lot.step_count} {r.step_id}"
                    f" on {r.tool_id or 'external'}",
                    flush=True,
                )
        shown = len(runs) - 1
        if lot.state in STOPPED:  # queued or running: the station has it in hand
            steps = sum(1 for r in runs[started:] if r.state in ("done", "confirmed"))
            return Outcome(lot_id, lot.state, lot.hold_reason, steps, units)
        await asyncio.sleep(0.25)
