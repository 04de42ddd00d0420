"""Whole lots through the engine with the bonder and the dicing saw on SECS/GEM: every recipe
(each uses the saw, most the bonder) and every option value completes, and a lot leaves the
same genealogy, step data and MES events as the same lot on the Modbus line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from controller.engine import Engine, EngineSettings, Outcome
from controller.genealogy.db import Database
from controller.recipes import LoadedRecipe, catalog, find
from controller.recipes.catalog import combinations
from drivers.gem_driver import GemDriver
from drivers.line import Line, ToolEntry
from drivers.registry import make_driver
from simulators.line import INSTANT, SimLine, default_line
from tests import lots
from tests.helpers import recipe_variants

GEM_TOOLS = ("BOND-1", "DICE-1")
RECIPES = sorted(r.recipe.id for r in catalog())


def gem_line_spec() -> Line:
    base = default_line()
    tools = [
        ToolEntry(id=t.id, kind=t.kind, protocol="gem", setup=t.setup) if t.id in GEM_TOOLS else t
        for t in base.tools
    ]
    return Line(line="sim-gem", tools=tools)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gem_line() -> AsyncIterator[SimLine]:
    async with SimLine(gem_line_spec(), time_scale=INSTANT, seed=11) as line:
        yield line


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def modbus_line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=INSTANT, seed=11) as line:
        yield line


async def make_engine(line: SimLine, path: Path) -> Engine:
    db = Database(f"sqlite:///{path}")
    await asyncio.to_thread(db.migrate)
    drivers = [make_driver(t, timeout=1.0) for t in line.describe().tools]
    settings = EngineSettings(auto_confirm=True, retry_budget=2.0, request_poll=0.05)
    engine = Engine(db, drivers, settings)
    await engine.connect()
    return engine


async def close(engine: Engine) -> None:
    await engine.close()
    engine.db.close()


async def run(
    engine: Engine, recipe: LoadedRecipe, lot_id: str, options: dict[str, str]
) -> Outcome:
    await lots.create(engine, recipe, lot_id, options)
    return await engine.run_lot(lot_id)


def shape(engine: Engine, lot_id: str) -> dict[str, Any]:
    """What a lot left behind, without ids and times: units and edges by kind, each step's
    tool, operation and results, and the MES events in order."""

    def read(s: Any) -> dict[str, Any]:
        q = s.execute
        units = q(text("SELECT kind, count(*) FROM unit WHERE lot_id = :l GROUP BY kind"
                       " ORDER BY kind"), {"l": lot_id}).all()  # fmt: skip
        edges = q(text("SELECT e.kind, count(*) FROM edge e JOIN step_run r ON"
                       " e.step_run_id = r.id WHERE r.lot_id = :l GROUP BY e.kind ORDER BY"
                       " e.kind"), {"l": lot_id}).all()  # fmt: skip
        steps = q(text("SELECT step_id, tool_id, operation, state, results FROM step_run"
                       " WHERE lot_id = :l ORDER BY step_index, attempt"),
                  {"l": lot_id}).all()  # fmt: skip
        # the jobs of a step of several pieces run at once: their events interleave as the
        # tools finish, so a step's events compare as a set, the steps in order
        rows = q(text("SELECT payload FROM outbox WHERE lot_id = :l ORDER BY seq"),
                 {"l": lot_id}).scalars().all()  # fmt: skip
        events: list[Any] = []
        for payload in rows:
            p = json.loads(payload) if isinstance(payload, str) else payload
            kind, step = p["type"], p.get("step_id")
            if events and step is not None and events[-1][0] == step:
                events[-1][1].append(kind)
            else:
                events.append((step, [kind]))
        events = [(step, sorted(kinds)) for step, kinds in events]
        return {"units": units, "edges": edges, "steps": steps, "events": events}

    result: dict[str, Any] = engine.db.run_sync(read)
    return result


@pytest.mark.parametrize("recipe_id", RECIPES)
async def test_recipe_on_gem_tools_leaves_what_it_leaves_on_modbus(
    gem_line: SimLine, modbus_line: SimLine, tmp_path: Path, recipe_id: str
) -> None:
    r = find(recipe_id)
    options = {k: str(v) for k, v in next(combinations(r.recipe)).items()}
    gem = await make_engine(gem_line, tmp_path / "gem.db")
    ref = await make_engine(modbus_line, tmp_path / "modbus.db")
    try:
        assert {type(d) for tid, d in gem.pool.drivers.items() if tid in GEM_TOOLS} == {GemDriver}
        gem_line.maintain()
        modbus_line.maintain()
        lot = f"GF-{recipe_id[:9]}"  # the same lot id: the simulators seed jobs by it
        out_gem = await run(gem, r, lot, options)
        out_ref = await run(ref, r, lot, options)
        assert out_gem.state == out_ref.state == "completed", out_gem.hold_reason
        assert out_gem.units == out_ref.units
        a, b = shape(gem, lot), shape(ref, lot)
        assert a["units"] == b["units"] and a["edges"] == b["edges"]
        assert a["events"] == b["events"]
        assert [s[:4] for s in a["steps"]] == [s[:4] for s in b["steps"]]
        for s_gem, s_ref in zip(a["steps"], b["steps"], strict=True):
            res_gem, res_ref = _results(s_gem[4]), _results(s_ref[4])
            assert res_gem.keys() == res_ref.keys(), s_gem[0]
            for k, v in res_ref.items():  # Modbus carries f32, GEM F8
                if isinstance(v, float):
                    assert res_gem[k] == pytest.approx(v, rel=1e-5, abs=1e-5), (s_gem[0], k)
                else:
                    assert res_gem[k] == v, (s_gem[0], k)
        assert any(s[1] in GEM_TOOLS for s in a["steps"])
    finally:
        await close(gem)
        await close(ref)


def gem_jobs(r: LoadedRecipe, options: dict[str, str]) -> set[tuple[str, str]]:
    """The (operation, setpoints) of the recipe's bonder and dicing-saw steps."""
    return {
        (s.operation, json.dumps(s.values, sort_keys=True))
        for s in r.expand(options).tool_steps
        if s.tool in ("bonder", "dicing")
    }


