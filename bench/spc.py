"""SPC rule evaluation per new point, next to the insert of that point into SQLite, in one run.

    .venv/bin/python bench/spc.py [--points 20000] [--rounds 3]

The series is a kerf offset, stable (a fresh blade's noise) and then drifting up over its last
5 % as a blade wears, on an individuals chart with phase I limits from its first 25 points:

- spc: `evaluate_point` for each new point with all eight Nelson rules (and the moving-range
  check), given the 14 points before it — what the engine will call on each step commit;
- insert: the same point as one row (`INSERT` of chart id, index, value, moving range, time)
  into a SQLite file in WAL mode with synchronous=NORMAL (the project's settings), committed,
  with the standard sqlite3 module — the cheapest way the point can be stored.
- hook: the engine's whole SPC path for one step (`controller/engine/spc_hook.record`: the
  chart row, its limits, the last points, the rules, the point's insert, through SQLAlchemy)
  in a transaction of its own on a migrated SQLite database (`Database.run_sync`), next to
  an empty transaction on the same database: the difference is what SPC adds to a step's
  commit (`--hook-points`, fewer: it is ~100× slower than the bare rules).
Per-point times are medians of the rounds; the ratio is spc / insert.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from controller.engine import spc_hook
from controller.genealogy.db import Database
from controller.recipes import ChartPlan, ToolStepPlan
from controller.spc import (
    ChartDefinition,
    ChartKey,
    evaluate_point,
    evaluate_series,
    phase_one,
)

CHART = ChartDefinition(
    ChartKey("stacked-wlp-000-11", "dice", "kerf_offset", "DICE-1"), baseline_points=25
)


def series(n: int, seed: int = 1) -> list[float]:
    """A stable kerf offset (a fresh blade's noise) that drifts up over its last 5 %."""
    rng = random.Random(seed)
    start = int(0.95 * n)
    return [
        1.2 + 2.0 * max(0, i - start) / (n - start) + abs(rng.gauss(0.0, 0.5)) for i in range(n)
    ]


def time_spc(values: list[float]) -> tuple[float, int]:
    """Seconds for evaluating every point after the baseline one by one; violations found."""
    limits = phase_one(CHART, [[v] for v in values])
    k = CHART.window - 1
    found = 0
    t0 = time.perf_counter()
    for i in range(CHART.baseline_points, len(values)):
        point = evaluate_point(CHART, limits, values[i - k : i], [values[i]], i)
        found += not point.in_control
    return time.perf_counter() - t0, found


def time_insert(values: list[float], path: Path) -> float:
    """Seconds for inserting and committing every point after the baseline, one by one."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS spc_point (chart_id INTEGER, idx INTEGER, value REAL,"
        " spread REAL, at REAL, PRIMARY KEY (chart_id, idx))"
    )
    db.execute("DELETE FROM spc_point")
    sql = "INSERT INTO spc_point (chart_id, idx, value, spread, at) VALUES (?, ?, ?, ?, ?)"
    t0 = time.perf_counter()
    for i in range(CHART.baseline_points, len(values)):
        db.execute("BEGIN")
        db.execute(sql, (1, i, values[i], abs(values[i] - values[i - 1]), time.time()))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


STEP = ToolStepPlan(
    index=0, id="dice", template="dice", path=("steps", 0), name="dice", role=None,
    tool="dicing", operation="dice",
    spc=(ChartPlan("kerf_offset", "µm", "nelson", "warn", CHART.baseline_points, True),),
)  # fmt: skip


def time_hook(values: list[float], path: Path) -> tuple[float, float]:
    """Seconds per point of the engine's SPC hook in its own transaction, and of an empty
    transaction, on a fresh migrated SQLite database."""
    db = Database(f"sqlite:///{path}")
    db.migrate()
    try:
        for i, v in enumerate(values[: CHART.baseline_points]):  # phase I, not timed
            db.run_sync(lambda s, i=i, v=v: _record(s, i, v))
        t0 = time.perf_counter()
        for i in range(CHART.baseline_points, len(values)):
            db.run_sync(lambda s, i=i: _record(s, i, values[i]))
        hook = (time.perf_counter() - t0) / (len(values) - CHART.baseline_points)
        t0 = time.perf_counter()
        for _ in range(CHART.baseline_points, len(values)):
            db.run_sync(lambda s: None)
        empty = (time.perf_counter() - t0) / (len(values) - CHART.baseline_points)
    finally:
        db.close()
    return hook, empty


def _record(s: Session, i: int, v: float) -> None:
    spc_hook.record(s, lot_id=f"B-{i}", recipe_id="bench", step=STEP, tool_id="DICE-1",
                    run_id=i, job_id=f"B-{i}", results={"kerf_offset": v})  # fmt: skip


def main(points: int, rounds: int, hook_points: int) -> None:
    values = series(points)
    n = points - CHART.baseline_points
    per: dict[str, list[float]] = {"spc": [], "insert": [], "batch": [], "hook": [], "empty": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            spc_s, found = time_spc(values)
            per["spc"].append(spc_s / n)
            per["insert"].append(time_insert(values, Path(tmp) / "spc.db") / n)
            limits = phase_one(CHART, [[v] for v in values])
            t0 = time.perf_counter()
            evaluate_series(CHART, limits, [[v] for v in values])
            per["batch"].append((time.perf_counter() - t0) / points)
            hook, empty = time_hook(values[:hook_points], Path(tmp) / f"hook-{_}.db")
            per["hook"].append(hook)
            per["empty"].append(empty)
    med = {k: statistics.median(v) * 1e6 for k, v in per.items()}
    print(
        f"SPC per new point vs its SQLite insert, {n} points ({found} out of control),"
        f" {len(CHART.rules)} Nelson rules, window {CHART.window}, medians of {rounds} rounds"
    )
    print(f"  insert + commit (sqlite3, WAL)   : {med['insert']:7.1f} µs per point")
    print(f"  evaluate_point (incremental)     : {med['spc']:7.1f} µs per point")
    print(f"  spc / insert                     : {med['spc'] / med['insert']:7.2f}×")
    print(f"  evaluate_series (batch, per pt)  : {med['batch']:7.1f} µs per point")
    print(f"  engine hook, own transaction     : {med['hook']:7.1f} µs per point"
          f" ({hook_points} points)")  # fmt: skip
    print(f"  empty transaction, same database : {med['empty']:7.1f} µs")
    print(f"  what SPC adds to a step's commit : {med['hook'] - med['empty']:7.1f} µs")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hook-points", type=int, default=1_000)
    args = ap.parse_args()
    main(args.points, args.rounds, args.hook_points)
