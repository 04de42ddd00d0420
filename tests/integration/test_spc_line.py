"""SPC on the line, end to end: a station on the embedded simulated line dices thin wafers,
one lot each, with the dicing blade wearing from job to job. The recipe charts the saw's
kerf offset (phase I: the first 10 pieces; Nelson rules; OCAP inhibit). The blade's drift is
caught by a rule, the lot held and the saw inhibited, while every piece cut so far is still
inside the recipe's 5 µm kerf-offset spec; no job starts on the saw until a technician
releases it. (Left alone, the same cut leaves the spec some 30 pieces later:
tests/unit/spc/test_drift.py.) Once on SQLite, once on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.access import Actor, Role
from controller.engine import Progress, StepDone
from controller.genealogy import spc_store, store
from controller.genealogy.models import Outbox, StepRun
from controller.genealogy.spc_models import SpcViolation
from controller.genealogy.station_models import ToolInhibit
from controller.lots import LotRequest
from controller.mes.config import mes_config
from controller.recipes import LoadedRecipe, load
from controller.station.runtime import Station, StationConfig
from simulators.line import INSTANT

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


def kerf_offsets(s: Session) -> list[tuple[str, float]]:
    runs = s.scalars(
        select(StepRun).where(col(StepRun.step_id) == "dice", col(StepRun.state) == "done")
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
