"""A job whose start the controller could not see is re-attached and collected, never
started again (reliability issue, item 4). Each test drives a `fabline sim` line from the
CLI, with the tool misbehaving on the wire at the start of one job, then checks the tool's
own consumption against what genealogy recorded: a job run twice would have worn the tool
twice for one recorded step."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from controller.recipes import find
from drivers.line import load_line
from drivers.registry import make_driver
from tests.station import FABLINE, fabline, new_station, station_env

RECIPE = "substrate-first-fc-003-1"
# its steps that run when no queue time runs out: each must be recorded once
STEPS = [s.index for s in find(RECIPE).expand({}).steps if not s.rework]


@pytest_asyncio.fixture(loop_scope="session")
async def sim(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A simulated line in its own process; the environment to reach it."""
    env = station_env(tmp_path, new_station(), None, FABLINE_LOG="warning")
    proc = await asyncio.create_subprocess_exec(
        FABLINE, "sim", "--json", "--time-scale", "20000", "--seed", "3",
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and json.loads(await proc.stdout.readline())["tools"]
    try:
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


def runs(db: Path, lot: str) -> list[tuple[int, str, int, str, str]]:
    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT step_index, step_id, attempt, state, results FROM step_run"
            " WHERE lot_id = ? ORDER BY id",
            (lot,),
        ).fetchall()


def tools(db: Path, lot: str) -> list[str | None]:
    with sqlite3.connect(db) as c:
        return [
            r[0]
            for r in c.execute("SELECT tool_id FROM step_run WHERE lot_id = ? ORDER BY id", (lot,))
        ]


async def consumables(env: dict[str, str], tool_id: str) -> dict[str, Any]:
    line = load_line(Path(env["FABLINE_HOME"]) / "sim-line.json")
    driver = make_driver(line.tool(tool_id))
    await driver.connect()
    try:
        return {c.name: c for c in (await driver.status()).consumables}
    finally:
        await driver.close()


def recorded(rows: list[tuple[int, str, int, str, str]], result: str) -> float:
    total = 0.0
    for *_, state, results in rows:
        value = json.loads(results).get(result)
        if state == "done" and value is not None:
            total += value["value"]
    return total


async def test_garbled_reply_to_a_start_attaches_to_the_job_it_started(
    sim: dict[str, str], tmp_path: Path
) -> None:
    env, db = sim, tmp_path / "g.db"
    line = str(Path(env["FABLINE_HOME"]) / "sim-line.json")
    # the reply that confirms the dicing job's start, and the next reply, are line noise
    code, _, err = await fabline(
        "fault", "DICE-1", "garble", "--count", "2", "--on", "start", "--line", line, env=env
    )
    assert code == 0, err
    code, out, err = await fabline(
        "run", RECIPE, "--lot", "G1", "-i", "strips=1", "--line", line, "--db", str(db),
        "--json", env=env,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["state"] == "completed"
    rows = runs(db, "G1")
    assert [r[0] for r in rows] == STEPS  # every step once, one attempt each
    assert all(r[2] == 1 and r[3] == "done" for r in rows)
    blade = (await consumables(env, "DICE-1"))["blade_wear"]
    # the saw cut once (the tool's levels are f32 on the wire)
    assert blade.level == pytest.approx(recorded(rows, "blade_wear"), rel=1e-4)
    assert blade.level > 0


async def test_a_start_lost_past_the_retry_budget_is_collected_after_release(
    sim: dict[str, str], tmp_path: Path
) -> None:
    env, db = sim, tmp_path / "s.db"
    line = str(Path(env["FABLINE_HOME"]) / "sim-line.json")
    common = ["--line", line, "--db", str(db)]
    before = (await consumables(env, "MOLD-2"))["emc_supply"].level
    # the press loaded with the compound takes the first encapsulant's job, then answers
    # nothing for a long while
    code, _, err = await fabline(
        "fault", "MOLD-2", "stall", "--count", "1000000", "--on", "start", "--line", line,
        env=env,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await fabline(
        "run", RECIPE, "--lot", "S1", "-i", "strips=1", "--retry-budget", "1", *common,
        "--json", env=env,
    )  # fmt: skip
    assert code == 3, err  # held
    held = json.loads(out)
    assert held["state"] == "held" and "MOLD-2 unreachable" in held["hold_reason"]
    assert [r[3] for r in runs(db, "S1")][-1] == "failed"
    code, _, err = await fabline("fault", "MOLD-2", "clear", "--line", line, env=env)
    assert code == 0, err
    code, _, err = await fabline("release", "S1", "--db", str(db), env=env)
    assert code == 0, err
    code, out, err = await fabline("resume", "S1", *common, "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["state"] == "completed"
    rows = runs(db, "S1")
    assert [r[0] for r in rows] == STEPS  # the stalled start was collected
    assert all(r[3] == "done" for r in rows)
    used = before - (await consumables(env, "MOLD-2"))["emc_supply"].level
    on_press = [r for r, tool in zip(rows, tools(db, "S1"), strict=True) if tool == "MOLD-2"]
    assert used == pytest.approx(recorded(on_press, "emc_used"), rel=1e-4)  # each job ran once
    assert used > 0
