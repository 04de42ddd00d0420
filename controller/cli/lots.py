"""Lots from a terminal: `fabline run`, `resume`, `lots`, `lot show`, `hold`, `release`,
`pause`, `abort`, `confirm`; lot operations: `lot split`, `lot merge`, `lot scrap`, `lot
rework`; genealogy: `trace`, `die-map`.

`run` and `resume` open a station (controller/station/runtime.py) for the lot, on the embedded
simulated line or on the tools of `--line`. When a live station already drives those tools
(or the lot's station is live), the lot is handed to it and followed, never run by a second
controller on the same tools.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from sqlalchemy.orm import Session

from controller.access import Actor
from controller.cli.command import fail, run
from controller.cli.display import (
    EXIT_OK,
    EXIT_USAGE,
    Display,
    lots_exit_code,
    out,
    print_outcomes,
)
from controller.cli.options import (
    DbOption,
    EngineLineOption,
    JsonOption,
    LineOption,
    MqttOption,
    ReasonOption,
    RetryOption,
    StationOption,
    TimeScaleOption,
    key_values,
    station_config,
)
from controller.engine import Outcome
from controller.genealogy import lineage, spc_store, store, trace
from controller.genealogy.db import Database
from controller.genealogy.models import LOT_STATES, Lot, StepRun
from controller.lines import resolve_line
from controller.lots import (
    STOPPED,
    HoldReason,
    LotDetail,
    LotRequest,
    LotService,
    LotView,
    StepRunView,
    plan,
    sort_maps,
    stop_job_on,
)
from controller.lots.carriers import CarrierSpec
from controller.lots.operations import Done
from controller.lots.views import history, summarise
from controller.recipes import find
from controller.station import registry
from controller.station.runtime import Station, StationConfig
from drivers.errors import FablineError, ParameterError, ToolError, UnitNotFound, shown
from drivers.registry import make_driver

app = typer.Typer()
lot_app = typer.Typer(help="One lot: its state, step history and events.", no_args_is_help=True)
app.add_typer(lot_app, name="lot")

T = TypeVar("T")


# -- run and resume --------------------------------------------------------------------------


@app.command("run")
def run_lot(
    recipe: Annotated[str, typer.Argument(help="Recipe id (see `fabline recipes list`).")],
    lot: Annotated[str, typer.Option("--lot", help="New lot id.")],
    wafers: Annotated[int | None, typer.Option(help="Number of wafers (slots 1..N).")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE, repeatable.")
    ] = None,
    input_: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="NAME=COUNT or NAME=ID,ID,... (repeatable)."),
    ] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first.")] = 0,
    sort_map: Annotated[
        list[str] | None,
        typer.Option(
            "--sort-map",
            help="WAFER=FILE or WAFER:LAYER=FILE: an incoming wafer-sort map, E142 XML or"
            " JSON (repeatable).",
        ),
    ] = None,
    sort_yield: Annotated[
        float | None,
        typer.Option(help="Wafers without a map get one the simulated upstream generates."),
    ] = None,
    sort_seed: Annotated[int, typer.Option(help="Seed of the generated sort maps.")] = 0,
    carrier: Annotated[
        str | None,
        typer.Option(help="FOUP or cassette id the first input (the wafers) arrives in."),
    ] = None,
    slots: Annotated[
        str | None, typer.Option(help="Their slots in the carrier, e.g. 1,2,5 (default 1..N).")
    ] = None,
    line: EngineLineOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    time_scale: TimeScaleOption = 2e4,
    seed: Annotated[int, typer.Option(help="Embedded line: noise seed.")] = 0,
    allow_draft: Annotated[bool, typer.Option("--allow-draft", help="Run a draft recipe.")] = False,
    retry_budget: RetryOption = 30.0,
    mqtt: MqttOption = None,
    station: StationOption = None,
) -> None:
    """Create a lot and run it. With no --line the embedded simulated line runs in-process.

    Exit 0 completed, 3 held (reason printed), 4 waiting at an external step, 2 bad usage or
    an invalid recipe, 1 aborted or failed."""

    def work() -> Coroutine[Any, Any, int]:
        config = station_config(
            db=db, line=line, time_scale=time_scale, seed=seed, retry_budget=retry_budget,
            allow_draft=allow_draft, mqtt=mqtt, station=station,
        )  # fmt: skip
        request = lot_request(recipe, lot, option or [], input_ or [], wafers, priority)
        if sort_map or sort_yield is not None:
            request = with_sort_maps(request, sort_map or [], sort_yield, sort_seed, allow_draft)
        if carrier is not None or slots is not None:
            request = with_carrier(request, carrier, slots)
        return _run(config, request, as_json)

    run(work)


def with_carrier(request: LotRequest, carrier: str | None, slots: str | None) -> LotRequest:
    """The request with `--carrier ID [--slots 1,2,5]` for the recipe's first input."""
    if carrier is None:
        raise ParameterError("--slots: name the carrier they are in (--carrier FOUP-7)")
    first = next(iter(find(request.recipe).recipe.inputs))
    try:
        numbers = [int(x) for x in slots.split(",")] if slots else None
        spec = CarrierSpec(id=carrier, slots=numbers)
    except ValueError as e:
        why = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        raise ParameterError(f"--carrier/--slots: {why}") from None
    return request.model_copy(update={"carriers": {first: spec}})


