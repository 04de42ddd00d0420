"""SPC on the line, end to end: a station on the embedded simulated line dices thin wafers,
one lot each, with the dicing blade wearing from job to job. The recipe charts the saw's
kerf offset (phase I: the first 10 pieces; Nelson rules; OCAP inhibit). The blade's drift is
caught by a rule, the lot held and the saw inhibited, while every piece cut so far is still
inside the recipe's 5 µm kerf-offset spec; no job starts on the saw until a technician
releases it. (Left alone, the same cut leaves the spec some 30 pieces later:
tests/unit/spc/test_drift.py.) Once on SQLite, once on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.access import Actor, Role
from controller.engine import Progress, StepDone, spc_hook
from controller.equipment import E10State, Period
from controller.genealogy import spc_store, store
from controller.genealogy.db import Database
from controller.genealogy.models import Outbox, StepRun, utcnow
from controller.genealogy.spc_models import SpcViolation
from controller.genealogy.station_models import Audit, ToolInhibit
from controller.lots import LotRequest
from controller.mes.config import mes_config
from controller.recipes import ChartPlan, LoadedRecipe, ToolStepPlan, load, load_text
from controller.station.runtime import Station, StationConfig
from controller.station.tool_monitor import Tile
from controller.station.tool_report import ToolReport, aware, report
from simulators.line import INSTANT
from tests.station import fabline, station_env
from tests.unit.controller.rows import add_lot

T = TypeVar("T")

SAW = "DICE-1"
USL = 5.0  # µm, the recipe's kerf_offset spec
MAX_LOTS = 60  # the blade drives the offset out of spec by ~50 pieces
RECIPE = """\
id: spc-dice-drift
version: 1
title: thinned 300 mm Si wafers diced one per lot on a HUB_30 blade (SPC drift test)
status: approved
claims:
  - {seed: "001", claims: [10]}
inputs:
  wafers: {kind: wafer, count: 1, description: "thinned Si wafer, 100 µm"}
steps:
  - id: incoming
    external: thinned wafer
    returns: [thickness]
    spec: {thickness: {min: 99 µm, max: 101 µm}}
  - id: dice
    role: singulate
    tool: dicing
    operation: dice
    params: {mode: SINGLE, blade: HUB_30, material: SI, z1_depth: 0 µm, feed: 50 mm/s,
             work_width: 300 mm, die_x: 5 mm, die_y: 5 mm}
    feed_forward:
      stack_thickness: incoming.thickness
      cut_depth: stack_thickness + 30 µm
    spec: {kerf_offset: {max: 5 µm}}
    spc:
      kerf_offset: {action: inhibit, baseline: 10}
