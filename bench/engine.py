"""Engine overhead per step, next to the raw driver calls for the same steps, in one run.

    .venv/bin/python bench/engine.py [--lots 5] [--rounds 3] [--db sqlite|postgres]

A `fabline sim` process with instant jobs serves the tools (its own core, as on a real line).
The lot runs recipe wlcsp-002-42 (19 tool steps on eight tools) without its dicing step, so
every step is process time only, and that is zero:

- engine: `Engine.run_lot` for a one-wafer lot: per step it persists the intent, starts the
  job, waits for it, and commits results, genealogy and MES events in one transaction;
- raw: the same steps' jobs on the same tools through the drivers (`start` + `wait`), nothing
  recorded.
Per-step times are medians of the rounds; the ratio is engine / raw (target ≤ 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from driver_overhead import start_sim  # bench/driver_overhead.py
from genealogy import PG_ADMIN, PgTarget, SqliteTarget, Target  # bench/genealogy.py
from sqlalchemy import select
from sqlmodel import col

from controller.engine import Engine, EngineSettings
from controller.genealogy.db import Database
from controller.genealogy.models import StepRun
from controller.logs import configure_logging
from controller.lots import LotRequest, LotService
from controller.recipes import LoadedRecipe
from controller.recipes.catalog import load_text, recipes_dir
from controller.recipes.expand import ToolStepPlan, expand
from drivers.base import Job, ToolDriver
from drivers.interfaces import interface_for
from drivers.line import parse_line
from drivers.registry import make_driver
from drivers.units import Quantity

RECIPE = "wlcsp-002-42"


def bench_recipe() -> LoadedRecipe:
    path = recipes_dir() / f"{RECIPE}.yaml"
    data = yaml.safe_load(path.read_text())
    data["steps"] = [s for s in data["steps"] if s["id"] != "dice"]
    data["id"] = f"{RECIPE}-nodice"
    return load_text(yaml.safe_dump(data, allow_unicode=True), Path(f"{data['id']}.yaml"))


def job_for(step: ToolStepPlan, kind: str, job_id: str) -> Job:
    """The job the engine sends for a step (same parameters, same units)."""
    op = interface_for(kind).operation(step.operation)
    params: dict[str, object] = {}
    for p in op.params:
        if p.name in step.values:
            v = step.values[p.name]
            params[p.name] = v if p.is_choice else Quantity(float(v), p.unit)
    return Job(job_id, op.name, params)


async def engine_lots(engine: Engine, recipe: LoadedRecipe, tag: str, n: int) -> float:
    """Seconds for `n` one-wafer lots, run one after the other."""
    service = LotService(engine.db, station="bench", expansions=engine.expansions, allow_draft=True)
    lots = [f"E{tag}-{i}" for i in range(n)]
    for lot in lots:
        await service.create(LotRequest(lot_id=lot, recipe=recipe.recipe.id), recipe=recipe)
    t0 = time.perf_counter()
    for lot in lots:
        outcome = await engine.run_lot(lot)
        assert outcome.state == "completed", outcome.hold_reason
    return time.perf_counter() - t0


async def raw_lots(
    plan: list[tuple[ToolStepPlan, ToolDriver]], tag: str, n: int
) -> float:  # fmt: skip
    t0 = time.perf_counter()
    for i in range(n):
        for k, (step, driver) in enumerate(plan):
            job = job_for(step, driver.kind, f"R{tag}-{i}-{k}")
            await driver.start(job)
            await driver.wait(job.job_id)
    return time.perf_counter() - t0


async def fresh_consumables(drivers: dict[str, ToolDriver]) -> None:
    """What an engineer does between runs: new targets, baths, blades, balls."""
    for d in drivers.values():
        for c in d.interface.consumables:
            await d.replace_consumable(c.name)


async def main(lots: int, rounds: int, target: Target) -> None:
    proc, described = start_sim()
    line = parse_line(described, "fabline sim")
    recipe = bench_recipe()
    steps = expand(recipe.recipe, {}).tool_steps
    url = target.fresh()
    db = Database(url)
    engine = Engine(db, [make_driver(t) for t in line.tools], EngineSettings(auto_confirm=True))
    raw_drivers = {t.id: make_driver(t) for t in line.tools}
    per_step: dict[str, list[float]] = {"engine": [], "raw": []}
    try:
        await engine.connect()
        for d in raw_drivers.values():
            await d.connect()
        await engine_lots(engine, recipe, "warm", 1)  # which tool runs each step
        used: list[Any] = await db.run(
            lambda s: list(
                s.scalars(
                    select(col(StepRun.tool_id))
                    .where(col(StepRun.lot_id) == "Ewarm-0")
                    .order_by(col(StepRun.id))
                )
            )
        )
        plan = [(s, raw_drivers[t]) for s, t in zip(steps, used, strict=True)]
        for r in range(rounds):
            await fresh_consumables(raw_drivers)
            per_step["raw"].append(await raw_lots(plan, f"{r}", lots) / (lots * len(steps)))
            await fresh_consumables(raw_drivers)
            per_step["engine"].append(
                await engine_lots(engine, recipe, f"{r}", lots) / (lots * len(steps))
            )
    finally:
        await engine.close()
        for d in raw_drivers.values():
            await d.close()
        db.close()
        proc.terminate()
        proc.wait()
    med = {k: statistics.median(v) * 1000 for k, v in per_step.items()}
    tools = len({t for t in used})
    print(
        f"engine vs raw drivers, {len(steps)} zero-time steps on {tools} tools, {lots} lots"
        f" per round, medians of {rounds} rounds, genealogy on {target.name}"
    )
    print(f"  raw driver calls (start + wait) : {med['raw']:7.2f} ms per step")
    print(f"  engine (intent, job, commit)    : {med['engine']:7.2f} ms per step")
    print(f"  engine / raw                    : {med['engine'] / med['raw']:7.2f}×  (target ≤ 1.5)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lots", type=int, default=5, help="one-wafer lots per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-admin", default=PG_ADMIN, help="PostgreSQL to create a bench db in")
    args = ap.parse_args()
    configure_logging("error")
    with tempfile.TemporaryDirectory():
        t: Target = SqliteTarget() if args.db == "sqlite" else PgTarget(args.pg_admin)
        try:
            asyncio.run(main(args.lots, args.rounds, t))
        finally:
            t.close()
