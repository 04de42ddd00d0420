"""Process control through the engine on the simulated line: setpoints fed forward from what
the lot measured, tool warnings recorded (and holding the lot when the recipe says so),
queue-time limits that hold the lot or route it through a rework step, and the lamination
CTE interlock tripping on the film lot's measured artwork scale."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update

from controller.engine import Engine, EngineSettings, Outcome
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import StepRun
from controller.recipes import find
from drivers.registry import make_driver
from simulators.line import INSTANT, SimLine, default_line
from tests import lots
from tests.helpers import new_job_id


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=INSTANT, seed=31) as sim:
        yield sim


async def engine_for(sim: SimLine, tmp_path: Path, *, auto_confirm: bool = True) -> Engine:
    db = Database(f"sqlite:///{tmp_path / 'pc.db'}")
    await asyncio.to_thread(db.migrate)
    settings = replace(EngineSettings(), auto_confirm=auto_confirm, retry_budget=2.0)
    engine = Engine(db, [make_driver(t, timeout=1.0) for t in sim.describe().tools], settings)
    await engine.connect()
    return engine


async def start(engine: Engine, recipe_id: str, options: dict[str, str] | None = None) -> str:
    return await lots.create(engine, find(recipe_id), new_job_id("PC"), options)


async def release(engine: Engine, lot_id: str, note: str | None = None) -> str:
    return await lots.service(engine).release(lot_id, note)


async def confirm(engine: Engine, lot_id: str, data: dict[str, str]) -> str:
    return await lots.service(engine).confirm(lot_id, data)


def recipe_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe_id: str,
                edits: list[tuple[str, str]]) -> None:  # fmt: skip
    """A copy of the recipes directory with `edits` (old, new) applied to one recipe."""
    src = find(recipe_id)
    text = src.path.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "recipes").mkdir(exist_ok=True)
    for other in src.path.parent.glob("*.yaml"):
        (tmp_path / "recipes" / other.name).write_text(other.read_text())
    (tmp_path / "recipes" / src.path.name).write_text(text)
    monkeypatch.setenv("FABLINE_RECIPES", str(tmp_path / "recipes"))


def runs_and_events(engine: Engine, lot_id: str) -> tuple[list[StepRun], list[dict[str, Any]]]:
    return engine.db.run_sync(lambda s: (store.step_runs(s, lot_id), store.lot_events(s, lot_id)))


def run_of(runs: list[StepRun], step_id: str) -> StepRun:
    return next(r for r in runs if r.step_id == step_id)


def events(evs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in evs if e["type"] == kind]


async def close(engine: Engine) -> None:
    await engine.close()
    engine.db.close()


# -- feed-forward ----------------------------------------------------------------------------


async def test_dicing_depth_follows_the_measured_stack(line: SimLine, tmp_path: Path) -> None:
    engine = await engine_for(line, tmp_path)
    try:
        lot = await start(engine, "stacked-wlp-000-11", {"layers": "three", "resin_seal": "with"})
        assert (await engine.run_lot(lot)).state == "completed"
        runs, evs = runs_and_events(engine, lot)
        layers = {"bond": "blt", "thin": "thickness", "resin-seal": "thickness",
                  "heat-barrier": "thickness", "heat-layer": "thickness"}  # fmt: skip
        stack = 725.0  # W1
        for r in runs:
            result = layers.get(r.step_id.split("@")[0])
            if result is not None:
                v = r.results[result]
                stack += v["value"] / (1000 if v["unit"] == "nm" else 1)
        dice = run_of(runs, "dice")
        sp = dice.setpoints
        assert sp["stack_thickness"]["value"] == pytest.approx(stack, abs=1e-3)
        assert sp["cut_depth"]["value"] == pytest.approx(stack + 30, abs=1e-3)
        assert sp["cut_depth"]["formula"] == "stack_thickness + 30 µm"
        inputs = sp["stack_thickness"]["inputs"]
        assert set(inputs) >= {"bond@layer=2.blt", "bond@layer=3.blt", "thin@layer=3.thickness",
                               "resin-seal.thickness", "heat-layer.thickness"}  # fmt: skip
        assert inputs["thin@layer=2.thickness"] == run_of(runs, "thin@layer=2").results[
            "thickness"]["value"]  # fmt: skip
        # the planned value differs: the recipe plans with the spec midpoints
        assert sp["stack_thickness"]["planned"] != sp["stack_thickness"]["value"]
        # the measured adhesive went to each bond, the measured resist to each exposure
        bond = run_of(runs, "bond@layer=3")
        coat = run_of(runs, "coat-insulator@layer=3")
        assert bond.setpoints["adhesive_thickness"]["value"] == coat.results["thickness"]["value"]
        started = next(e for e in events(evs, "step_started") if e["step_id"] == "dice")
        assert started["data"]["setpoints"]["cut_depth"]["formula"] == "stack_thickness + 30 µm"
    finally:
        await close(engine)


# -- tool warnings ---------------------------------------------------------------------------


async def test_every_warning_is_recorded_and_an_expected_one_does_not_hold(
    line: SimLine, tmp_path: Path
) -> None:
    engine = await engine_for(line, tmp_path)
    try:
        lot = await start(engine, "stacked-wlp-000-11")
        assert (await engine.run_lot(lot)).state == "completed"
        _, evs = runs_and_events(engine, lot)
        warned = events(evs, "tool_warning")
        assert [(e["step_id"], e["data"]["name"], e["data"]["action"], e["data"]["expected"])
                for e in warned] == [("bond@layer=2", "UNDERCURED", "record", True)]  # fmt: skip
        assert warned[0]["tool_id"] == "BOND-1"
    finally:
        await close(engine)


async def test_a_warning_the_recipe_holds_on_holds_the_lot(
    line: SimLine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = ("warnings: {expected: [UNDERCURED]}", "warnings: {hold: [UNDERCURED]}")
    recipe_copy(tmp_path, monkeypatch, "stacked-wlp-000-11", [hold])
    engine = await engine_for(line, tmp_path)
    try:
        lot = await start(engine, "stacked-wlp-000-11")
        out = await engine.run_lot(lot)
        assert out.state == "held"
        assert out.hold_reason == (
            "tool warning at step bond@layer=2: 381 UNDERCURED (adhesive below 80 % cure:"
            " post-cure it)"
        )
        runs, evs = runs_and_events(engine, lot)
        assert run_of(runs, "bond@layer=2").state == "done"  # held after the step, not in it
        (warned,) = events(evs, "tool_warning")
        assert warned["data"]["action"] == "hold"
        assert events(evs, "hold")[-1]["data"]["reason"] == out.hold_reason
        await release(engine, lot)  # the engineer accepts it: the cure step follows
        assert (await engine.run_lot(lot)).state == "completed"
    finally:
        await close(engine)


# -- queue times -----------------------------------------------------------------------------

THIN_TO_RESIST = """queue_times:
  - from: thin
    to: via-resist
    max: 1 h
    reason: the thinned wafer's back is bare silicon
