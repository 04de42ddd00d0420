"""`fabline spc ...`: the SPC charts of the line's tools (controller/station/spc_ops.py):
list them, draw one (terminal, or SVG), give one a new baseline, clear one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller import spc
from controller.access import Actor
from controller.cli.command import run
from controller.cli.display import EXIT_OK, out
from controller.cli.options import DbOption, JsonOption
from controller.genealogy.db import Database
from controller.station.spc_ops import (
    ChartDetailView,
    ChartSummary,
    ChartView,
    SpcService,
    chart_detail,
    chart_svg,
    list_charts,
)
from drivers.units import format_quantity

app = typer.Typer(
    help="SPC control charts of the line's tools: list, show, baseline, clear.",
    no_args_is_help=True,
)

ChartArg = Annotated[str, typer.Argument(help="RECIPE/STEP/RESULT@TOOL (see `fabline spc list`).")]


def _db(url: str | None) -> Database:
    db = Database(url)
    db.migrate()
    return db


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _spec(spec: spc.SpecLimits, unit: str) -> str:
    if spec.lsl is None:
        return f"≤ {format_quantity(spec.usl or 0.0, unit)}"
    if spec.usl is None:
        return f"≥ {format_quantity(spec.lsl, unit)}"
    return f"{format_quantity(spec.lsl, unit)} … {format_quantity(spec.usl, unit)}"


def _limits(s: ChartSummary) -> str:
    if s.limits is None:
        return f"phase I {s.points}/{s.baseline}"
    lim = s.limits
    return f"{lim.lcl:.4g} … {lim.center:.4g} … {lim.ucl:.4g} ({lim.source})"


@app.command("list")
def spc_list(
    tool: Annotated[str | None, typer.Option(help="Only this tool's charts.")] = None,
    recipe: Annotated[str | None, typer.Option(help="Only this recipe's charts.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every chart: type, rules, action, limits (or phase I progress), last violation."""

    def work() -> int:
        database = _db(db)
        try:
            rows = database.run_sync(lambda s: list_charts(s, tool, recipe))
        finally:
            database.close()
        if as_json:
            print(json.dumps([ChartView.of(r).model_dump(mode="json") for r in rows]))
            return EXIT_OK
        t = Table(title="SPC charts", title_justify="left")
        for c in ("chart", "type", "rules", "action", "limits", "points", "open", "last violation"):
            t.add_column(c, overflow="fold")
        for r in rows:
            action = r.action + (" [red](inhibiting)[/]" if r.inhibiting else "")
            t.add_row(r.name, r.chart_type, r.rule_set, action, _limits(r), str(r.points),
                      str(r.open_violations), r.last_violation or "")  # fmt: skip
        out.print(t)
        return EXIT_OK

    run(work)


@app.command("show")
def spc_show(
    chart: ChartArg,
    svg: Annotated[Path | None, typer.Option("--svg", help="Also write the chart as SVG.")] = None,
    last: Annotated[int | None, typer.Option(help="Only the last N points.", min=2)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The chart's current series with its limits, zones and violations, and Cp/Cpk/Pp/Ppk
    against the recipe's spec."""

    def work() -> int:
        database = _db(db)
        try:
            d = database.run_sync(lambda s: chart_detail(s, chart, last))
        finally:
            database.close()
        limits = d.summary.limits
        if svg is not None:
            svg.write_text(chart_svg(d), encoding="utf-8")
        if as_json:
            print(ChartDetailView.of_detail(d).model_dump_json())
            return EXIT_OK
        out.print(f"[bold]{d.summary.name}[/]: {d.summary.chart_type}, {d.summary.rule_set},"
                  f" action {d.summary.action}, limits {_limits(d.summary)}")  # fmt: skip
        if limits is None:
            values = ", ".join(f"{v:.4g}" for v in d.values)
            out.print(f"phase I: {len(d.values)} of {d.summary.baseline} points: {values}")
        else:
            out.print(spc.render_terminal(d.definition, limits, d.points, d.spec))
        cap = d.capability
        if cap is not None and d.spec is not None:
            out.print(f"spec {_spec(d.spec, d.definition.unit)}: Cp {_fmt(cap.cp)}"
                      f"  Cpk {_fmt(cap.cpk)}  Pp {_fmt(cap.pp)}  Ppk {_fmt(cap.ppk)}"
                      f"  (n={cap.n})")  # fmt: skip
        if svg is not None:
            out.print(f"chart written to {svg}")
        return EXIT_OK

    run(work)


@app.command("baseline")
def spc_baseline(
    chart: ChartArg,
    center: Annotated[float | None, typer.Option(help="Centre line (with --sigma).")] = None,
    sigma: Annotated[
        float | None, typer.Option(help="Short-term sigma of one value (with --center).")
    ] = None,
    db: DbOption = None,
) -> None:
    """New limits from the next point on: by hand (--center, --sigma), or phase I again over
    the chart's next baseline pieces (after a blade or bath change). Needs an engineer."""

    async def work() -> int:
        database = _db(db)
        try:
            text = await SpcService(database, "").baseline(chart, Actor.cli(), center, sigma)
        finally:
            database.close()
        out.print(text)
        return EXIT_OK

    run(work)


@app.command("clear")
def spc_clear(
    chart: ChartArg,
    note: Annotated[str, typer.Option(help="What was done (recorded with the release).")],
    db: DbOption = None,
) -> None:
    """Acknowledge the chart's open violations and release the tool inhibit it raised (a
    running station lets the tool back into its pool). Needs a technician."""

    async def work() -> int:
        database = _db(db)
        try:
            text = await SpcService(database, "").clear(chart, note, Actor.cli())
        finally:
            database.close()
        out.print(text)
        return EXIT_OK

    run(work)
