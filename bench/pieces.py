"""Lots of 25 work pieces of every recipe: jobs per second through the engine, and its
overhead per job next to the raw driver calls for the same jobs, in the same run.

    .venv/bin/python bench/pieces.py [--pieces 25] [--db sqlite|postgres]

A `fabline sim` process with instant jobs serves the tools (its own core, as on a real line).
Each recipe of the catalog (default options) runs one lot of `--pieces` wafers (strips for
003, capped at what the recipe allows) through `Engine.run_lot`: one job per piece (or batch,
or boat of packages), each with its intent, its job and its commit. Then the same jobs —
each step run's tool, operation and recorded setpoints — go through the drivers (`start` +
`wait`), nothing recorded. Consumables are replaced before each lot and each replay, as an
engineer would between lots, and when one runs out mid-lot (the lot holds, is released and
resumed: that time counts; a 25-wafer fcbga lot prints its ball mask 693 times a step).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

from driver_overhead import start_sim  # bench/driver_overhead.py
from genealogy import PG_ADMIN, PgTarget, SqliteTarget, Target  # bench/genealogy.py
from sqlalchemy import select
from sqlmodel import col

from controller.engine import Engine, EngineSettings
from controller.genealogy.db import Database
from controller.genealogy.models import StepRun
from controller.logs import configure_logging
from controller.lots import LotRequest, LotService
from controller.recipes.catalog import catalog
from drivers.base import Job, ToolDriver
from drivers.errors import ToolError
from drivers.interfaces import interface_for
from drivers.line import parse_line
from drivers.registry import make_driver
from drivers.units import Quantity


async def fresh_consumables(drivers: dict[str, ToolDriver]) -> None:
    for d in drivers.values():
        for c in d.interface.consumables:
            await d.replace_consumable(c.name)


def job_of(run: StepRun, job_id: str) -> Job:
    """The job a step run sent, from its recorded setpoints (values in their units)."""
    assert run.tool_kind is not None and run.operation is not None
    op = interface_for(run.tool_kind).operation(run.operation)
    params: dict[str, object] = {}
    for p in op.params:
        sp = run.setpoints.get(p.name)
        if isinstance(sp, dict) and "value" in sp:
            v = sp["value"]
            params[p.name] = v if p.is_choice else Quantity(float(v), p.unit)
    return Job(job_id, op.name, params)


async def main(pieces: int, target: Target) -> None:
    proc, described = start_sim()
    line = parse_line(described, "fabline sim")
    db = Database(target.fresh())
    engine = Engine(db, [make_driver(t) for t in line.tools], EngineSettings(auto_confirm=True))
    raw = {t.id: make_driver(t) for t in line.tools}
    service = LotService(db, station="bench", expansions=engine.expansions, allow_draft=True)
    rows: list[tuple[str, int, int, float, float]] = []
    try:
        await engine.connect()
        for d in raw.values():
            await d.connect()
        for loaded in catalog():
            r = loaded.recipe
            first, spec = next(iter(r.inputs.items()))
            span = spec.count_range()
            n = min(pieces, span[1]) if span else pieces
            lot = f"B-{r.id[:20]}"
            await service.create(
                LotRequest(lot_id=lot, recipe=r.id, inputs={first: n}), recipe=loaded
            )
            await fresh_consumables(engine.pool.drivers)
            t0 = time.perf_counter()
            out = await engine.run_lot(lot)
            stops = 0
            while out.state == "held" and out.hold_kind in ("refused", "alarm") and stops < 50:
                # a consumable ran out mid-lot, or wore into an alarm (a blade's kerf
                # wandering off the street): the engineer replaces it and releases
                stops += 1
                await fresh_consumables(engine.pool.drivers)
                for d in engine.pool.drivers.values():
                    await d.clear_alarms()
                await service.release(lot)
                out = await engine.run_lot(lot)
            t_engine = time.perf_counter() - t0
            if out.state != "completed":
                print(f"  {r.id}: {out.state} ({out.hold_reason})")
                continue
            runs: list[Any] = await db.run(
                lambda s, lot=lot: list(
                    s.scalars(
                        select(StepRun)
                        .where(col(StepRun.lot_id) == lot, col(StepRun.kind) == "tool")
                        .order_by(col(StepRun.id))
                    )
                )
            )
            runs = [r for r in runs if r.state == "done"]  # not the refused starts
            await fresh_consumables(raw)
            t0 = time.perf_counter()
            for k, run in enumerate(runs):
                assert run.tool_id is not None
                job = job_of(run, f"R{lot[:20]}-{k}")
                for again in range(2):  # a consumable ran out or wore into an alarm: as above
                    try:
                        await raw[run.tool_id].start(job)
                        await raw[run.tool_id].wait(job.job_id)
                        break
                    except ToolError:
                        if again:
                            raise
                        await fresh_consumables(raw)
                        await raw[run.tool_id].clear_alarms()
                        job = job_of(run, f"R{lot[:20]}-{k}b")
            t_raw = time.perf_counter() - t0
            rows.append((r.id, n, len(runs), t_engine, t_raw))
    finally:
        await engine.close()
        for d in raw.values():
            await d.close()
        db.close()
        proc.terminate()
        proc.wait()
    print(f"lots of up to {pieces} pieces, instant jobs, genealogy on {target.name}")
    print(f"  {'recipe':28} {'pieces':>6} {'jobs':>5} {'jobs/s':>7} {'raw/s':>7}"
          f" {'ms/job':>7} {'raw ms':>7} {'ratio':>6}")  # fmt: skip
    for rid, n, jobs, te, tr in rows:
        print(f"  {rid:28} {n:6d} {jobs:5d} {jobs / te:7.0f} {jobs / tr:7.0f}"
              f" {1000 * te / jobs:7.2f} {1000 * tr / jobs:7.2f} {te / tr:6.2f}")  # fmt: skip
    jobs = sum(r[2] for r in rows)
    te, tr = sum(r[3] for r in rows), sum(r[4] for r in rows)
    print(f"  {'all':28} {'':6} {jobs:5d} {jobs / te:7.0f} {jobs / tr:7.0f}"
          f" {1000 * te / jobs:7.2f} {1000 * tr / jobs:7.2f} {te / tr:6.2f}")  # fmt: skip
    print(f"  engine overhead per job: {1000 * (te - tr) / jobs:.2f} ms over the raw calls")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pieces", type=int, default=25, help="wafers (or strips) per lot")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-admin", default=PG_ADMIN, help="PostgreSQL to create a bench db in")
    args = ap.parse_args()
    configure_logging(os.environ.get("FABLINE_LOG", "error"))
    with tempfile.TemporaryDirectory():
        t: Target = SqliteTarget() if args.db == "sqlite" else PgTarget(args.pg_admin)
        try:
            asyncio.run(main(args.pieces, t))
        finally:
            t.close()
