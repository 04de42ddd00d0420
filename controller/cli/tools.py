"""`fabline tool ...` (alias `fabline tools`): an equipment engineer's direct access to one
tool, or every tool of a line: status, operations, a job by hand, alarms, consumables, a
qualification run; and the E10 report of the tools' recorded states."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller.cli.command import run
from controller.cli.display import EXIT_FAILED, EXIT_OK, error, job_progress, out, results_table
from controller.cli.options import DbOption, JsonOption, LineOption, key_values
from controller.equipment import E10State, Period
from controller.genealogy.db import Database
from controller.lines import resolve_line
from controller.lots.views import ToolStatusView
from controller.station.tool_report import E10ReportView, aware, report
from drivers.base import Job, JobResult, ToolDriver
from drivers.errors import ParameterError, ToolError, shown
from drivers.interface import ToolInterface
from drivers.interfaces import KINDS, interface_for
from drivers.line import Line
from drivers.registry import make_driver
from drivers.units import format_quantity

app = typer.Typer(
    help="Drive one tool of a line by hand: status, operations, qualification runs.",
    no_args_is_help=True,
)


@app.command("status")
def tool_status(
    tool: Annotated[str | None, typer.Argument(help="Tool id (default: every tool).")] = None,
    line: LineOption = None,
    as_json: JsonOption = False,
    timeout: Annotated[float, typer.Option(help="Seconds per tool.")] = 2.0,
) -> None:
    """State, job, progress, alarms and consumables of one or every tool."""

    run(lambda: show_status(line, tool, as_json=as_json, timeout=timeout))


@app.command("run")
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

    jid = job_id or f"MAN-{tool}-{time.strftime('%H%M%S')}-{secrets.token_hex(2)}"
    run(
        lambda: run_operation(
            line, tool, operation, key_values(params or [], "parameter"), jid, as_json, timeout
        )
    )


@app.command("ops")
def tool_ops(
    what: Annotated[
        str | None, typer.Argument(metavar="[KIND|TOOL]", help="A tool kind or a tool id.")
    ] = None,
    line: LineOption = None,
) -> None:
    """Operations of a tool kind with their parameters, units, ranges and defaults."""
    run(lambda: show_operations(what, line))


@app.command("clear")
def tool_clear(tool: str, line: LineOption = None) -> None:
    """Acknowledge and clear a tool's alarms."""

    run(lambda: maintenance(line, tool, "clear"))


@app.command("abort")
def tool_abort(tool: str, line: LineOption = None) -> None:
    """Abort the job a tool is running."""
    run(lambda: maintenance(line, tool, "abort"))


@app.command("replace")
def tool_replace(tool: str, consumable: str, line: LineOption = None) -> None:
    """Record that a consumable (target, bath, blade, balls) was replaced."""

    run(lambda: maintenance(line, tool, "replace", consumable))


@app.command("qualify")
def tool_qualify(line: LineOption = None, as_json: JsonOption = False) -> None:
    """Run one representative operation on every tool of a line, printing what each measured."""
    run(lambda: qualify(resolve_line(line), as_json))


