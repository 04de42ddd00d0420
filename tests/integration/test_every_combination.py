"""Every recipe with every option combination it accepts runs to completion on the embedded
simulated line, and what ran holds the physics chains together:

- each dicing step cut the stack the lot measured (summed here independently of the recipe's
  own formula) plus 20–50 µm into the tape;
- no mould or underfill ran with a gap below 3 × its filler top cut (the mould's declared
  narrowest gap, and the chip stand-offs and part clearances earlier steps measured);
- every process warning a tool raised at the end of a job was recorded as an event on that
  lot and step.

Lots of a recipe run concurrently on one instant line, in batches between which the line's
consumables are renewed (dozens of lots wear out blades and wheels).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import structlog

from controller.engine import Engine, EngineSettings
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.recipes import LoadedRecipe, catalog
from controller.recipes.catalog import combinations
from controller.recipes.expand import matches
from drivers.interfaces.coater import GAP_PER_PARTICLE, PARTICLE_UM
from drivers.interfaces.dicing import TAPE_MAX_UM, TAPE_MIN_UM
from drivers.interfaces.mold import FILLER_CUT_UM, GAP_PER_CUT
from drivers.registry import make_driver
from simulators.line import INSTANT, SimLine, default_line
from tests import lots as lots_

BATCH = 8  # lots in flight at once; the line is renewed between batches (a 50 µm hub blade
# has 1.3 mm of exposure: eight cuts of a four-layer stack are as many as it takes)
# ... a fcbga lot flux-cleans 28 boats of packages (~34 L of the cleaner's 200 L of wash
# chemistry): four of its lots a batch
BATCHES = {"fcbga-thermal-001-19": 4}
SHM = Path("/dev/shm")  # thousands of small commits: on tmpfs where there is one
HAS_SHM = SHM.is_dir()

Runs = list[dict[str, Any]]  # one lot's step runs: step_id, template, setpoints, results, ...


def accepted(r: LoadedRecipe) -> list[dict[str, str]]:
    return [
        c
        for c in combinations(r.recipe)
        if not any(matches(k.when, c) for k in r.recipe.constraints)
    ]


# -- what is in a dicing street, by recipe: the measured layers, summed independently ----------


def _um(runs: Runs, template: str, result: str) -> float:
    """Sum of a result over every run of a step (0 when the options left it out), µm."""
    total = 0.0
    for r in runs:
        if r["template"] == template and result in r["results"]:
            v = r["results"][result]
            total += v["value"] / 1000.0 if v["unit"] == "nm" else v["value"]
    return total


def _present(runs: Runs, template: str) -> bool:
    return any(r["template"] == template for r in runs)


STREET: Mapping[str, Callable[[Runs], float]] = {
    "stacked-wlp-000-11": lambda m: 725 + _um(m, "bond", "blt") + _um(m, "thin", "thickness")
    + _um(m, "resin-seal", "thickness") + _um(m, "heat-barrier", "thickness")
    + _um(m, "heat-layer", "thickness"),
    "fcbga-thermal-001-19": lambda m: (
        _um(m, "backgrind", "thickness") if _present(m, "backgrind") else 725
    ) + _um(m, "tc-film", "thickness") + _um(m, "tc-epoxy", "printed_thickness")
    + _um(m, "attach", "standoff") + 400,
    "substrate-first-fc-003-1": lambda m: 300 + (
        _um(m, "expose-back", "thickness") if _present(m, "expose-back")
        else _um(m, "second-encapsulant", "thickness")
    ),
    "wlcsp-002-24": lambda m: 775 + _um(m, "pl-cure", "cured_thickness"),
    "wlcsp-002-34": lambda m: 775 + _um(m, "expose-grind", "thickness")
    + _um(m, "pl-cure", "cured_thickness"),
    "wlcsp-002-38": lambda m: 775 + _um(m, "dl-cure", "cured_thickness")
    + _um(m, "pl-cure", "cured_thickness"),
    "wlcsp-002-42": lambda m: 775 + _um(m, "pl-cure", "cured_thickness"),
    "wlcsp-002-45": lambda m: 775 + _um(m, "pl-cure", "cured_thickness"),
    "wlcsp-002-48": lambda m: 775 + _um(m, "attach", "thickness"),
    "wlcsp-002-49": lambda m: 775 + _um(m, "attach", "thickness"),
}  # fmt: skip


def _set(run: dict[str, Any], name: str) -> Any:
    return run["setpoints"][name]["value"]


def dicing_problems(recipe_id: str, runs: Runs) -> list[str]:
    out = []
    stack = STREET[recipe_id](runs)
    for r in runs:
        if r["tool_kind"] != "dicing":
            continue
        set_stack, depth = float(_set(r, "stack_thickness")), float(_set(r, "cut_depth"))
        if not math.isclose(set_stack, stack, abs_tol=0.01):
            out.append(f"{r['step_id']}: stack_thickness {set_stack:g} µm, measured {stack:g}")
        if not TAPE_MIN_UM - 1e-6 <= depth - stack <= TAPE_MAX_UM + 1e-6:
            out.append(f"{r['step_id']}: cut {depth:g} µm is {depth - stack:g} µm past the stack")
        if "formula" not in r["setpoints"]["cut_depth"]:
            out.append(f"{r['step_id']}: cut_depth recorded without its formula")
    return out


def gap_problems(runs: Runs) -> list[str]:
    out: list[str] = []
    gaps: list[tuple[float, str]] = []  # measured gaps left open since the last mould
    for r in runs:
        kind, op = r["tool_kind"], r["operation"]
        if kind == "bonder" and op == "flip_chip" and _set(r, "underfill") == "NONE":
            gaps.append((r["results"]["standoff"]["value"], f"stand-off of {r['step_id']}"))
        if kind == "bonder" and op == "attach" and float(_set(r, "clearance")) > 0:
            gaps.append((float(_set(r, "clearance")), f"clearance at {r['step_id']}"))
        if kind == "coater" and op == "dispense" and _set(r, "pattern") == "CAPILLARY":
            need = GAP_PER_PARTICLE * PARTICLE_UM[_set(r, "material")]
            if float(_set(r, "gap")) < need:
                out.append(f"{r['step_id']}: capillary gap {_set(r, 'gap')} < {need}")
        if kind == "mold" and op == "mold":
            need = GAP_PER_CUT * FILLER_CUT_UM[_set(r, "compound")]
            declared = float(_set(r, "min_gap"))
            occupied = float(_set(r, "occupied_volume")) > 0
            if occupied and declared == 0:
                out.append(f"{r['step_id']}: parts in the cavity, no min_gap")
            if declared and declared < need:
                out.append(f"{r['step_id']}: min_gap {declared:g} < {need:g} µm")
            out += [f"{r['step_id']}: {what} {g:g} < {need:g} µm" for g, what in gaps if g < need]
            gaps = []
    return out


# -- the run -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def line() -> AsyncIterator[SimLine]:
    # thousands of jobs: a debug line for each would cost more than some steps
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        async with SimLine(default_line(), time_scale=INSTANT, seed=23) as sim:
            yield sim
    finally:
        structlog.reset_defaults()


async def _engine(sim: SimLine, db_path: Path) -> Engine:
    db = Database(f"sqlite:///{db_path}")
    await asyncio.to_thread(db.migrate)
    settings = replace(EngineSettings(), auto_confirm=True, retry_budget=2.0, request_poll=0.05)
    engine = Engine(db, [make_driver(t, timeout=1.0) for t in sim.describe().tools], settings)
    await engine.connect()
    return engine


def _history(s: Any, *, lot_id: str, steps: Mapping[int, str]) -> tuple[Runs, list[dict[str, Any]]]:
    runs = [
        {
            "step_id": r.step_id,
            "template": steps[r.step_index],
            "tool_kind": r.tool_kind,
            "tool_id": r.tool_id,
            "job_id": r.job_id,
            "operation": r.operation,
            "setpoints": r.setpoints,
            "results": r.results,
        }
        for r in store.step_runs(s, lot_id)
        if r.kind == "tool" and r.state == "done"
    ]
    return runs, store.lot_events(s, lot_id)


def _batches() -> list[tuple[str, int]]:
    """(recipe, index of its first combination) for every batch of lots: one test each, so
    the parallel suite spreads a recipe's batches over its processes."""
    out = []
    for r in sorted(catalog(), key=lambda x: x.recipe.id):
        size = BATCHES.get(r.recipe.id, BATCH)
        out += [(r.recipe.id, start) for start in range(0, len(accepted(r)), size)]
    return out


