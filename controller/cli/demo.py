"""`fabline demo`, the main job: every claimed flow — every recipe, default options, one lot
each — on the embedded simulated line, then a summary and one backward trace per flow."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.orm import Session

from controller.cli.command import run
from controller.cli.display import EXIT_FAILED, EXIT_HELD, EXIT_OK, Display, lots_exit_code, out
from controller.cli.lots import render_tree
from controller.cli.options import (
    DbOption,
    JsonOption,
    MqttOption,
    StationOption,
    TimeScaleOption,
    station_config,
)
from controller.cli.recipes import claims_text
from controller.engine import Outcome
from controller.genealogy import trace
from controller.lots import LotRequest
from controller.recipes import LoadedRecipe, catalog
from controller.station.runtime import Station, StationConfig

app = typer.Typer()


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
    run(
        lambda: run_all_flows(
            station_config(db=db, time_scale=time_scale, seed=seed, mqtt=mqtt, station=station),
            as_json,
            traces,
        )
    )


async def run_all_flows(config: StationConfig, as_json: bool, trees: bool = True) -> int:
    """Every recipe with its default options, one lot each, on one line."""
    stamp = time.strftime("%m%d%H%M%S")
    recipes: dict[str, LoadedRecipe] = {}
    for r in catalog():
        lot_id = f"{r.recipe.id.split('-')[0][:8].upper()}-{stamp}-{len(recipes) + 1:02d}"
        recipes[lot_id] = r
    started = time.monotonic()
    with Display(as_json) as display:
        async with Station(config, notify=display) as st:
            for lot_id, r in recipes.items():
                await st.lots.create(LotRequest(lot_id=lot_id, recipe=r.recipe.id))
            outcomes = await st.run_lots(list(recipes))
            shown = await st.db.run(lambda s: _traces(s, outcomes))
            where = st.db.describe()
    elapsed = time.monotonic() - started
    if as_json:
        lots = [
            {**_summary(o, recipes[o.lot_id]),
             "trace": [n.to_dict() for n in shown.get(o.lot_id, [])] or None}
            for o in outcomes
        ]  # fmt: skip
        print(json.dumps({"database": where, "seconds": round(elapsed, 2), "lots": lots}))
        return lots_exit_code(outcomes)
    t = Table(title=f"every claimed flow, one lot each ({elapsed:.1f} s)", title_justify="left")
    for col in ("recipe", "claims", "lot", "state", "steps", "packages"):
        t.add_column(col, overflow="fold")
    for o in outcomes:
        rec = recipes[o.lot_id].recipe
        state = o.state if not o.hold_reason else f"{o.state}: {o.hold_reason}"
        packages = str(o.units.get("package", 0))
        t.add_row(rec.id, claims_text(rec), o.lot_id, state, str(o.steps_run), packages)
    out.print(t)
    if trees:
        for o in outcomes:
            nodes = shown.get(o.lot_id)
            if nodes:
                flow = recipes[o.lot_id].recipe.id
                out.print(f"\n[bold]backward trace of {nodes[0].name}[/] ({flow})")
                out.print(render_tree(nodes, forward=False, max_children=6))
    out.print(
        f"\nlots, step data and genealogy are in {where}:"
        " try `fabline lots`, `fabline trace PACKAGE`, `fabline die-map UNIT`"
    )
    code = lots_exit_code(outcomes)
    return EXIT_HELD if code not in (EXIT_OK, EXIT_FAILED) else code


def _summary(o: Outcome, r: LoadedRecipe) -> dict[str, Any]:
    return {
        "recipe": r.recipe.id,
        "lot": o.lot_id,
        "state": o.state,
        "hold_reason": o.hold_reason,
        "steps_run": o.steps_run,
        "units": o.units,
    }


def _traces(s: Session, outcomes: list[Outcome]) -> dict[str, list[trace.Node]]:
    """One backward trace per completed lot: a package from the middle of its die map."""
    found: dict[str, list[trace.Node]] = {}
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
            found[o.lot_id] = trace.backward(s, row[0])
    return found
