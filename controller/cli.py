"""The `fabline` command.

Every command prints one clear line for an error and exits with a distinct code (see
controller.console and drivers/errors.py): 0 ok, 1 a tool or job failed or a lot aborted,
2 bad usage or input, 3 a lot ended held, 4 a lot waits at an external step, 5 not found,
6 conflict (not in a state for that), 7 database or broker unavailable, 70 a bug.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from controller.console import EXIT_USAGE, error, key_values, out
from controller.lines import publish_running_line, resolve_line, withdraw_running_line
from controller.logs import configure_logging
from drivers.errors import (
    FablineError,
    LineError,
    ParameterError,
    RecipeError,
    exit_code,
    shown,
)
from drivers.line import load_line

app = typer.Typer(
    name="fabline",
    help="Equipment control and MES integration for an advanced-packaging line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

LineOption = Annotated[
    Path | None,
    typer.Option("--line", help="Line file (YAML/JSON); default: the running `fabline sim`."),
]
EngineLineOption = Annotated[
    Path | None,
    typer.Option(
        "--line",
        help="Line file (YAML/JSON) of the tools to drive; default: a simulated line embedded"
        " in this process.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def fail(message: str, code: int) -> NoReturn:
    error(message)
    raise typer.Exit(code)


def run(work: Callable[[], int | Coroutine[Any, Any, int | None] | None]) -> None:
    """Run a command's work: a function returning an exit code, or a coroutine to run for
    one. Everything a command does, from reading its arguments on, happens inside, so every
    fabline error becomes one line and its category's exit code (drivers/errors.py)."""
    try:
        code = work()
        if asyncio.iscoroutine(code):
            code = asyncio.run(code)
    except RecipeError as e:
        for problem in e.problems:
            error(problem)
        raise typer.Exit(exit_code(e)) from None
    except FablineError as e:
        fail(str(e), exit_code(e))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as e:  # a bug: one line for the user, the traceback kept for a developer
        fail(f"internal error ({type(e).__name__}: {shown(e)}){_keep_traceback()}", 70)
    if code:
        raise typer.Exit(code)


def _keep_traceback() -> str:
    import traceback

    from controller.lines import fabline_home

    try:
        path = fabline_home() / "crash.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {sys.argv}\n")
            f.write(traceback.format_exc())
        return f"; traceback in {path}"
    except OSError:
        return ""


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at info level.")] = False,
) -> None:
    configure_logging("info" if verbose else None)


# -- fabline sim ------------------------------------------------------------------------------