"""


async def _wait_at_device_fab(engine: Engine) -> str:
    lot = await start(engine, "stacked-wlp-000-11")
    out = await engine.run_lot(lot)
    assert out.state == "waiting"  # at the external device fabrication
    return lot


async def _two_hours_pass(engine: Engine, lot: str, step_id: str) -> None:
    """The lot sat at the external step: move the end of `step_id` two hours back."""

    def tx(s: Any) -> None:
        run = next(r for r in store.step_runs(s, lot) if r.step_id == step_id)
        assert run.ended_at is not None
        s.execute(
            update(StepRun)
            .where(StepRun.id == run.id)  # type: ignore[arg-type]
            .values(ended_at=run.ended_at - timedelta(hours=2))
        )

    await engine.db.run(tx)
    await confirm(engine, lot, {"device_lot": "DL-7", "route": "LT-TFT"})


async def test_expired_queue_time_holds_with_its_reason_and_release_waives_it(
    line: SimLine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe_copy(tmp_path, monkeypatch, "stacked-wlp-000-11",
                [("queue_times:\n", THIN_TO_RESIST)])  # fmt: skip
    engine = await engine_for(line, tmp_path, auto_confirm=False)
    try:
        lot = await _wait_at_device_fab(engine)
        await _two_hours_pass(engine, lot, "thin@layer=2")
        out = await engine.run_lot(lot)
        assert out.state == "held"
        assert out.hold_reason is not None
        assert out.hold_reason.startswith("step via-resist@layer=2: queue time 2 h since")
        assert "thin@layer=2 exceeds 1 h before via-resist@layer=2" in out.hold_reason
        assert "(the thinned wafer's back is bare silicon)" in out.hold_reason
        runs, evs = runs_and_events(engine, lot)
        assert not any(r.step_id == "via-resist@layer=2" for r in runs)  # held before it ran
        (expired,) = events(evs, "qtime_expired")
        assert expired["step_id"] == "via-resist@layer=2"
        assert expired["data"]["action"] == "hold" and expired["data"]["from_step"] == (
            "thin@layer=2"
        )
        assert expired["data"]["waited_s"] > 7200 and expired["data"]["limit_s"] == 3600
        await release(engine, lot, note="wafer inspected, back re-cleaned by hand")
        assert (await engine.run_lot(lot)).state == "completed"
    finally:
        await close(engine)


async def test_expired_queue_time_routes_through_the_rework_step(
    line: SimLine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rework = """      - id: back-reclean
        name: Re-clean the bare silicon past its queue time (rework)
        rework: true
        tool: clean
        operation: plasma
        params: {gas: AR, surface: SI, time: 300 s}
      - id: via-resist
