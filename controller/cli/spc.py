"""`fabline spc ...`: the SPC charts of the line's tools (controller/station/spc_ops.py):
list them, draw one (terminal, or SVG), give one a new baseline, clear one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from controller import spc
from controller.access import Actor
from controller.cli.command import run
from controller.cli.display import EXIT_OK, out
from controller.cli.options import DbOption, JsonOption
from controller.genealogy.db import Database
from controller.station.spc_ops import (
    ChartDetail,
    ChartSummary,
    SpcService,
    chart_detail,
    list_charts,
)

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


def _limits(s: ChartSummary) -> str:
    if s.limits is None:
        return f"phase I {s.points}/{s.baseline}"
    lim = s.limits
    return f"{lim.lcl:.4g} … {lim.center:.4g} … {lim.ucl:.4g} ({lim.source})"


def summary_json(s: ChartSummary) -> dict[str, Any]:
    lim = s.limits
    return {
        "chart": s.name, "tool": s.tool_id, "type": s.chart_type, "rules": s.rule_set,
        "action": s.action, "baseline": s.baseline, "points": s.points,
        "limits": None if lim is None else {
            "center": lim.center, "sigma": lim.sigma, "ucl": lim.ucl, "lcl": lim.lcl,
            "source": lim.source.value,
        },
        "open_violations": s.open_violations, "last_violation": s.last_violation,
        "inhibiting": s.inhibiting,
    }  # fmt: skip


def detail_json(d: ChartDetail) -> dict[str, Any]:
    cap = d.capability
    return {
        **summary_json(d.summary),
        "unit": d.definition.unit,
        "first_index": d.first_index,
        "values": d.values,
        "violations": [
            {"point": p.index + 1, "rules": list(p.rule_ids), "texts": list(p.texts)}
            for p in d.points if not p.in_control
        ],
        "spec": None if d.spec is None else {"lsl": d.spec.lsl, "usl": d.spec.usl},
        "capability": None if cap is None else {
            "n": cap.n, "mean": cap.mean, "cp": cap.cp, "cpk": cap.cpk, "pp": cap.pp,
            "ppk": cap.ppk,
        },
    }  # fmt: skip


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
            print(json.dumps([summary_json(r) for r in rows]))
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
            if limits is None:
                raise spc.SpcError(f"chart {chart}: no limits yet (phase I), nothing to draw")
            svg.write_text(spc.render_svg(d.definition, limits, d.points, d.spec), encoding="utf-8")
        if as_json:
            print(json.dumps(detail_json(d)))
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
            out.print(f"spec {d.spec.lsl} … {d.spec.usl}: Cp {_fmt(cap.cp)}  Cpk {_fmt(cap.cpk)}"
                      f"  Pp {_fmt(cap.pp)}  Ppk {_fmt(cap.ppk)}  (n={cap.n})")  # fmt: skip
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