@app.command()
def sim(
    line: Annotated[
        Path | None, typer.Option("--line", help="Tools to simulate (default: one of each kind).")
    ] = None,
    time_scale: Annotated[
        float,
        typer.Option("--time-scale", help="Simulated seconds per real second ('inf': instant)."),
    ] = 1000.0,
    seed: Annotated[int, typer.Option("--seed", help="Noise seed: same seed, same results.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Start a simulated line on loopback and serve until SIGINT or SIGTERM."""
    from simulators.line import SimLine  # only this command and tests import simulators

    if not time_scale > 0:
        fail("--time-scale must be > 0 (use inf for instant jobs)", EXIT_USAGE)

    async def serve() -> None:
        spec = load_line(line) if line else None
        sl = SimLine(spec, seed=seed, time_scale=time_scale)
        try:
            running = await sl.start()
        except ValueError as e:  # e.g. a setup field in the line file
            raise LineError(f"{line}: {e}") from None
        except OSError as e:
            raise LineError(f"cannot listen: {e.strerror} (port taken?)") from None
        state = publish_running_line(running)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if as_json:
            print(json.dumps(running.model_dump(mode="json", exclude_none=True)), flush=True)
        else:
            _print_line(running, time_scale, state)
        try:
            await stop.wait()
        finally:
            await sl.stop()
            withdraw_running_line(running)

    run(lambda: serve())


def _print_line(running: Any, time_scale: float, state: Path) -> None:
    from rich.table import Table

    table = Table(title=f"simulated line '{running.line}'", title_justify="left")
    for col in ("tool", "kind", "protocol", "address"):
        table.add_column(col)
    for t in running.tools:
        table.add_row(t.id, t.kind, t.protocol, f"{t.host}:{t.port}")
    out.print(table)
    scale = "instant jobs" if math.isinf(time_scale) else f"time scale {time_scale:g}×"
    out.print(f"{scale}; line published in {state}")
    f = running.faults
    out.print(f"fault injection: `fabline fault TOOL FAULT` or JSON lines to {f.host}:{f.port}")
    out.print("Ctrl-C to stop.")
    out.file.flush()


# -- fabline fault ----------------------------------------------------------------------------


@app.command()
def fault(
    tool: Annotated[str, typer.Argument(help="Tool id, e.g. SPUT-1.")],
    kind: Annotated[
        str,
        typer.Argument(
            metavar="FAULT", help="alarm, drop, garble, stall, slow, offline, exhaust or clear."
        ),
    ],
    code: Annotated[int | None, typer.Option(help="alarm: the tool's alarm code.")] = None,
    at: Annotated[float | None, typer.Option(help="alarm: fraction of the job (0-1).")] = None,
    count: Annotated[int | None, typer.Option(help="garble/stall/slow: how many replies.")] = None,
    delay: Annotated[float | None, typer.Option(help="slow: seconds added per reply.")] = None,
    seconds: Annotated[float | None, typer.Option(help="offline: how long.")] = None,
    consumable: Annotated[str | None, typer.Option(help="exhaust: which consumable.")] = None,
    on: Annotated[
        str | None,
        typer.Option(help="garble/stall: 'start' = from the reply to the next job start."),
    ] = None,
    line: LineOption = None,
) -> None:
    """Inject a fault into a tool of a running simulated line."""
    from simulators.control import FaultRequestError, send_fault

    options = {
        "code": code,
        "at": at,
        "count": count,
        "delay": delay,
        "seconds": seconds,
        "consumable": consumable,
        "on": on,
    }
    request = {"tool": tool, "fault": kind, **{k: v for k, v in options.items() if v is not None}}

    async def inject() -> None:
        running = resolve_line(line)
        if running.faults is None:
            raise LineError(f"line {running.line!r} is not a simulated line (no fault endpoint)")
        try:
            detail = await send_fault(running.faults.host, running.faults.port, request)
        except FaultRequestError as e:
            raise ParameterError(str(e)) from None
        except OSError as e:
            raise LineError(
                f"simulated line not reachable ({e}); is `fabline sim` running?"
            ) from None
        out.print(detail)

    run(lambda: inject())


# -- fabline tool ... -------------------------------------------------------------------------

tool_app = typer.Typer(
    help="Drive one tool of a line by hand: status, operations, qualification runs.",
    no_args_is_help=True,
)
app.add_typer(tool_app, name="tool")


@tool_app.command("status")
def tool_status(
    tool: Annotated[str | None, typer.Argument(help="Tool id (default: every tool).")] = None,
    line: LineOption = None,
    as_json: JsonOption = False,
    timeout: Annotated[float, typer.Option(help="Seconds per tool.")] = 2.0,
) -> None:
    """State, job, progress, alarms and consumables of one or every tool."""
    from controller.tool_commands import show_status

    run(lambda: show_status(line, tool, as_json=as_json, timeout=timeout))


@tool_app.command("run")
def tool_run(
    tool: Annotated[str, typer.Argument(help="Tool id, e.g. SPUT-1.")],
    operation: Annotated[str, typer.Argument(help="Operation (see `fabline tool ops TOOL`).")],
    params: Annotated[
        list[str] | None, typer.Argument(metavar="KEY=VALUE...", help="e.g. power=5kW target=CU")
    ] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="Default: generated.")] = None,
    line: LineOption = None,
    as_json: JsonOption = False,
    timeout: Annotated[float, typer.Option(help="Seconds per call to the tool.")] = 2.0,
) -> None:
    """Run one operation on one tool, showing progress and the measured results."""
    from controller.tool_commands import run_operation

    jid = job_id or f"MAN-{tool}-{time.strftime('%H%M%S')}-{secrets.token_hex(2)}"
    run(
        lambda: run_operation(
            line, tool, operation, key_values(params or [], "parameter"), jid, as_json, timeout
        )
    )


@tool_app.command("ops")
def tool_ops(
    what: Annotated[
        str | None, typer.Argument(metavar="[KIND|TOOL]", help="A tool kind or a tool id.")
    ] = None,
    line: LineOption = None,
) -> None:
    """Operations of a tool kind with their parameters, units, ranges and defaults."""
    from controller.tool_commands import show_operations

    run(lambda: show_operations(what, line))


@tool_app.command("clear")
def tool_clear(tool: str, line: LineOption = None) -> None:
    """Acknowledge and clear a tool's alarms."""
    from controller.tool_commands import maintenance

    run(lambda: maintenance(line, tool, "clear"))


@tool_app.command("abort")
def tool_abort(tool: str, line: LineOption = None) -> None:
    """Abort the job a tool is running."""
    from controller.tool_commands import maintenance

    run(lambda: maintenance(line, tool, "abort"))


@tool_app.command("replace")
def tool_replace(tool: str, consumable: str, line: LineOption = None) -> None:
    """Record that a consumable (target, bath, blade, balls) was replaced."""
    from controller.tool_commands import maintenance

    run(lambda: maintenance(line, tool, "replace", consumable))


# -- fabline recipes ... ----------------------------------------------------------------------

recipes_app = typer.Typer(
    help="Recipes for the claimed methods: list, check, show expanded.", no_args_is_help=True
)
app.add_typer(recipes_app, name="recipes")


@recipes_app.command("list")
def recipes_list(as_json: JsonOption = False) -> None:
    """Every recipe: id, version, status, claims, title."""
    from controller.recipe_commands import list_recipes

    run(lambda: list_recipes(as_json))


@recipes_app.command("check")
def recipes_check(
    files: Annotated[list[Path] | None, typer.Argument(help="Default: every recipe.")] = None,
) -> None:
    """Validate recipe files: one line per problem (FILE:LINE: path: reason), exit 1."""
    from controller.recipe_commands import check_recipes

    run(lambda: check_recipes(files or []))


@recipes_app.command("show")
def recipes_show(
    recipe: Annotated[str, typer.Argument(help="Recipe id (or content hash).")],
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE, repeatable.")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Default: the highest.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The expanded step list for the given options (loops unrolled, conditions applied)."""
    from controller.recipe_commands import show_recipe

    run(lambda: show_recipe(recipe, option or [], version, as_json))


# -- lots: run, resume, inspect, administer -------------------------------------------------

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite path (default $FABLINE_DATABASE_URL,"
        " else ~/.fabline/fabline.db).",
    ),
]


def _run_options(
    db: str | None,
    line: Path | None,
    as_json: bool,
    time_scale: float,
    seed: int,
    allow_draft: bool,
    retry_budget: float,
    mqtt: str | None = None,
    station: str | None = None,
    **mes: str | None,
) -> Any:
    from controller.mes.config import mes_config
    from controller.run_commands import RunOptions

    if not time_scale > 0:  # also nan
        raise ParameterError("--time-scale must be > 0 (inf: instant jobs)")
    if not 0 <= retry_budget < math.inf:
        raise ParameterError("--retry-budget must be a number of seconds >= 0")
    return RunOptions(
        db_url=db,
        line=line,
        time_scale=time_scale,
        seed=seed,
        as_json=as_json,
        allow_draft=allow_draft,
        retry_budget=retry_budget,
        mes=mes_config(mqtt, station=station, **mes),
    )


MqttOption = Annotated[
    str | None,
    typer.Option(
        "--mqtt",
        help="MES broker mqtt[s]://[user:pass@]host[:port] (default $FABLINE_MQTT_URL;"
        " none: events go to the spool file).",
    ),
]
StationOption = Annotated[
    str | None, typer.Option("--station", help="Station name (default $FABLINE_STATION).")
]


TimeScaleOption = Annotated[
    float, typer.Option("--time-scale", help="Embedded line only: simulated s per real s.")
]
RetryOption = Annotated[
    float, typer.Option("--retry-budget", help="Seconds a tool may stay unreachable.")
]


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
    from controller.run_commands import run_command

    run(
        lambda: run_command(
            recipe,
            lot,
            option or [],
            input_ or [],
            wafers,
            priority,
            _run_options(
                db, line, as_json, time_scale, seed, allow_draft, retry_budget, mqtt, station
            ),
        )
    )


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
    from controller.run_commands import resume_command

    run(
        lambda: resume_command(
            lot, _run_options(db, line, as_json, time_scale, 0, True, retry_budget, mqtt, station)
        )
    )


@app.command("lots")
def lots_list(
    state: Annotated[list[str] | None, typer.Option(help="Only these states.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every lot: recipe, state, step, hold reason."""
    from controller.lot_commands import list_lots

    run(lambda: list_lots(db, state or [], as_json))


lot_app = typer.Typer(help="One lot: its state, step history and events.", no_args_is_help=True)
app.add_typer(lot_app, name="lot")


@lot_app.command("show")
def lot_show(lot: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    """State, step history with setpoints and results, MES events."""
    from controller.lot_commands import show_lot

    run(lambda: show_lot(db, lot, as_json))


def _lot_action(
    action: str, lot: str, reason: str | None, db: str | None, line: Path | None = None
) -> None:
    from controller.lot_commands import lot_action

    run(lambda: lot_action(db, lot, action, reason, line))


ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (recorded, sent to MES).")]


@app.command("hold")
def hold_lot(lot: str, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Hold a lot (between steps when a controller drives it)."""
    _lot_action("hold", lot, reason, db)


@app.command("release")
def release_lot(lot: str, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Release a held or paused lot; `fabline resume` then continues at the held step."""
    _lot_action("release", lot, reason, db)


@app.command("pause")
def pause_lot(lot: str, reason: ReasonOption = None, db: DbOption = None) -> None:
    """Pause a lot after its current step."""
    _lot_action("pause", lot, reason, db)


@app.command("abort")
def abort_lot(
    lot: str, reason: ReasonOption = None, db: DbOption = None, line: LineOption = None
) -> None:
    """Abort a lot: stop the tool's job, hold the material as aborted."""
    _lot_action("abort", lot, reason, db, line)


@app.command("confirm")
def confirm_lot(
    lot: str,
    fields: Annotated[list[str] | None, typer.Argument(metavar="FIELD=VALUE...")] = None,
    db: DbOption = None,
) -> None:
    """Confirm the external step a lot waits at, with the returned material's data."""
    from controller.lot_commands import confirm

    run(lambda: confirm(db, lot, fields or []))


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
    from controller.lot_commands import show_trace

    run(lambda: show_trace(db, unit, forward, as_json))


@app.command("die-map")
def die_map_cmd(
    unit: Annotated[str, typer.Argument(help="A diced wafer, stack, panel or strip.")],
    fmt: Annotated[str, typer.Option("--format", help="xml (SEMI E142 style) or json.")] = "xml",
    db: DbOption = None,
) -> None:
    """Which position of a diced unit became which package, with its bin."""
    from controller.lot_commands import die_map

    if fmt not in ("xml", "json"):
        fail("--format is xml or json", EXIT_USAGE)
    run(lambda: die_map(db, unit, fmt))


# -- the main job and tool qualification -----------------------------------------------------


@app.command()
def demo(
    db: DbOption = None,
    time_scale: TimeScaleOption = 2e4,
    seed: Annotated[int, typer.Option(help="Noise seed of the embedded line.")] = 0,
    as_json: JsonOption = False,
    traces: Annotated[
        bool, typer.Option("--traces/--no-traces", help="Print one trace per flow.")
    ] = True,
    mqtt: MqttOption = None,
    station: StationOption = None,
) -> None:
    """The main job: every claimed flow (every recipe, default options), one lot each, on the
    embedded simulated line; a summary and one backward trace per flow."""
    from controller.demo import run_all_flows

    run(
        lambda: run_all_flows(
            _run_options(db, None, as_json, time_scale, seed, False, 30.0, mqtt, station), traces
        )
    )


# -- fabline mes ... --------------------------------------------------------------------------

mes_app = typer.Typer(
    help="The MES lot-tracking hook: event schemas, relay, status, station service.",
    no_args_is_help=True,
)
app.add_typer(mes_app, name="mes")
SiteOption = Annotated[str | None, typer.Option("--site", help="Site (default $FABLINE_SITE).")]
CaOption = Annotated[str | None, typer.Option("--mqtt-ca", help="CA file for mqtts://.")]
ClientsOption = Annotated[
    str | None,
    typer.Option("--clients", help="YAML file of MES client secrets (or $FABLINE_MES_CLIENTS)."),
]


@mes_app.command("schema")
def mes_schema(
    directory: Annotated[Path, typer.Argument(help="Where to write the schemas.")] = Path(
        "mes-schema"
    ),
) -> None:
    """Write a JSON Schema for every event type and for commands."""
    from controller.mes.schema import write_schemas

    def write() -> int:
        for p in write_schemas(directory):
            out.print(str(p))
        return 0

    run(write)


@mes_app.command("status")
def mes_status(
    db: DbOption = None,
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Broker connection, pending and sent events, age of the oldest pending one."""
    from controller.mes.config import mes_config
    from controller.mes.service import status_command

    run(
        lambda: status_command(
            db, mes_config(mqtt, station=station, site=site, ca_file=ca), as_json
        )
    )


@mes_app.command("relay")
def mes_relay(
    db: DbOption = None,
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep publishing until stopped.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(help="Give up after this many seconds without reaching the broker."),
    ] = 30.0,
) -> None:
    """Publish the events waiting in the outbox (after an outage or a crash)."""
    from controller.mes.config import mes_config
    from controller.mes.service import relay_command

    run(
        lambda: relay_command(
            db, mes_config(mqtt, station=station, site=site, ca_file=ca), follow, timeout
        )
    )


@mes_app.command("serve")
def mes_serve(
    line: EngineLineOption = None,
    db: DbOption = None,
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    clients: ClientsOption = None,
    time_scale: TimeScaleOption = 2e4,
    retry_budget: RetryOption = 30.0,
) -> None:
    """Serve the station: take MES commands (dispatch, hold, release, abort), run dispatched
    lots on the line (embedded simulated line by default), publish every event."""
    from controller.mes.station import serve_command

    configure_logging(None, default="info")  # a daemon's log is its record (-v or FABLINE_LOG)

    run(
        lambda: serve_command(
            _run_options(
                db,
                line,
                False,
                time_scale,
                0,
                False,
                retry_budget,
                mqtt,
                station,
                site=site,
                ca_file=ca,
                clients_file=clients,
            )
        )
    )


@mes_app.command("send")
def mes_send(
    command: Annotated[str, typer.Argument(help="dispatch, hold, release or abort.")],
    lot: Annotated[str, typer.Option("--lot", help="Lot id.")],
    recipe: Annotated[str | None, typer.Option(help="dispatch: recipe id.")] = None,
    version: Annotated[int | None, typer.Option(help="dispatch: recipe version.")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", "-i")] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    client: Annotated[str, typer.Option(help="MES client id to sign as.")] = "mes",
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    clients: ClientsOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 10.0,
) -> None:
    """Send one signed command to a station, as an MES would, and print its reply."""
    from controller.mes.config import mes_config
    from controller.mes.service import send_command

    def work() -> Coroutine[Any, Any, int]:
        body: dict[str, Any] = {"command": command, "lot_id": lot}
        if recipe:
            body["recipe"] = {"id": recipe, **({"version": version} if version else {})}
        if option:
            body["options"] = key_values(option, "option")
        if input_:
            body["inputs"] = {
                k: int(v) if v.isdigit() else v.split(",")
                for k, v in key_values(input_, "input").items()
            }
        if reason:
            body["reason"] = reason
        if not 0 < timeout < math.inf:
            raise ParameterError("--timeout must be a number of seconds > 0")
        config = mes_config(mqtt, station=station, site=site, ca_file=ca, clients_file=clients)
        return send_command(config, body, client, timeout)

    run(work)


@tool_app.command("qualify")
def tool_qualify(line: LineOption = None, as_json: JsonOption = False) -> None:
    """Run one representative operation on every tool of a line, printing what each measured."""
    from controller.demo import qualify

    run(lambda: qualify(resolve_line(line), as_json))


def main() -> None:
    app()