@pytest.mark.parametrize("recipe_id", RECIPES)
async def test_every_option_value_completes_on_gem_tools(
    gem_line: SimLine, tmp_path: Path, recipe_id: str
) -> None:
    """Each option value that gives the GEM tools a job the defaults did not."""
    engine = await make_engine(gem_line, tmp_path / "g.db")
    try:
        r = find(recipe_id)
        variants = recipe_variants(r)
        seen = gem_jobs(r, variants[0])  # the defaults ran above
        for i, options in enumerate(variants[1:]):
            jobs = gem_jobs(r, options)
            if jobs <= seen:
                continue  # only the SCPI/Modbus tools see a difference: test_flows.py runs it
            seen |= jobs
            gem_line.maintain()
            out = await run(engine, r, f"GV-{recipe_id[:9]}-{i}", options)
            assert out.state == "completed", (options, out.hold_reason)
    finally:
        await close(engine)


async def test_a_gem_tool_in_local_holds_the_lot_with_the_reason(
    gem_line: SimLine, tmp_path: Path
) -> None:
    engine = await make_engine(gem_line, tmp_path / "g.db")
    try:
        gem_line.fault("DICE-1", "local")
        out = await run(engine, find("wlcsp-002-42"), "GL-1", {})
        assert out.state == "held"
        assert "DICE-1" in (out.hold_reason or "") and "on-line local" in (out.hold_reason or "")
    finally:
        gem_line.fault("DICE-1", "remote")
        await close(engine)


def _results(raw: Any, prefix: str = "") -> dict[str, Any]:
    """Step results flattened to dotted keys (they nest, e.g. per-unit data)."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    out: dict[str, Any] = {}
    for k, v in (raw or {}).items():
        if isinstance(v, dict):
            out.update(_results(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