BATCH_RUNS = _batches()


@pytest.mark.parametrize(
    ("recipe_id", "start"),
    BATCH_RUNS,
    ids=[f"{r}-{s // BATCHES.get(r, BATCH) + 1}" for r, s in BATCH_RUNS],
)
async def test_every_accepted_combination_runs_and_holds_its_physics(
    line: SimLine, tmp_path: Path, recipe_id: str, start: int
) -> None:
    r = next(x for x in catalog() if x.recipe.id == recipe_id)
    where = Path(tempfile.mkdtemp(dir=SHM)) if HAS_SHM else tmp_path
    engine = await _engine(line, where / "combos.db")
    failures: list[str] = []
    try:
        size = BATCHES.get(recipe_id, BATCH)
        line.maintain()  # fresh blades, wheels and supplies for each batch
        lots: dict[str, dict[str, str]] = {}
        for i, options in enumerate(accepted(r)[start : start + size], start):
            lot_id = f"C{i:03d}-{recipe_id[-6:]}"
            await lots_.create(engine, r, lot_id, options)
            lots[lot_id] = options
        for out in await engine.run_lots(list(lots)):
            if out.state != "completed":
                failures.append(f"{lots[out.lot_id]}: {out.state} ({out.hold_reason})")
        assert not failures, failures
        for lot_id, options in lots.items():
            steps = {s.index: s.template for s in r.expand(options).steps}
            runs, events = engine.db.run_sync(
                functools.partial(_history, lot_id=lot_id, steps=steps)
            )
            problems = dicing_problems(recipe_id, runs) + gap_problems(runs)
            recorded = {
                (e["step_id"], e["data"]["code"]) for e in events if e["type"] == "tool_warning"
            }
            for run in runs:
                job = line.sim(run["tool_id"]).job(run["job_id"])
                assert job is not None, run["job_id"]
                for code in job.warnings:
                    if (run["step_id"], code) not in recorded:
                        problems.append(f"{run['step_id']}: warning {code} not recorded")
            if problems:
                failures.append(f"{options}: {problems}")
        assert not failures, failures
    finally:
        await engine.close()
        engine.db.close()
        if where != tmp_path:
            shutil.rmtree(where, ignore_errors=True)
