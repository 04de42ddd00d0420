"""`fabline lots`, `lot show`, `trace`, `die-map`, and hold/release/abort/pause/confirm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.tree import Tree

from controller import lots
from controller.console import EXIT_OK, key_values, out
from controller.genealogy import store, trace
from controller.genealogy.db import Database
from controller.genealogy.models import LOT_STATES, Lot
from controller.lines import resolve_line
from drivers.errors import FablineError, ParameterError, ToolError, shown
from drivers.registry import make_driver


def _db(url: str | None) -> Database:
    db = Database(url)
    db.migrate()
    return db


def _lot_dict(lot: Lot) -> dict[str, Any]:
    return {
        "lot": lot.id,
        "recipe": lot.recipe_id,
        "version": lot.recipe_version,
        "hash": lot.recipe_hash,
        "options": lot.options,
        "state": lot.state,
        "hold_reason": lot.hold_reason,
        "priority": lot.priority,
        "step": lot.next_step,
        "steps": lot.step_count,
        "owner": lot.owner,
        "created": lot.created_at.isoformat(),
        "updated": lot.updated_at.isoformat(),
    }


def list_lots(db_url: str | None, states: list[str], as_json: bool) -> int:
    unknown = [s for s in states if s not in LOT_STATES]
    if unknown:
        raise ParameterError(
            f"unknown lot state {shown(unknown[0])!r} (states: {', '.join(LOT_STATES)})"
        )
    db = _db(db_url)
    try:
        found = db.run_sync(lambda s: store.list_lots(s, states or None))
    finally:
        db.close()
    if as_json:
        print(json.dumps([_lot_dict(lot) for lot in found]))
        return EXIT_OK
    t = Table(title=f"lots in {db.describe()}", title_justify="left")
    for col in ("lot", "recipe", "state", "step", "reason", "updated"):
        t.add_column(col, overflow="fold")
    for lot in found:
        t.add_row(
            lot.id,
            f"{lot.recipe_id} v{lot.recipe_version}",
            lot.state,
            f"{lot.next_step}/{lot.step_count}",
            lot.hold_reason or "",
            lot.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(t)
    return EXIT_OK


def show_lot(db_url: str | None, lot_id: str, as_json: bool) -> int:
    db = _db(db_url)

    def read(s: Any) -> tuple[Lot, list[Any], dict[str, int], list[dict[str, Any]]]:
        lot = store.get_lot(s, lot_id)
        return (
            lot,
            store.step_runs(s, lot_id),
            store.count_units(s, lot_id),
            store.lot_events(s, lot_id),
        )

    try:
        lot, runs, units, events = db.run_sync(read)
    finally:
        db.close()
    history = [
        {
            "index": r.step_index,
            "step": r.step_id,
            "attempt": r.attempt,
            "kind": r.kind,
            "tool": r.tool_id,
            "operation": r.operation,
            "job_id": r.job_id,
            "state": r.state,
            "setpoints": r.setpoints,
            "results": r.results,
            "message": r.message,
            "started": r.started_at.isoformat(),
            "ended": r.ended_at.isoformat() if r.ended_at else None,
        }
        for r in runs
    ]
    if as_json:
        print(json.dumps({**_lot_dict(lot), "units": units, "history": history, "events": events}))
        return EXIT_OK
    reason = f" — {lot.hold_reason}" if lot.hold_reason else ""
    out.print(f"[bold]lot {lot.id}[/]: {lot.state}{reason}")
    out.print(
        f"recipe {lot.recipe_id} v{lot.recipe_version} ({lot.recipe_hash}),"
        f" options {lot.options}; step {lot.next_step}/{lot.step_count}"
    )
    out.print("units: " + ", ".join(f"{n} {k}" for k, n in sorted(units.items())))
    t = Table(title="step history", title_justify="left")
    for col in ("#", "step", "tool", "state", "results"):
        t.add_column(col, overflow="fold")
    for h in history:
        res = " ".join(f"{k}={_short(v)}" for k, v in (h["results"] or {}).items())
        state = h["state"] + (f": {h['message']}" if h["message"] else "")
        t.add_row(str(h["index"] + 1), h["step"], h["tool"] or "external", state, res)
    out.print(t)
    out.print(f"{len(events)} MES events (last: {events[-1]['type'] if events else 'none'})")
    return EXIT_OK


def _short(v: Any) -> str:
    if isinstance(v, dict) and "value" in v:
        value = v["value"]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"{text}{v.get('unit') or ''}"
    return str(v)


def show_trace(db_url: str | None, name: str, forward: bool, as_json: bool) -> int:
    db = _db(db_url)
    try:
        nodes = db.run_sync(lambda s: (trace.forward if forward else trace.backward)(s, name))
    finally:
        db.close()
    if as_json:
        direction = "forward" if forward else "backward"
        print(
            json.dumps(
                {"unit": name, "direction": direction, "nodes": [n.to_dict() for n in nodes]}
            )
        )
        return EXIT_OK
    out.print(render_tree(nodes, forward))
    if forward:
        packages = {n.name for n in nodes if n.kind == "package"}  # reached by many paths
        out.print(f"{len(packages)} packages made from {name}")
    return EXIT_OK


def render_tree(nodes: list[trace.Node], forward: bool, max_children: int = 12) -> Tree:
    by_id = {(n.id, n.depth): n for n in nodes}
    root = nodes[0]
    tree = Tree(_label(root, forward))
    stack = [(root, tree)]
    while stack:
        node, branch = stack.pop()
        kids = [n for n in nodes if n.via == node.id and n.depth == node.depth + 1]
        for kid in kids[:max_children]:
            sub = branch.add(_label(kid, forward))
            stack.append((kid, sub))
        if len(kids) > max_children:
            more = kids[max_children:]
            kinds = ", ".join(sorted({k.kind for k in more}))
            branch.add(f"… {len(more)} more ({kinds})")
    del by_id
    return tree


def _label(n: trace.Node, forward: bool) -> str:
    pos = " ".join(f"{k}={v}" for k, v in n.position.items())
    rel = f"[dim]{n.edge_kind}[/] " if n.edge_kind else ""
    bin_ = f" [red]{n.bin}: {n.bin_reason}[/]" if n.bin == "reject" else ""
    text = f"{rel}[bold]{n.name}[/] {n.kind}" + (f" lot {n.lot_id}" if n.lot_id else "")
    text += f" {pos}" if pos else ""
    text += bin_
    if n.steps and not forward:
        tools = ", ".join(f"{st['step']}@{st['tool'] or 'external'}" for st in n.steps)
        text += f"\n[dim]steps: {tools}[/]"
    return text


def die_map(db_url: str | None, name: str, fmt: str) -> int:
    from controller.genealogy import e142

    db = _db(db_url)
    try:
        header, rows = db.run_sync(lambda s: e142.load_die_map(s, name))
    finally:
        db.close()
    if fmt == "xml":
        print(e142.die_map_xml(header, rows))
    else:
        print(json.dumps(e142.die_map_json(header, rows)))
    return EXIT_OK


async def lot_action(
    db_url: str | None, lot_id: str, action: str, reason: str | None, line_path: Path | None
) -> int:
    db = _db(db_url)
    try:
        if action == "release":
            message = await lots.release(db, lot_id, reason)
        elif action == "abort":
            message = await _abort(db, lot_id, reason, line_path)
        else:
            message = await lots.request(db, lot_id, action, reason)
    finally:
        db.close()
    out.print(message)
    return EXIT_OK


async def _abort(db: Database, lot_id: str, reason: str | None, line_path: Path | None) -> str:
    """Abort: a live controller stops its job; otherwise stop a job left on the tool here."""

    async def stop_job(tool_id: str, job_id: str) -> str:
        try:
            driver = make_driver(resolve_line(line_path).tool(tool_id))
        except FablineError as e:
            return f"could not reach {tool_id} to stop job {job_id} ({e})"
        try:
            await driver.connect()
            return await lots.stop_job_on(driver, job_id)
        except ToolError as e:
            return f"could not reach {tool_id} to stop job {job_id} ({e})"
        finally:
            await driver.close()

    return await lots.abort(db, lot_id, reason, stop_job)


async def confirm(db_url: str | None, lot_id: str, fields: list[str]) -> int:
    data = key_values(fields, "field")
    db = _db(db_url)
    try:
        out.print(await lots.confirm(db, lot_id, data))
    finally:
        db.close()
    return EXIT_OK