def lot_request(
    recipe: str,
    lot_id: str,
    options: list[str],
    inputs: list[str],
    wafers: int | None,
    priority: int,
) -> LotRequest:
    """The request `--lot/--wafers/-o/-i/--priority` state."""
    given: dict[str, int | list[str]] = {}
    for name, value in key_values(inputs, "input").items():
        given[name] = int(value) if value.isdigit() else value.split(",")
    if wafers is not None:
        loaded = find(recipe)
        counted = next(
            (n for n, s in loaded.recipe.inputs.items() if s.kind == "wafer" and s.count), None
        )
        if counted is None:
            raise ParameterError(f"recipe {loaded.recipe.id} takes no counted wafers (--input)")
        given[counted] = wafers
    return LotRequest(
        lot_id=lot_id,
        recipe=recipe,
        options=key_values(options, "option"),
        inputs=given,
        priority=priority,
    )


def with_sort_maps(
    request: LotRequest,
    files: list[str],
    sort_yield: float | None,
    seed: int,
    allow_draft: bool,
) -> LotRequest:
    """The request with `--sort-map WAFER=FILE` documents and `--sort-yield`, checked here so
    an error names the file."""
    paths = key_values(files, "sort map")
    maps: dict[str, str] = {}
    for key, path in paths.items():
        try:
            maps[key] = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ParameterError(f"sort map {shown(key)}: cannot read {shown(path)}: {e}") from None
    try:
        request = request.model_copy(
            update={"sort_maps": maps, "sort_yield": sort_yield, "sort_seed": seed}
        )
        LotRequest.model_validate(request.model_dump())  # the field limits, as a door checks
    except ValidationError as e:
        raise ParameterError(f"--sort-yield/--sort-seed: {e.errors()[0]['msg']}") from None
    plan(request, allow_draft=allow_draft, labels={k: f"{p} ({k})" for k, p in paths.items()})
    return request


async def _run(config: StationConfig, request: LotRequest, as_json: bool) -> int:
    if config.line is not None:
        tools = registry.tool_addresses(resolve_line(config.line))
        owner = await _with_db(config, lambda s: registry.station_for_tools(s, tools))
        if owner is not None:  # its tools are a live station's: the station runs the lot
            return await _hand_over(config, request, owner.name, as_json)
    with Display(as_json) as display:
        async with Station(config, notify=display) as st:
            await st.lots.create(request)
            outcome = await st.run_lot(request.lot_id)
    print_outcomes([outcome], as_json)
    return lots_exit_code([outcome])