"""
    routed = THIN_TO_RESIST.replace("silicon\n", "silicon\n    rework: back-reclean\n")
    recipe_copy(tmp_path, monkeypatch, "stacked-wlp-000-11",
                [("queue_times:\n", routed), ("      - id: via-resist\n", rework)])  # fmt: skip
    engine = await engine_for(line, tmp_path, auto_confirm=False)
    try:
        lot = await _wait_at_device_fab(engine)
        await _two_hours_pass(engine, lot, "thin@layer=2")
        assert (await engine.run_lot(lot)).state == "completed"
        runs, evs = runs_and_events(engine, lot)
        assert run_of(runs, "back-reclean@layer=2").state == "done"
        (expired,) = events(evs, "qtime_expired")
        assert expired["data"]["action"] == "rework"
        assert expired["step_id"] == "back-reclean@layer=2"
        assert not events(evs, "hold")
        # without the wait the rework step is skipped, with its reason
        lot2 = await _wait_at_device_fab(engine)
        await confirm(engine, lot2, {"device_lot": "DL-8", "route": "LT-TFT"})
        assert (await engine.run_lot(lot2)).state == "completed"
        runs2, evs2 = runs_and_events(engine, lot2)
        assert not any(r.step_id == "back-reclean@layer=2" for r in runs2)
        skipped = {e["step_id"]: e["data"]["reason"] for e in events(evs2, "step_skipped")}
        assert "no queue-time limit through it ran out" in skipped["back-reclean@layer=2"]
    finally:
        await close(engine)


# -- the lamination CTE interlock at run time ------------------------------------------------


async def _film_confirmed(engine: Engine, scale: str, *, held: str | None = None) -> Outcome:
    lot = await start(engine, "wlcsp-002-49")
    assert (await engine.run_lot(lot)).state == "waiting"  # for the incoming film
    said = await confirm(engine, lot, {"film_lot": "F-1", "adhesive_lot": "A-1",
                                       "artwork_scale": scale})  # fmt: skip
    if held is not None:  # the film came back out of spec: held at once, released by an engineer
        assert said == f"lot {lot}: step film confirmed, and held: {held}"
        await release(engine, lot, "engineer: use this film")
    return await engine.run_lot(lot)


async def test_unscaled_film_trips_the_lamination_cte_interlock(
    line: SimLine, tmp_path: Path
) -> None:
    engine = await engine_for(line, tmp_path, auto_confirm=False)
    try:
        # the supplier forgot the pre-scale: out of the film's spec, and released anyway
        out = await _film_confirmed(engine, "0 ppm",
            held="out of spec at step film: artwork_scale 0 ppm > -1650 ppm")  # fmt: skip
        assert out.state == "held"
        assert out.hold_reason == (
            "step attach: interlock cte_runout: the CIRCUIT_FILM laminated at 150 °C on a 300 mm"
            " work runs out 251 µm at its edge (artwork_scale 0 ppm), more than 35 µm:"
            " pre-scale the artwork by -1675 ppm or laminate per die"
        )
        runs, _ = runs_and_events(engine, out.lot_id)
        assert not any(r.step_id == "attach" for r in runs)  # no film was wasted
        # within the run-out budget but not the film the recipe ordered: an engineer's call,
        # and once released it laminates with the scale it has
        out = await _film_confirmed(engine, "-1600 ppm",
            held="out of spec at step film: artwork_scale -1600 ppm > -1650 ppm")  # fmt: skip
        assert out.state == "completed", out.hold_reason
        out = await _film_confirmed(engine, "-1668 ppm")
        assert out.state == "completed", out.hold_reason
        runs, _ = runs_and_events(engine, out.lot_id)
        attach = run_of(runs, "attach")
        assert attach.setpoints["artwork_scale"]["value"] == -1668
        assert attach.setpoints["artwork_scale"]["inputs"] == {"film.artwork_scale": -1668}
        assert attach.results["runout"]["value"] < 5
    finally:
        await close(engine)
