"""Whole lots through the engine on the simulated line: the genealogy they leave (SQLite and
PostgreSQL), and holds with release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from controller.engine import Engine, EngineSettings, Outcome
from controller.genealogy import trace
from controller.genealogy.db import Database
from controller.recipes import find
from drivers.interfaces.dicing import die_positions
from drivers.registry import make_driver
from simulators.line import INSTANT, SimLine, default_line
from tests.lots import fresh_consumables, run, service


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def instant_line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=INSTANT, seed=11) as line:
        yield line


async def make_engine(line: SimLine, url: str, **settings: object) -> Engine:
    db = Database(url)
    await asyncio.to_thread(db.migrate)
    base = EngineSettings(auto_confirm=True, retry_budget=2.0, request_poll=0.05)
    engine = Engine(db, [make_driver(t, timeout=1.0) for t in line.describe().tools],
                    replace(base, **settings))  # type: ignore[arg-type]  # fmt: skip
    await engine.connect()
    await fresh_consumables(engine)
    return engine


async def close(engine: Engine) -> None:
    await engine.close()
    engine.db.close()


# Every recipe with every option combination it accepts: tests/integration/
# test_every_combination.py (it also checks the physics chains of what ran).


# -- genealogy, on SQLite and PostgreSQL -----------------------------------------------------


async def test_stacked_package_traces_to_one_wafer_per_layer(
    instant_line: SimLine, db_url: str
) -> None:
    engine = await make_engine(instant_line, db_url)
    try:
        r = find("stacked-wlp-000-11")
        out = await run(engine, r, {"layers": "three"}, wafers=2)
        assert out.state == "completed"
        lot = out.lot_id

        def check(s: object) -> None:
            stack = f"{lot}-STK01"
            _, dies = trace.die_map(s, stack)  # type: ignore[arg-type]
            grid = die_positions("ROUND", 200, 0, 5, 5)
            assert [(d["x"], d["y"]) for d in dies] == grid
            package = dies[len(dies) // 2]["package"]
            nodes = trace.backward(s, package)  # type: ignore[arg-type]
            wafers = [n for n in nodes if n.kind == "wafer"]
            assert len(wafers) == 3  # W1 and one blank per added layer
            assert {n.lot_id for n in wafers} == {lot}
            assert f"{lot}-W01" in {n.name for n in wafers}
            assert [n.name for n in nodes if n.kind == "stack"] == [stack]
            tools = {st["tool"] for n in nodes for st in n.steps}
            assert {"BOND-1", "PLAT-1", "DICE-1", "SPUT-1"} <= tools
            consumables = {n.name for n in nodes if n.kind == "consumable"}
            assert any("target_cu" in c for c in consumables)
            forward = trace.forward(s, f"{lot}-W01")  # type: ignore[arg-type]
            packages = [n for n in forward if n.kind == "package"]
            assert len(packages) == len(grid)
            assert all(n.name.startswith(stack) for n in packages)

        engine.db.run_sync(check)
    finally:
        await close(engine)


async def test_flip_chip_package_traces_to_wafer_panel_position_and_lots(
    instant_line: SimLine, db_url: str
) -> None:
    engine = await make_engine(instant_line, db_url)
    try:
        r = find("fcbga-thermal-001-19")
        out = await run(engine, r, wafers=1)
        assert out.state == "completed"
        lot = out.lot_id

        def check(s: object) -> None:
            _, dies = trace.die_map(s, f"{lot}-ASM01")  # type: ignore[arg-type]
            package = dies[7]["package"]
            nodes = trace.backward(s, package)  # type: ignore[arg-type]
            me = nodes[0]
            assert me.position["die_x"] == me.position["unit_x"] == dies[7]["x"]
            kinds = {n.kind: n.name for n in nodes}
            assert kinds["wafer"] == f"{lot}-W01" and kinds["panel"] == f"{lot}-P01"
            lots = {n.name for n in nodes if n.kind == "consumable"}
            assert any(".ball_supply." in n for n in lots), lots
            assert any(".flux." in n for n in lots)
            assert any(".reel_adhesive_film." in n for n in lots)  # the NCF underfill
            forward = trace.forward(s, next(n for n in lots if ".ball_supply." in n))  # type: ignore[arg-type]
            assert package in {n.name for n in forward}

        engine.db.run_sync(check)
    finally:
        await close(engine)


async def test_each_step_commits_once_with_its_events(instant_line: SimLine, db_url: str) -> None:
    engine = await make_engine(instant_line, db_url)
    try:
        out = await run(engine, find("substrate-first-fc-003-1"), strips=1)
        assert out.state == "completed"

        def check(s: object) -> None:
            q = s.execute  # type: ignore[attr-defined]
            runs = q(text("SELECT step_index, count(*) FROM step_run WHERE lot_id = :l"
                          " GROUP BY step_index"), {"l": out.lot_id}).all()  # fmt: skip
            assert all(n == 1 for _, n in runs)
            seqs = [r[0] for r in q(text("SELECT seq FROM outbox WHERE lot_id = :l ORDER BY id"),
                                    {"l": out.lot_id})]  # fmt: skip
            assert seqs == list(range(1, len(seqs) + 1))
            dup = q(text("SELECT count(*) FROM (SELECT 1 FROM edge GROUP BY parent_id, child_id,"
                         " kind, step_run_id HAVING count(*) > 1) d")).scalar()  # fmt: skip
            assert dup == 0

        engine.db.run_sync(check)
    finally:
        await close(engine)


# -- holds: alarm, out of spec, unreachable tool; release continues -----------------------


async def _release_and_resume(engine: Engine, lot_id: str) -> Outcome:
    await service(engine).release(lot_id)
    return await engine.run_lot(lot_id)


async def test_tool_alarm_holds_then_release_completes(
    instant_line: SimLine, tmp_path: Path
) -> None:
    engine = await make_engine(instant_line, f"sqlite:///{tmp_path / 'g.db'}")
    try:
        instant_line.fault("SPUT-1", "alarm", code=105, at=0.5)
        out = await run(engine, find("stacked-wlp-000-11"))
        assert out.state == "held"
        assert "alarm 105" in (out.hold_reason or "") and "SPUT-1" in (out.hold_reason or "")
        d = engine.pool.drivers["SPUT-1"]
        await d.clear_alarms()  # the equipment engineer acknowledges the alarm
        out = await _release_and_resume(engine, out.lot_id)
        assert out.state == "completed", out.hold_reason
    finally:
        await close(engine)


async def test_out_of_spec_holds_after_the_step_then_release_completes(
    instant_line: SimLine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = find("stacked-wlp-000-11")
    tight = src.path.read_text().replace(
        "spec: {thickness: {min: 1.8 µm, max: 2.2 µm}}",
        "spec: {thickness: {min: 2.5 µm, max: 3 µm}}",
    )
    assert tight != src.path.read_text()
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / src.path.name).write_text(tight)
    monkeypatch.setenv("FABLINE_RECIPES", str(tmp_path / "recipes"))
    engine = await make_engine(instant_line, f"sqlite:///{tmp_path / 'g.db'}")
    try:
        out = await run(engine, find("stacked-wlp-000-11"))
        assert out.state == "held"
        assert "out of spec at step heat-layer: thickness" in (out.hold_reason or "")
        out = await _release_and_resume(engine, out.lot_id)
        assert out.state == "completed"
    finally:
        await close(engine)


async def test_unreachable_tool_holds_then_release_completes(
    instant_line: SimLine, tmp_path: Path
) -> None:
    engine = await make_engine(instant_line, f"sqlite:///{tmp_path / 'g.db'}", retry_budget=1.0)
    try:
        instant_line.fault("DICE-1", "offline", seconds=60)
        out = await run(engine, find("stacked-wlp-000-11"))
        assert out.state == "held"
        assert "DICE-1 unreachable" in (out.hold_reason or "")
        instant_line.fault("DICE-1", "clear")
        out = await _release_and_resume(engine, out.lot_id)
        assert out.state == "completed", out.hold_reason
    finally:
        instant_line.fault("DICE-1", "clear")
        await close(engine)