async def _hand_over(
    config: StationConfig, request: LotRequest, station: str, as_json: bool
) -> int:
    db = await _open(config.database_url)
    try:
        service = LotService(db, station=station, allow_draft=config.allow_draft)
        await service.create(request, owner=None)
        outcome = await follow(db, request.lot_id, station, as_json)
    finally:
        db.close()
    print_outcomes([outcome], as_json)
    return lots_exit_code([outcome])


@app.command("resume")
def resume_lot(
    lot: Annotated[str, typer.Argument(help="Lot id.")],
    line: EngineLineOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    time_scale: TimeScaleOption = 2e4,
    retry_budget: RetryOption = 30.0,
    mqtt: MqttOption = None,
    station: StationOption = None,
) -> None:
    """Resume a lot after a crash, a release or a confirmation: re-attach to its job by id."""

    def work() -> Coroutine[Any, Any, int]:
        config = station_config(
            db=db, line=line, time_scale=time_scale, retry_budget=retry_budget,
            allow_draft=True, mqtt=mqtt, station=station,
        )  # fmt: skip
        return _resume(config, lot, as_json)

    run(work)


async def _resume(config: StationConfig, lot_id: str, as_json: bool) -> int:
    def live(s: Session) -> str | None:
        st = registry.live_station(s, store.get_lot(s, lot_id).station)
        return st.name if st is not None else None

    owner = await _with_db(config, live)
    if owner is not None:  # a live station owns the lot's line: it runs the lot
        db = await _open(config.database_url)
        try:
            outcome = await follow(db, lot_id, owner, as_json)
        finally:
            db.close()
    else:
        with Display(as_json) as display:
            async with Station(config, notify=display) as st:
                outcome = await st.run_lot(lot_id)
    print_outcomes([outcome], as_json)
    return lots_exit_code([outcome])


async def follow(db: Database, lot_id: str, station: str, quiet: bool) -> Outcome:
    """Show a lot that station `station` runs, step by step, until it stops."""
    if not quiet:
        out.print(f"lot {lot_id} is run by station {station}; following it (Ctrl-C stops)")
    shown_runs, first = 0, None

    def read(s: Session) -> tuple[Lot, list[StepRun], dict[str, int]]:
        return store.get_lot(s, lot_id), store.step_runs(s, lot_id), store.count_units(s, lot_id)

    while True:
        lot, runs, units = await db.run(read)
        first = len(runs) if first is None else first
        for r in runs[shown_runs:]:
            if not quiet:
                print(f"{lot_id}: step {r.step_index + 1}/{lot.step_count} {r.step_id}"
                      f" on {r.tool_id or 'external'}", flush=True)  # fmt: skip
        shown_runs = len(runs)
        if lot.state in STOPPED:  # queued or running: the station has it in hand
            steps = sum(1 for r in runs[first:] if r.state in ("done", "confirmed"))
            return Outcome(lot_id, lot.state, lot.hold_reason, steps, units, lot.hold_kind)
        await asyncio.sleep(0.25)


# -- looking at lots -------------------------------------------------------------------------


