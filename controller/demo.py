"""The main job and the tool qualification run.

`fabline demo` runs every claimed flow — every recipe, default options, one lot each — on
the embedded simulated line, then prints a summary and one backward trace per flow.
`fabline tool qualify` runs one representative operation on every tool of a line.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from rich.table import Table

from controller.console import EXIT_FAILED, EXIT_HELD, EXIT_OK, error, job_progress, out
from controller.engine.engine import Outcome
from controller.engine.lotspec import LotSpec, build_inputs, supply_sources
from controller.genealogy import trace
from controller.lot_commands import render_tree
from controller.recipes import catalog
from controller.run_commands import Display, RunOptions, engine_for, exit_code
from drivers.base import Job, JobResult, ToolDriver
from drivers.errors import ToolError
from drivers.line import Line
from drivers.registry import make_driver

# One representative qualification job per tool kind: (operation, parameters)
DEMO_JOBS: dict[str, tuple[str, dict[str, str]]] = {
    "sputter": (
        "seed_stack",
        {
            "barrier": "TI",
            "barrier_thickness": "100 nm",
            "seed_thickness": "300 nm",
            "power": "6 kW",
        },
    ),
    "plating": (
        "electroplate",
        {
            "chemistry": "CU_ACID",
            "thickness": "5 µm",
            "current_density": "20 mA/cm²",
            "feature": "RDL",
            "open_area": "30 %",
        },
    ),
    "bonder": (
        "w2w_adhesive",
        {
            "adhesive": "BCB",
            "adhesive_thickness": "4 µm",
            "temp": "250 °C",
            "force": "10 kN",
            "time": "60 min",
        },
    ),
    "ball": (
        "wafer_bump",
        {
            "alloy": "SAC305",
            "ball_size": "D300",
            "ball_count": "5000",
            "pitch": "500 µm",
            "pad_diameter": "250 µm",
            "flux_thickness": "120 µm",
            "peak_temp": "245 °C",
        },
    ),
    "coater": ("spin_coat", {"material": "POLYIMIDE", "spin_speed": "3000 rpm"}),
    "mold": (
        "mold",
        {
            "compound": "EMC_TABLET",
            "substrate": "ORGANIC",
            "substrate_thickness": "300 µm",
            "thickness": "500 µm",
            "work_width": "70 mm",
            "work_length": "240 mm",
        },
    ),
    "grinder": ("back_grind", {"target_thickness": "100 µm"}),
    "litho": ("expose", {"resist": "THICK_PR", "resist_thickness": "20 µm", "mask_cd": "30 µm"}),
    "clean": ("plasma", {"gas": "AR", "surface": "CU", "time": "120 s"}),
    "wirebonder": (
        "wire_bond",
        {"wire": "AU", "wire_size": "D25", "wires_per_unit": "64", "units": "100"},
    ),
    "dicing": (
        "dice",
        {
            "blade": "HUB_30",
            "material": "SI",
            "stack_thickness": "100 µm",
            "cut_depth": "130 µm",
            "feed": "50 mm/s",
            "die_x": "5 mm",
            "die_y": "5 mm",
            "work_width": "300 mm",
        },
    ),
}
# Ball sizes a wafer-bump qualification can use, by loaded size (pitch, pad, flux in µm)
BALL_GEOMETRY = {"D150": ("250", "120", "60"), "D300": ("500", "250", "120")}
BALL_PEAK = {"SAC305": "245 °C", "SNPB63": "215 °C", "SN100": "252 °C"}


def qualification_job(driver: ToolDriver) -> tuple[str, dict[str, str]]:
    """The kind's demo job, fitted to what is installed on this tool."""
    op, params = DEMO_JOBS[driver.kind]
    params = dict(params)
    setup = driver._setup or {}
    if driver.kind == "ball" and setup.get("alloy") and setup.get("ball_size"):
        alloy, size = setup["alloy"][0], setup["ball_size"][0]
        pitch, pad, flux = BALL_GEOMETRY.get(size, BALL_GEOMETRY["D300"])
        params |= {
            "alloy": alloy,
            "ball_size": size,
            "pitch": f"{pitch} µm",
            "pad_diameter": f"{pad} µm",
            "flux_thickness": f"{flux} µm",
            "peak_temp": BALL_PEAK.get(alloy, "245 °C"),
        }
    return op, params