@app.command("report")
def tool_report(
    start: Annotated[str, typer.Option("--from", help="Period start, ISO 8601 (UTC if no zone).")],
    end: Annotated[str | None, typer.Option("--to", help="Period end (default: now).")] = None,
    tool: Annotated[str | None, typer.Option(help="Only this tool.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """SEMI E10 time in state and metrics per tool over a period, from the tool states the
    station recorded: availability, utilisation, MTBF, MTTR, MTBA."""
    run(lambda: e10_report(db, start, end, tool, as_json))


def _when(text: str, what: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError(f"{what} {shown(text)!r} is not an ISO 8601 time") from None
    return aware(at)


def _hours(d: timedelta | None) -> str:
    if d is None:
        return "—"
    s = d.total_seconds()
    return f"{s:.3g} s" if s < 120 else f"{s / 60:.3g} min" if s < 7200 else f"{s / 3600:.3g} h"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1%}"


def e10_report(
    db_url: str | None, start: str, end: str | None, tool: str | None, as_json: bool
) -> int:
    period = Period(_when(start, "--from"), _when(end, "--to") if end else datetime.now(UTC))
    database = Database(db_url)
    try:
        database.migrate()
        rows = database.run_sync(lambda s: report(s, period, [tool] if tool else None))
    finally:
        database.close()
    if as_json:
        print(json.dumps([E10ReportView.of(r, period).model_dump(mode="json") for r in rows]))
        return EXIT_OK
    title = f"E10 {period.start:%Y-%m-%d %H:%M:%S} – {period.end:%Y-%m-%d %H:%M:%S} UTC"
    table = Table(title=title, title_justify="left")
    cols = ("tool", *(s.value for s in E10State), "unrecorded", "availability", "utilisation",
            "MTBF(p)", "MTTR", "MTBA(p)", "failures")  # fmt: skip
    for c in cols:
        table.add_column(c)
    for r in rows:
        if r.times is None or r.metrics is None:
            table.add_row(r.tool_id, *([""] * (len(cols) - 2)), "no state recorded")
            continue
        t, m = r.times, r.metrics
        table.add_row(r.tool_id, *(_hours(t.by_state[s]) for s in E10State),
                      _hours(t.unrecorded), _pct(m.operational_uptime),
                      _pct(m.operational_utilization), _hours(m.mtbf_p), _hours(m.mttr),
                      _hours(m.mtba_p), str(t.failures))  # fmt: skip
    out.print(table)
    return EXIT_OK


async def _connect(line: Line, tool_id: str, timeout: float) -> ToolDriver:
    driver = make_driver(line.tool(tool_id), timeout=timeout)
    await driver.connect()
    return driver


async def show_status(
    line_path: Path | None, tool_id: str | None, *, as_json: bool, timeout: float
) -> int:
    line = resolve_line(line_path)
    ids = [tool_id] if tool_id else line.ids()
    if tool_id:
        line.tool(tool_id)  # unknown id -> clear error

    async def one(tid: str) -> ToolStatusView:
        kind = line.tool(tid).kind
        try:
            driver = await _connect(line, tid, timeout)
            try:
                return ToolStatusView.of(kind, await driver.status())
            finally:
                await driver.close()
        except ToolError as e:
            return ToolStatusView.offline(tid, kind, str(e))

    rows = await asyncio.gather(*(one(t) for t in ids))  # an offline tool delays no other
    if as_json:
        data = [r.dump() for r in rows]
        print(json.dumps(data if tool_id is None else data[0]))
    else:
        table = Table(title=f"line '{line.line}'", title_justify="left")
        for col in ("tool", "kind", "state", "job", "progress", "alarms", "most-used consumable"):
            table.add_column(col)
        for r in rows:
            if r.error is not None:
                table.add_row(r.tool, r.kind, "[red]OFFLINE[/]", "", "", r.error, "")
                continue
            alarms = ", ".join(f"{a.code} {a.name}" for a in [*r.alarms, *r.warnings])
            worst = max(r.consumables, key=lambda c: c.used, default=None)
            cons = f"{worst.name} {worst.used:.0%}" if worst else ""
            # a GEM tool's control state is shown unless it is on-line remote
            state = r.state if r.control in (None, "REMOTE") else f"{r.state} ({r.control})"
            table.add_row(r.tool, r.kind, state, r.job_id or "", f"{r.progress:.0f}%",
                          alarms, cons)  # fmt: skip
        out.print(table)
    return EXIT_FAILED if any(r.error is not None for r in rows) else EXIT_OK


async def run_operation(
    line_path: Path | None,
    tool_id: str,
    operation: str,
    params: dict[str, str],
    job_id: str,
    as_json: bool,
    timeout: float,
) -> int:
    driver = await _connect(resolve_line(line_path), tool_id, timeout)
    try:
        job = Job(job_id, operation, params)
        op, _ = driver.validate(job)  # a bad parameter fails here, before the progress bar
        if as_json:
            result = await driver.run(job)
        else:
            with job_progress(f"{tool_id} {operation} {job_id}") as progress:
                result = await driver.run(job, on_progress=progress)
    finally:
        await driver.close()
    units = {r.name: r.unit for r in op.results}
    if as_json:
        measured = {k: {"value": v, "unit": units.get(k, "")} for k, v in result.results.items()}
        summary = {"tool": tool_id, "job_id": job_id, "operation": op.name,
                   "state": result.state.name, "results": measured}  # fmt: skip
        print(json.dumps(summary))
    else:
        out.print(results_table(f"{tool_id} {op.name}: measured", op, result.results))
    return EXIT_OK


def _ops_table(iface: ToolInterface) -> list[Table]:
    tables = []
    for op in iface.operations:
        t = Table(title=f"{iface.kind} {op.name}: {op.doc}", title_justify="left")
        for col in ("parameter", "unit", "allowed", "default"):
            t.add_column(col)
        for p in op.params:
            default = (
                "required"
                if p.default is None
                else (str(p.default) if p.is_choice else format_quantity(float(p.default), p.unit))
            )
            allowed = p.describe_range() + (f" (installed {p.setup})" if p.setup else "")
            t.add_row(p.name, p.unit, allowed, default)
        for rule in op.rules:
            t.add_row("", "", f"rule: {rule.doc}", "")
        tables.append(t)
    return tables


async def show_operations(what: str | None, line_path: Path | None) -> int:
    if what is None:
        t = Table(title="tool kinds", title_justify="left")
        for col in ("kind", "protocol", "operations"):
            t.add_column(col)
        for kind in KINDS:
            iface = interface_for(kind)
            t.add_row(kind, iface.protocol, ", ".join(o.name for o in iface.operations))
        out.print(t)
        return EXIT_OK
    if what in KINDS:
        kind = what
    else:
        try:
            kind = resolve_line(line_path).tool(what).kind
        except Exception:
            raise ParameterError(
                f"{what!r} is neither a tool kind ({', '.join(KINDS)}) nor a tool of the line"
            ) from None
    for table in _ops_table(interface_for(kind)):
        out.print(table)
    return EXIT_OK


async def maintenance(
    line_path: Path | None, tool_id: str, action: str, consumable: str = ""
) -> int:
    driver = await _connect(resolve_line(line_path), tool_id, 2.0)
    try:
        if action == "clear":
            await driver.clear_alarms()
            out.print(f"{tool_id}: alarms cleared")
        elif action == "abort":
            await driver.abort()
            out.print(f"{tool_id}: job aborted")
        else:
            await driver.replace_consumable(consumable)
            out.print(f"{tool_id}: {consumable} replaced")
    except ToolError as e:
        error(str(e))
        return EXIT_FAILED
    finally:
        await driver.close()
    return EXIT_OK


def qualification_job(driver: ToolDriver) -> tuple[str, dict[str, str]]:
    """The kind's qualification job, fitted to what is installed on this tool."""
    q = driver.interface.qualification
    return q.operation, q.job(driver.setup)


async def qualify(line: Line, as_json: bool) -> int:
    """One representative operation on every tool of the line, side by side."""
    drivers = [make_driver(t) for t in line.tools]
    await asyncio.gather(*(d.connect() for d in drivers), return_exceptions=True)

    async def one(d: ToolDriver) -> tuple[ToolDriver, str, JobResult | str]:
        op, params = qualification_job(d)
        job = Job(f"QUAL-{d.tool_id[:12]}-{int(time.time())}#{secrets.token_hex(2)}", op, params)
        try:
            if as_json:
                return d, op, await d.run(job)
            with job_progress(f"{d.tool_id} {op}") as progress:
                return d, op, await d.run(job, on_progress=progress)
        except ToolError as e:
            return d, op, str(e)

    done = await asyncio.gather(*(one(d) for d in drivers))
    await asyncio.gather(*(d.close() for d in drivers))
    failed = [(d, r) for d, _, r in done if isinstance(r, str)]
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "tool": d.tool_id,
                        "kind": d.kind,
                        "operation": op,
                        **({"error": r} if isinstance(r, str) else {"results": dict(r.results)}),
                    }
                    for d, op, r in done
                ]
            )
        )
    else:
        for d, op, r in done:
            if isinstance(r, str):
                error(r)
            else:
                title = f"{d.tool_id} ({d.kind}) {op}: measured"
                out.print(results_table(title, d.interface.operation(op), r.results))
    return EXIT_FAILED if failed else EXIT_OK