@app.command("lots")
def lots_list(
    state: Annotated[list[str] | None, typer.Option(help="Only these states.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every lot: recipe, state, step, hold reason."""
    run(lambda: list_lots(db, state or [], as_json))


def list_lots(db_url: str | None, states: list[str], as_json: bool) -> int:
    unknown = [s for s in states if s not in LOT_STATES]
    if unknown:
        raise ParameterError(
            f"unknown lot state {shown(unknown[0])!r} (states: {', '.join(LOT_STATES)})"
        )

    def read(s: Session) -> tuple[list[Lot], dict[str, list[str]]]:
        lots = store.list_lots(s, states or None)
        return lots, spc_store.open_violations_by_lot(s, [lot.id for lot in lots])

    (found, spc), where = _read(db_url, read)
    if as_json:
        print(json.dumps([LotView.of(lot).dump() for lot in found]))
        return EXIT_OK
    t = Table(title=f"lots in {where}", title_justify="left")
    for col in ("lot", "recipe", "state", "step", "reason", "updated"):
        t.add_column(col, overflow="fold")
    for lot in found:
        reason = f"[{lot.hold_kind}] {lot.hold_reason}" if lot.hold_reason else ""
        warned = spc.get(lot.id, [])
        if warned and lot.hold_kind != "spc":  # a warning: the lot runs on
            more = f" (+{len(warned) - 1} more)" if len(warned) > 1 else ""
            reason = "; ".join([*([reason] if reason else []), f"[spc] {warned[0]}{more}"])
        t.add_row(lot.id, f"{lot.recipe_id} v{lot.recipe_version}", lot.state,
                  f"{lot.next_step}/{lot.step_count}", escape(reason),
                  lot.updated_at.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    out.print(t)
    return EXIT_OK


@lot_app.command("show")
def lot_show(
    lot: str,
    db: DbOption = None,
    as_json: JsonOption = False,
    pieces: Annotated[
        bool, typer.Option("--pieces", help="every job and piece with its own results")
    ] = False,
) -> None:
    """State, steps (pieces, tools, min / mean / max of each result), MES events."""
    run(lambda: show_lot(db, lot, as_json, pieces))


def show_lot(db_url: str | None, lot_id: str, as_json: bool, pieces: bool = False) -> int:
    def read(s: Session) -> LotDetail:
        lot = store.get_lot(s, lot_id)
        return LotDetail(
            **LotView.of(lot).model_dump(),
            units=store.count_units(s, lot_id),
            history=history(s, lot_id),
            events=store.lot_events(s, lot_id),
            operations=[lineage.describe(k) for k in lineage.of_lot(s, lot_id)],
        )

    detail, _ = _read(db_url, read)
    if as_json:
        print(json.dumps(detail.dump()))
        return EXIT_OK
    reason = f" — [{detail.hold_kind}] {detail.hold_reason}" if detail.hold_reason else ""
    out.print(f"[bold]lot {detail.lot}[/]: {detail.state}{reason}")
    out.print(
        f"recipe {detail.recipe} v{detail.version} ({detail.hash}),"
        f" options {detail.options}; step {detail.step}/{detail.steps}"
    )
    units = ", ".join(f"{n} {k}" for k, n in sorted(detail.units.items()))
    out.print("units: " + (units or "none (scrapped or moved to other lots)"))
    out.print(_piece_table(detail.history) if pieces else _step_table(detail.history))
    for op in detail.operations:  # split, merge, rework loops (the events say the same)
        out.print(_operation(op))
    last = detail.events[-1]["type"] if detail.events else "none"
    out.print(f"{len(detail.events)} MES events (last: {last})")
    return EXIT_OK


def _step_table(runs: list[StepRunView]) -> Table:
    """One row a step: its pieces and tools, each result's min / mean / max over pieces."""
    t = Table(title="steps", title_justify="left")
    for col in ("#", "step", "tools", "pieces", "state", "results (min / mean / max)"):
        t.add_column(col, overflow="fold")
    by_index = {}
    for h in runs:
        by_index[h.index] = h  # the newest run's message stands for the step
    for sm in summarise(runs):
        last = by_index[sm.index]
        states = ", ".join(f"{n} {st}" if n > 1 else st for st, n in sm.states.items())
        if last.message:
            states += f": {last.message}"
        res = " ".join(
            f"{k}={_num(r.mean)}{r.unit}"
            if _num(r.min) == _num(r.max)
            else f"{k}={_num(r.min)}/{_num(r.mean)}/{_num(r.max)}{r.unit}"
            for k, r in sm.results.items()
        )
        t.add_row(str(sm.index + 1), sm.step, " ".join(sm.tools) or "external",
                  str(sm.pieces), states, res)  # fmt: skip
    return t


def _piece_table(runs: list[StepRunView]) -> Table:
    """Every job, and under a job of several pieces each piece with its own results."""
    t = Table(title="steps by job and piece", title_justify="left")
    for col in ("#", "step", "tool", "job", "piece", "state", "results"):
        t.add_column(col, overflow="fold")
    for h in runs:
        state = h.state + (f": {h.message}" if h.message else "")
        per = h.pieces if h.piece_count else {"(lot)": h.results}
        if not per:  # a job that did not finish: no piece results
            per = {h.piece or "(lot)": {}}
        for i, (name, results) in enumerate(per.items()):
            res = " ".join(f"{k}={_short(v)}" for k, v in results.items())
            first = i == 0
            t.add_row(str(h.index + 1) if first else "", h.step if first else "",
                      (h.tool or "external") if first else "", (h.job_id or "") if first else "",
                      name, state if first else "", res)  # fmt: skip
    return t


def _num(x: float) -> str:
    return f"{x:.4g}"


def _short(v: Any) -> str:
    if isinstance(v, dict) and "value" in v:
        value = v["value"]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"{text}{v.get('unit') or ''}"
    return str(v)


# -- hold, release, pause, abort, confirm ---------------------------------------------------


def _service(db_url: str | None, line: Path | None = None) -> tuple[LotService, Database]:
    db = Database(db_url)
    db.migrate()

    async def stop_job(tool_id: str, job_id: str) -> str:
        """No controller drives the lot: stop a job it left running, as its station would."""
        try:
            driver = make_driver(resolve_line(line).tool(tool_id))
        except FablineError as e:
            return f"could not reach {tool_id} to stop job {job_id} ({e})"
        try:
            await driver.connect()
            return await stop_job_on(driver, job_id)
        except ToolError as e:
            return f"could not reach {tool_id} to stop job {job_id} ({e})"
        finally:
            await driver.close()

    return LotService(db, station="", stop_job=stop_job), db


def _lot_command(
    db_url: str | None,
    act: Callable[[LotService], Coroutine[Any, Any, str]],
    line: Path | None = None,
) -> None:
    async def work() -> int:
        service, db = _service(db_url, line)
        try:
            out.print(await act(service))
        finally:
            db.close()
        return EXIT_OK

    run(work)


def _operator(reason: str | None, what: str) -> HoldReason:
    return HoldReason("operator", reason or f"{what} requested")


@app.command("hold")
def hold_lot(lot: str, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Hold a lot (between steps when a controller drives it)."""
    _lot_command(db, lambda s: s.hold(lot, _operator(reason, "hold"), Actor.cli()))


@app.command("release")
def release_lot(lot: str, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Release a held or paused lot; its station, or `fabline resume`, runs it on."""
    _lot_command(db, lambda s: s.release(lot, reason, Actor.cli()))


@app.command("pause")
def pause_lot(lot: str, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Pause a lot after its current step."""
    _lot_command(db, lambda s: s.pause(lot, _operator(reason, "pause"), Actor.cli()))


@app.command("abort")
def abort_lot(
    lot: str, reason: ReasonOption = None, db: DbOption = None, line: LineOption = None
) -> None:
    """Abort a lot at once: its running job is stopped on the tool."""
    _lot_command(db, lambda s: s.abort(lot, _operator(reason, "abort"), Actor.cli()), line)


@app.command("confirm")
def confirm_lot(
    lot: str,
    fields: Annotated[list[str] | None, typer.Argument(metavar="FIELD=VALUE...")] = None,
    db: DbOption = None,
) -> None:
    """Confirm the external step a lot waits at, with the returned material's data."""
    _lot_command(db, lambda s: s.confirm(lot, key_values(fields or [], "field"), actor=Actor.cli()))


# -- split, merge, scrap, rework --------------------------------------------------------------

UnitsArg = Annotated[list[str] | None, typer.Argument(metavar="UNIT...", help="Unit names.")]
CommentOption = Annotated[
    str | None, typer.Option("--comment", help="Why (recorded, sent to MES).")
]


@lot_app.command("split")
def split_lot(
    lot: Annotated[str, typer.Argument(help="The lot to split.")],
    units: UnitsArg = None,
    into: Annotated[
        str | None, typer.Option("--into", help="Child lot id (default: LOT.1, LOT.2, ...).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Move units of a held, paused or queued lot into a new child lot at the same step."""
    _lot_command(db, lambda s: _said(s.split(lot, units or [], into, Actor.cli())))


@lot_app.command("merge")
def merge_lots(
    lot: Annotated[str, typer.Argument(help="The lot kept.")],
    others: Annotated[list[str], typer.Argument(metavar="OTHER...", help="Lots merged into it.")],
    db: DbOption = None,
) -> None:
    """Merge lots of the same recipe version, options, next step and state into LOT."""
    _lot_command(db, lambda s: _said(s.merge(lot, others, Actor.cli())))


@lot_app.command("scrap")
def scrap_lot(
    lot: Annotated[str, typer.Argument(help="The lot.")],
    units: UnitsArg = None,
    code: Annotated[
        str | None, typer.Option("--code", help="Scrap code (BROKEN, CONTAMINATED, OOS, ...).")
    ] = None,
    comment: CommentOption = None,
    db: DbOption = None,
) -> None:
    """Scrap the named units of a lot, or the whole lot when none are named."""
    actor = Actor.cli().because(code, comment)
    _lot_command(db, lambda s: _said(s.scrap(lot, units or [], code, comment, actor)))


@lot_app.command("rework")
def rework_lot(
    lot: Annotated[str, typer.Argument(help="The lot.")],
    route: Annotated[str, typer.Option("--route", help="A rework route of the lot's recipe.")],
    units: Annotated[
        list[str] | None,
        typer.Option("--unit", "-u", help="Only these units: split into a child lot first."),
    ] = None,
    into: Annotated[str | None, typer.Option("--into", help="Child lot id (with --unit).")] = None,
    comment: CommentOption = None,
    db: DbOption = None,
) -> None:
    """Send a lot (or a child lot of some of its units) back by its recipe's rework route;
    it is queued at the route's step (`fabline resume` runs it)."""
    actor = Actor.cli().because(None, comment)
    _lot_command(
        db,
        lambda s: _said(
            s.rework(lot, route, units=units or [], child_id=into, comment=comment, actor=actor)
        ),
    )


async def _said(done: Coroutine[Any, Any, Done]) -> str:
    return (await done).message


# -- genealogy -------------------------------------------------------------------------------


@app.command("trace")
def trace_unit(
    unit: Annotated[str, typer.Argument(help="A unit: package, wafer, stack, consumable lot.")],
    forward: Annotated[
        bool, typer.Option("--forward/--backward", help="Default: backward.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Backward: what a package is made of (dies, wafers, lots, consumables, tools, step data).
    Forward: every package a wafer or consumable lot went into."""
    run(lambda: show_trace(db, unit, forward, as_json))


def show_trace(db_url: str | None, name: str, forward: bool, as_json: bool) -> int:
    nodes, _ = _read(db_url, lambda s: (trace.forward if forward else trace.backward)(s, name))
    if as_json:
        direction = "forward" if forward else "backward"
        data = {"unit": name, "direction": direction, "nodes": [n.to_dict() for n in nodes]}
        print(json.dumps(data))
        return EXIT_OK
    out.print(render_tree(nodes, forward))
    if forward:
        packages = {n.name for n in nodes if n.kind == "package"}  # reached by many paths
        out.print(f"{len(packages)} packages made from {name}")
    return EXIT_OK


def render_tree(nodes: list[trace.Node], forward: bool, max_children: int = 12) -> Tree:
    root = nodes[0]
    tree = Tree(_label(root, forward))
    stack = [(root, tree)]
    while stack:
        node, branch = stack.pop()
        kids = [n for n in nodes if n.via == node.id and n.depth == node.depth + 1]
        for kid in kids[:max_children]:
            stack.append((kid, branch.add(_label(kid, forward))))
        if len(kids) > max_children:
            more = kids[max_children:]
            kinds = ", ".join(sorted({k.kind for k in more}))
            branch.add(f"… {len(more)} more ({kinds})")
    return tree


def _label(n: trace.Node, forward: bool) -> str:
    pos = " ".join(f"{k}={v}" for k, v in n.position.items())
    rel = f"[dim]{n.edge_kind}[/] " if n.edge_kind else ""
    bin_ = f" [red]{n.bin}: {n.bin_reason}[/]" if n.bin in ("reject", "scrapped") else ""
    text = f"{rel}[bold]{n.name}[/] {n.kind}" + (f" lot {n.lot_id}" if n.lot_id else "")
    text += f" {pos}" if pos else ""
    text += bin_
    if n.steps and not forward:
        tools = ", ".join(f"{st['step']}@{st['tool'] or 'external'}" for st in n.steps)
        text += f"\n[dim]steps: {tools}[/]"
    for op in n.operations if not forward else []:
        text += f"\n[yellow]{_operation(op)}[/]"
    return text


def _operation(op: dict[str, Any]) -> str:
    """A lot operation a unit went through, as a trace line."""
    if op["kind"] == "rework":
        return (
            f"rework loop in lot {op['to_lot']}: after step {op['from_step']} back to step"
            f" {op['to_step']} ({op.get('reason', '')})"
        )
    return f"{op['kind']}: lot {op['from_lot']} → lot {op['to_lot']} before step {op['next_step']}"


@app.command("die-map")
def die_map_cmd(
    unit: Annotated[
        str,
        typer.Argument(
            help="A diced wafer, stack, panel or strip; or a wafer's incoming sort map."
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help="xml (SEMI E142 style) or json.")] = "xml",
    db: DbOption = None,
) -> None:
    """Which position of a diced unit became which package, with its bin. Before dicing: the
    wafer's (stack's) incoming sort map, good or reject by position."""
    if fmt not in ("xml", "json"):
        fail("--format is xml or json", EXIT_USAGE)
    run(lambda: die_map(db, unit, fmt))


def die_map(db_url: str | None, name: str, fmt: str) -> int:
    from controller.genealogy import e142

    def read(s: Session) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        try:
            return e142.load_die_map(s, name)
        except UnitNotFound:  # not diced yet: its incoming wafer-sort map, if it came with one
            unit = store.unit_by_name(s, name)
            if unit is not None:
                incoming = sort_maps.incoming_die_map(
                    unit.name, unit.kind, unit.lot_id, unit.attributes or {}
                )
                if incoming is not None:
                    return incoming
            raise

    (header, rows), _ = _read(db_url, read)
    if fmt == "xml":
        print(e142.die_map_xml(header, rows))
    else:
        print(json.dumps(e142.die_map_json(header, rows)))
    return EXIT_OK


# -- the database ----------------------------------------------------------------------------


def _read(db_url: str | None, fn: Callable[[Session], T]) -> tuple[T, str]:
    db = Database(db_url)
    try:
        db.migrate()
        return db.run_sync(fn), db.describe()
    finally:
        db.close()


async def _open(url: str | None) -> Database:
    db = Database(url)
    await asyncio.get_running_loop().run_in_executor(None, db.migrate)
    return db


async def _with_db(config: StationConfig, fn: Callable[[Session], T]) -> T:
    db = await _open(config.database_url)
    try:
        return await db.run(fn)
    finally:
        db.close()