async def qualify(line: Line, as_json: bool) -> int:
    """One representative operation on every tool of the line, side by side."""
    drivers = [make_driver(t) for t in line.tools]
    await asyncio.gather(*(d.connect() for d in drivers), return_exceptions=True)

    async def one(d: ToolDriver) -> tuple[ToolDriver, str, JobResult | str]:
        op, params = qualification_job(d)
        job = Job(f"QUAL-{d.tool_id}-{int(time.time())}", op, params)
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
        from controller.console import results_table

        for d, op, r in done:
            if isinstance(r, str):
                error(r)
            else:
                title = f"{d.tool_id} ({d.kind}) {op}: measured"
                out.print(results_table(title, d.interface.operation(op), r.results))
    return EXIT_FAILED if failed else EXIT_OK


async def run_all_flows(opts: RunOptions, trees: bool = True) -> int:
    """Every recipe with its default options, one lot each, on one line."""
    recipes = catalog()
    stamp = time.strftime("%m%d%H%M%S")
    specs: list[LotSpec] = []
    for r in recipes:
        lot_id = f"{r.recipe.id.split('-')[0][:8].upper()}-{stamp}-{len(specs) + 1:02d}"
        specs.append(
            LotSpec(
                lot_id, r, {}, build_inputs(lot_id, r, {}), supplies=supply_sources(lot_id, r, {})
            )
        )
    started = time.monotonic()
    with Display(opts.as_json) as display:
        async with engine_for(opts, display) as (engine, _line):
            for spec in specs:
                await engine.create_lot(spec)
            outcomes = await engine.run_lots([s.lot_id for s in specs])
            shown = await engine.db.run(lambda s: _traces(s, outcomes))
            where = engine.db.describe()
    elapsed = time.monotonic() - started
    by_lot = {s.lot_id: s for s in specs}
    if opts.as_json:
        print(
            json.dumps(
                {
                    "database": where,
                    "seconds": round(elapsed, 2),
                    "lots": [
                        {**_summary(o, by_lot[o.lot_id]), "trace": shown.get(o.lot_id)}
                        for o in outcomes
                    ],
                }
            )
        )
        return exit_code(outcomes)
    t = Table(title=f"every claimed flow, one lot each ({elapsed:.1f} s)", title_justify="left")
    for col in ("recipe", "claims", "lot", "state", "steps", "packages"):
        t.add_column(col, overflow="fold")
    from controller.recipe_commands import claims_text

    for o in outcomes:
        rec = by_lot[o.lot_id].recipe.recipe
        state = o.state if not o.hold_reason else f"{o.state}: {o.hold_reason}"
        packages = str(o.units.get("package", 0))
        t.add_row(rec.id, claims_text(rec), o.lot_id, state, str(o.steps_run), packages)
    out.print(t)
    if trees:
        for o in outcomes:
            nodes = shown.get(o.lot_id)
            if nodes:
                flow = by_lot[o.lot_id].recipe.recipe.id
                out.print(f"\n[bold]backward trace of {nodes[0]['name']}[/] ({flow})")
                out.print(render_tree([_node(n) for n in nodes], forward=False, max_children=6))
    out.print(
        f"\nlots, step data and genealogy are in {where}:"
        " try `fabline lots`, `fabline trace PACKAGE`, `fabline die-map UNIT`"
    )
    code = exit_code(outcomes)
    return EXIT_HELD if code not in (EXIT_OK, EXIT_FAILED) else code


def _summary(o: Outcome, spec: LotSpec) -> dict[str, Any]:
    return {
        "recipe": spec.recipe.recipe.id,
        "lot": o.lot_id,
        "state": o.state,
        "hold_reason": o.hold_reason,
        "steps_run": o.steps_run,
        "units": o.units,
    }


def _traces(s: Any, outcomes: list[Outcome]) -> dict[str, list[dict[str, Any]]]:
    """One backward trace per completed lot: a package from the middle of its die map."""
    from sqlalchemy import text

    out_: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        if o.state != "completed":
            continue
        row = s.execute(
            text(
                "SELECT name FROM unit WHERE lot_id = :l AND kind = 'package'"
                " ORDER BY id LIMIT 1 OFFSET :k"
            ),
            {"l": o.lot_id, "k": o.units.get("package", 1) // 2},
        ).first()
        if row is not None:
            out_[o.lot_id] = [_as_dict(n) for n in trace.backward(s, row[0])]
    return out_


def _as_dict(n: trace.Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "name": n.name,
        "kind": n.kind,
        "lot": n.lot_id,
        "depth": n.depth,
        "relation": n.edge_kind,
        "via": n.via,
        "position": n.position,
        "bin": n.bin,
        "steps": [{"step": st["step"], "tool": st["tool"]} for st in n.steps],
    }


def _node(d: dict[str, Any]) -> trace.Node:
    return trace.Node(
        d["id"],
        d["name"],
        d["kind"],
        d["lot"],
        d["depth"],
        d["relation"],
        d["via"],
        d["position"],
        d["bin"],
        None,
        None,
        d["steps"],
    )