"""


def recipe(tmp_path: Path) -> LoadedRecipe:
    path = tmp_path / "spc-dice-drift.yaml"
    path.write_text(RECIPE)
    return load(path)


def config(db_url: str) -> StationConfig:
    return StationConfig(
        database_url=db_url,
        mes=mes_config(None, station="spc-1"),
        time_scale=INSTANT,
        seed=7,
        monitor_interval=0.2,
    )


async def dispatch(station: Station, r: LoadedRecipe, n: int) -> str:
    lot_id = f"SPC-{n:03d}"
    request = LotRequest(lot_id=lot_id, recipe=r.recipe.id, inputs={"wafers": 1})
    await station.lots.create(request, recipe=r)
    return lot_id


async def read_db(url: str, fn: Callable[[Session], T]) -> T:
    db = Database(url)
    try:
        await asyncio.to_thread(db.migrate)
        return await db.run(fn)
    finally:
        db.close()


def kerf_offsets(s: Session) -> list[tuple[str, float]]:
    runs = s.scalars(
        select(StepRun)
        .where(
            col(StepRun.step_id) == "dice",
            col(StepRun.state) == "done",
            col(StepRun.lot_id).like("SPC-%"),
        )
        .order_by(col(StepRun.id))
    ).all()
    return [(r.lot_id, float(r.results["kerf_offset"]["value"])) for r in runs]


async def test_a_wearing_blade_is_inhibited_before_a_piece_leaves_spec(
    tmp_path: Path, db_url: str
) -> None:
    r = recipe(tmp_path)
    done: dict[tuple[str, int], asyncio.Event] = {}

    def notify(m: Progress) -> None:
        if isinstance(m, StepDone):
            done.setdefault((m.lot_id, m.index), asyncio.Event()).set()

    async with Station(config(db_url), notify) as station:
        down: list[Tile] = []
        saw_down = asyncio.Event()

        def watch(tile: Tile) -> None:  # the saw's tile once it shows it is unavailable
            if tile.tool_id == SAW and tile.data.e10 == "UNSCHEDULED_DOWN":
                down.append(tile)
                saw_down.set()

        station.monitor.listeners.append(watch)
        held: str | None = None
        for n in range(MAX_LOTS):
            lot_id = await dispatch(station, r, n)
            outcome = await station.start_lot(lot_id)
            if outcome.state != "completed":
                assert outcome.state == "held" and outcome.hold_kind == "spc", outcome
                held = lot_id
                break
        assert held is not None, "the chart never fired"
        assert station.engine.pool.held_out(SAW)

        def facts(s: Session) -> tuple[list[tuple[str, float]], list[ToolInhibit], list[str],
                                       list[SpcViolation], str | None]:  # fmt: skip
            chart = spc_store.chart(s, ("spc-dice-drift", "dice", "kerf_offset", SAW))
            assert chart is not None and chart.id is not None
            q = select(col(Outbox.type)).where(col(Outbox.lot_id) == held)
            events = s.scalars(q.order_by(col(Outbox.id))).all()
            reason = store.get_lot(s, held).hold_reason
            found = spc_store.violations(s, chart.id)
            return kerf_offsets(s), spc_store.open_inhibits(s, SAW), list(events), found, reason

        offsets, inhibits, events, violations, reason = await station.db.run(facts)
        # every piece cut, the one that tripped the rule included, is inside the spec
        assert len(offsets) == n + 1
        assert all(v <= USL for _, v in offsets), offsets
        assert offsets[-1][0] == held and offsets[-1][1] < 0.7 * USL
        assert n >= 10  # judged only after the 10-piece baseline was frozen
        # the drift did it: the tripping piece sits well above the baseline's mean
        base = [v for _, v in offsets[:10]]
        assert offsets[-1][1] > sum(base) / len(base)
        # recorded, published, held with the chart and the rule, and the saw inhibited
        assert violations and {v.action for v in violations} == {"inhibit"}
        assert all(v.lot_id == held for v in violations)
        assert "spc_violation" in events and events[-1] == "hold"
        chart_name = f"spc-dice-drift/dice/kerf_offset@{SAW}"
        assert reason is not None and reason.startswith(f"SPC {chart_name}: ")
        assert violations[0].rule in reason
        [inhibit] = inhibits
        assert (inhibit.source, inhibit.ref, inhibit.by) == ("spc", chart_name, "spc")
        assert inhibit.reason == reason

        # its tile: blocked by the inhibit, E10 unscheduled down waiting for a technician
        await asyncio.wait_for(saw_down.wait(), 30)
        tile = down[0]
        assert tile.data.e116 == "blocked" and tile.data.blocked == f"inhibited: {reason}"
        assert tile.data.e10_substate == "maintenance-delay" and tile.context.spc_open >= 1

        # no job starts on the inhibited saw: the next lot waits for it ...
        waiting = await dispatch(station, r, MAX_LOTS)
        task = station.start_lot(waiting)

        incoming = done.setdefault((waiting, 0), asyncio.Event())
        await asyncio.wait_for(incoming.wait(), 60)  # its external step is done: the saw next
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()
        runs = await station.db.run(lambda s: store.step_runs(s, waiting))
        assert [x.step_id for x in runs] == ["incoming"]
        # ... until a technician releases it
        tech = Actor("tess", Role.TECHNICIAN)
        assert inhibit.id is not None
        await station.tools.release_inhibit(SAW, inhibit.id, "blade changed", tech)
        assert not station.engine.pool.held_out(SAW)
        outcome = await asyncio.wait_for(task, 60)
        assert outcome.state in ("completed", "held"), outcome
        runs = await station.db.run(lambda s: store.step_runs(s, waiting))
        assert [x.step_id for x in runs] == ["incoming", "dice"]

    # the chart from the command line: its points, and the capability against the spec
    env = station_env(tmp_path, "spc-1", None)
    code, text, err = await fabline("spc", "show", chart_name, "--json", "--db", db_url, env=env)
    assert code == 0, err
    shown = json.loads(text)
    assert shown["values"][: n + 1] == [v for _, v in offsets]
    assert (shown["lsl"], shown["usl"]) == (None, USL)
    assert shown["capability"]["cp"] is None and shown["capability"]["cpk"] > 1


# -- the E10 report of a run --------------------------------------------------------------


async def test_the_e10_report_of_a_run_adds_up_to_its_wall_time(
    tmp_path: Path, db_url: str
) -> None:
    """A run of lots on the embedded line (no charts): each tool's report over the run's
    wall time has every instant in exactly one state or unrecorded (before the first state
    recorded for the tool), the saw productive at least while it held the lots' jobs; the
    command line reports the same."""
    plain = load_text(RECIPE.replace("spc-dice-drift", "e10-dice").split("    spc:")[0],
                      tmp_path / "e10-dice.yaml")  # fmt: skip
    start = utcnow()
    async with Station(config(db_url)) as station:
        for n in range(3):
            request = LotRequest(lot_id=f"E10-{n}", recipe=plain.recipe.id, inputs={"wafers": 1})
            await station.lots.create(request, recipe=plain)
            assert (await station.start_lot(f"E10-{n}")).state == "completed"
        tools = list(station.engine.pool.drivers)
    end = utcnow()
    period = Period(start, end)

    def read(s: Session) -> tuple[list[ToolReport], dict[str, datetime], list[StepRun]]:
        first: dict[str, datetime] = {}  # each tool's first recorded state (a restarted
        for payload, created in s.execute(  # monitor goes on from the last one it reported)
            select(col(Outbox.payload), col(Outbox.created_at))
            .where(col(Outbox.type) == "tool_state", col(Outbox.created_at) < end)
            .order_by(col(Outbox.id))
        ):
            first.setdefault(payload["tool_id"], aware(created))
        runs = s.scalars(select(StepRun).where(col(StepRun.lot_id).like("E10-%"),
                                               col(StepRun.kind) == "tool")).all()  # fmt: skip
        return report(s, period, tools), first, list(runs)

    reports, first, runs = await read_db(db_url, read)
    assert [r.tool_id for r in reports] == tools
    for r in reports:
        assert r.times is not None, r.tool_id
        assert sum(r.times.by_state.values(), timedelta(0)) + r.times.unrecorded == end - start
        assert r.times.unrecorded == max(first[r.tool_id] - start, timedelta(0))
        assert r.times.failures == 0
    saw = next(r for r in reports if r.tool_id == SAW)
    assert saw.times is not None and len(runs) == 3
    held = sum((aware(x.ended_at) - aware(x.started_at) for x in runs if x.ended_at), timedelta(0))
    assert saw.times.by_state[E10State.PRODUCTIVE] >= held > timedelta(0)

    period_args = ["--from", start.isoformat(), "--to", end.isoformat()]
    env = station_env(tmp_path, "spc-1", None)
    code, text, err = await fabline("tools", "report", *period_args, "--db", db_url, "--json",
                                    env=env)  # fmt: skip
    assert code == 0, err
    rows = {row["tool"]: row for row in json.loads(text)}
    assert set(rows) == set(tools)
    wall = (end - start).total_seconds()
    for row in rows.values():
        assert abs(sum(row["seconds"].values()) + row["unrecorded_s"] - wall) < 1e-6


# -- the command line -----------------------------------------------------------------------

CLI_CHART = "cli-flow/dice/kerf_offset@DICE-2"
CLI_BASELINE = [10.0, 11.0, 10.0, 11.0, 10.0]  # centre 10.4, σ = MR̄/d2 = 1/1.128


def _seed_chart(s: Session) -> None:
    """A chart with its phase I frozen and one point beyond 3σ that inhibited its tool."""
    step = ToolStepPlan(
        index=0, id="dice", template="dice", path=("steps", 0), name="dice", role=None,
        tool="dicing", operation="dice",
        spc=(ChartPlan("kerf_offset", "µm", "nelson", "inhibit", 5, True),),
    )  # fmt: skip
    for n, v in enumerate([*CLI_BASELINE, 20.0]):
        spc_hook.record(s, lot_id=f"CLI-{n}", recipe_id="cli-flow", step=step, tool_id="DICE-2",
                        run_id=n, job_id=f"CLI-J{n}", results={"kerf_offset": v})  # fmt: skip


async def test_spc_list_show_baseline_and_clear_from_the_command_line(
    tmp_path: Path, db_url: str
) -> None:
    await read_db(db_url, _seed_chart)
    env = station_env(tmp_path, "spc-1", None)
    db = ["--db", db_url]
    code, text, err = await fabline("spc", "list", "--tool", "DICE-2", "--json", *db, env=env)
    assert code == 0, err
    [row] = json.loads(text)
    assert (row["chart"], row["action"], row["points"]) == (CLI_CHART, "inhibit", 6)
    assert row["open_violations"] == 2  # N1, and R1: its moving range
    assert row["inhibiting"] and row["limits"]["source"] == "phase-i"
    assert abs(row["limits"]["center"] - 10.4) < 1e-9

    svg = tmp_path / "chart.svg"
    code, text, err = await fabline("spc", "show", CLI_CHART, "--svg", str(svg), "--json", *db,
                                    env=env)  # fmt: skip
    assert code == 0, err
    shown = json.loads(text)
    assert shown["values"] == [*CLI_BASELINE, 20.0]
    assert shown["violations"][0]["point"] == 6 and "N1" in shown["violations"][0]["rules"]
    assert svg.read_text().startswith("<svg") and 'class="point violation' in svg.read_text()
    code, text, err = await fabline("spc", "show", CLI_CHART, *db, env=env)  # the terminal view
    assert code == 0 and "UCL" in text and "N1: point 6" in text, (text, err)

    # bad input: one line naming what, and nothing changes
    for args, message in [
        (["spc", "show", "DICE-2"], "expected RECIPE/STEP/RESULT@TOOL"),
        (["spc", "show", "cli-flow/dice/nope@DICE-2"], "no SPC chart"),
        (["spc", "clear", CLI_CHART, "--note", " "], "say what was done"),
        (["spc", "baseline", CLI_CHART, "--center", "10"], "both --center and --sigma"),
    ]:
        code, text, err = await fabline(*args, *db, env=env)
        [line] = [x for x in err.splitlines() if x.startswith("error:")]  # (FABLINE_LOG=info)
        assert code in (2, 5) and message in line, err

    code, text, err = await fabline("spc", "clear", CLI_CHART, "--note", "blade changed", *db,
                                    env=env)  # fmt: skip
    assert code == 0, err
    assert "2 violation(s) acknowledged, DICE-2 inhibit" in text and "released" in text
    code, text, err = await fabline("spc", "baseline", CLI_CHART, "--center", "12",
                                    "--sigma", "0.5", *db, env=env)  # fmt: skip
    assert code == 0 and "limits set by hand from point 7" in text, (text, err)
    code, text, err = await fabline("spc", "list", "--tool", "DICE-2", "--json", *db, env=env)
    [row] = json.loads(text)
    assert (row["open_violations"], row["inhibiting"], row["points"]) == (0, False, 0)
    assert (row["limits"]["center"], row["limits"]["source"]) == (12.0, "engineer")

    def audit(s: Session) -> list[tuple[str, str]]:
        q = select(col(Audit.action), col(Audit.result)).where(col(Audit.target) == CLI_CHART)
        return [(a, r) for a, r in s.execute(q.order_by(col(Audit.id)))]

    assert await read_db(db_url, audit) == [
        ("spc_clear", "refused"), ("spc_baseline", "refused"),
        ("spc_clear", "ok"), ("spc_baseline", "ok"),
    ]  # fmt: skip


def _warned_lot(s: Session) -> None:
    """A running lot whose piece tripped a chart that only warns."""
    add_lot(s, "WARN-1", "running")
    step = ToolStepPlan(
        index=0, id="dice", template="dice", path=("steps", 0), name="dice", role=None,
        tool="dicing", operation="dice",
        spc=(ChartPlan("kerf_width", "µm", "nelson", "warn", 5, True),),
    )  # fmt: skip
    for n, v in enumerate([*CLI_BASELINE, 20.0]):
        lot = "WARN-1" if n == 5 else f"W-{n}"
        spc_hook.record(s, lot_id=lot, recipe_id="warn-flow", step=step, tool_id="DICE-2",
                        run_id=n, job_id=f"WARN-J{n}", results={"kerf_width": v})  # fmt: skip


async def test_fabline_lots_shows_a_warning_of_a_lot_that_runs_on(
    tmp_path: Path, db_url: str
) -> None:
    await read_db(db_url, _warned_lot)
    env = station_env(tmp_path, "spc-1", None)
    code, text, err = await fabline("lots", "--state", "running", "--db", db_url, env={
        **env, "COLUMNS": "250"})  # fmt: skip
    assert code == 0, err
    [row] = [line for line in text.splitlines() if "WARN-1" in line]
    assert "[spc] warn-flow/dice/kerf_width@DICE-2: N1: point 6" in row
