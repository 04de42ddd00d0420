"""`fabline tool ...`: an equipment engineer's direct access to one tool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from controller.console import EXIT_FAILED, EXIT_OK, error, job_progress, out, results_table
from controller.lines import resolve_line
from drivers.base import Job, ToolDriver, ToolStatus
from drivers.errors import ParameterError, ToolError
from drivers.interface import ToolInterface
from drivers.interfaces import KINDS, interface_for
from drivers.line import Line
from drivers.registry import make_driver
from drivers.units import format_quantity


async def _connect(line: Line, tool_id: str, timeout: float) -> ToolDriver:
    driver = make_driver(line.tool(tool_id), timeout=timeout)
    await driver.connect()
    return driver


def _status_dict(st: ToolStatus) -> dict[str, Any]:
    return {
        "tool": st.tool_id,
        "state": st.state.name,
        "job_id": st.job_id,
        "progress": st.progress,
        "alarms": [{"code": a.code, "name": a.name, "text": a.text} for a in st.alarms],
        "warnings": [{"code": a.code, "name": a.name, "text": a.text} for a in st.warnings],
        "consumables": [
            {
                "name": c.name,
                "level": c.level,
                "limit": c.limit,
                "unit": c.unit,
                "used": round(c.used_fraction, 4),
            }
            for c in st.consumables
        ],
        "setup": {k: list(v) for k, v in st.setup.items()},
        "control": st.control.name if st.control is not None else None,
    }


async def show_status(
    line_path: Path | None, tool_id: str | None, *, as_json: bool, timeout: float
) -> int:
    line = resolve_line(line_path)
    ids = [tool_id] if tool_id else line.ids()
    if tool_id:
        line.tool(tool_id)  # unknown id -> clear error
    rows: list[dict[str, Any]] = []
    for tid in ids:
        entry = line.tool(tid)
        try:
            driver = await _connect(line, tid, timeout)
            try:
                row = _status_dict(await driver.status())
            finally:
                await driver.close()
        except ToolError as e:
            row = {"tool": tid, "state": "OFFLINE", "error": str(e)}
        rows.append({"kind": entry.kind, **row})
    if as_json:
        print(json.dumps(rows if tool_id is None else rows[0]))
    else:
        table = Table(title=f"line '{line.line}'", title_justify="left")
        for col in ("tool", "kind", "state", "job", "progress", "alarms", "most-used consumable"):
            table.add_column(col)
        for r in rows:
            if r["state"] == "OFFLINE":
                table.add_row(r["tool"], r["kind"], "[red]OFFLINE[/]", "", "", r["error"], "")
                continue
            alarms = ", ".join(f"{a['code']} {a['name']}" for a in r["alarms"] + r["warnings"])
            worst = max(r["consumables"], key=lambda c: c["used"], default=None)
            cons = f"{worst['name']} {worst['used']:.0%}" if worst else ""
            control = r["control"]  # GEM tools: shown unless on-line remote
            state = r["state"] if control in (None, "REMOTE") else f"{r['state']} ({control})"
            table.add_row(r["tool"], r["kind"], state, r["job_id"] or "",
                          f"{r['progress']:.0f}%", alarms, cons)  # fmt: skip
        out.print(table)
    return EXIT_FAILED if any(r["state"] == "OFFLINE" for r in rows) else EXIT_OK


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
