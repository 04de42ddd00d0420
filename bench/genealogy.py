"""Genealogy write and trace next to the raw database path, in one run.

    .venv/bin/python bench/genealogy.py [--db sqlite|postgres|both] [--quick] [--rounds 3]

Every figure is a ratio to the raw path measured in the same run (STACK.md); medians of the
rounds. SQLite runs on files in a temporary directory (same PRAGMAs as fabline: WAL,
synchronous=NORMAL, foreign_keys=ON); PostgreSQL on a database `fabline_bench_<random>`
created on the server of `--pg-url` and dropped at the end. Nothing is cached between runs.

Genealogy write — a dicing step: 25 stacked wafers × 2,500 dies (300 mm wafer, 4.9 × 5.3 mm
die, `die_positions`, the die map the engine uses) = 62,500 package units and their 62,500
split edges, the 25 stacks ended ('split'), 4 rejects per stack binned; one transaction
through `Database.run_sync` and the engine's own planning and writer (`plan_change` builds
the change before the clock starts; `controller.genealogy.write.write_change` writes it:
`insert_units` with RETURNING, `insert_edges`, `end_units`, `set_bins`). Raw path, into the
same schema in a fresh database: SQLite `sqlite3.executemany` (ids assigned from max(id)),
PostgreSQL `COPY` (ids drawn from the sequence), then the same UPDATEs. The unit rows are built
before the clock starts for both (as the engine's `plan_change` builds them before the
transaction); the raw path even gets its JSON pre-serialised, so it is the strict ceiling.
Foreign keys are enforced on both paths (on PostgreSQL they cost the raw COPY ~2/3 of its
time). Rate = inserted rows (units + edges) / s; target: fabline ≥ 25 % of raw.

Trace at scale — a database of 1,000,000 packages bulk-loaded raw (schema from the Alembic
migration, rows matching it exactly): 16 lots, each with its recipe version, 25 top + 25 bottom
wafers merged into 25 stacks (bonding, consuming an adhesive lot), the stacks ground (a
grinding-wheel lot shared by 4 lots; some lots with a failed first attempt) and diced into
2,500 packages each (positions, ~1 % rejects), then inspected — so a backward trace joins real
step runs. Then `trace.backward(session, package)` for random packages and
`trace.forward(session, wafer)` (→ 2,502 units) through `Database.run_sync`, next to the same
SQL on a raw sqlite3 / psycopg cursor (name lookup + the statement, no ORM, no thread hop; JIT
off on the raw PostgreSQL connection, as forward() does per statement). Targets: backward
< 5 ms, forward < 50 ms. `--explain` prints the query plans.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from controller.engine.material import Material, UnitView, plan_change
from controller.genealogy import store, trace
from controller.genealogy.db import Database
from controller.genealogy.models import Lot
from controller.genealogy.write import Change, write_change
from controller.recipes import ToolStepPlan
from controller.recipes.model import Genealogy, Split
from drivers.interfaces.dicing import die_positions

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
WAFER_MM = 300.0
DIE_X_MM, DIE_Y_MM = 4.9, 5.3  # exactly 2,500 whole dies on a 300 mm wafer
STACKS = 25
REJECTS_PER_STACK = 4
REASONS = ("missing ball", "bridged bumps", "non-wet bump", "open bump", "non-stick on pad")
T0 = datetime(2026, 11, 1, tzinfo=UTC)

COLS = {
    "unit": "id, name, kind, lot_id, slot, die_x, die_y, unit_x, unit_y, bin, bin_reason, "
    "material, state, created_step, ended_step, attributes",
    "edge": "parent_id, child_id, kind, step_run_id",
    "step_run": "id, lot_id, step_index, step_id, attempt, kind, tool_id, tool_kind, operation, "
    "job_id, recipe_id, recipe_hash, state, setpoints, results, message, started_at, ended_at",
    "lot": "id, recipe_id, recipe_version, recipe_hash, options, state, hold_reason, priority, "
    "next_step, step_count, station, owner, request, request_reason, event_seq, created_at, "
    "updated_at",
    "recipe_version": "hash, recipe_id, version, status, text, stored_at",
}
LOAD_ORDER = ("recipe_version", "lot", "step_run", "unit", "edge")


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def grid() -> list[tuple[int, int]]:
    return die_positions("ROUND", WAFER_MM, WAFER_MM, DIE_X_MM, DIE_Y_MM)


def unit_row(
    uid: int,
    name: str,
    kind: str,
    lot: str | None = None,
    slot: int | None = None,
    x: int | None = None,
    y: int | None = None,
    bin_: str | None = None,
    reason: str | None = None,
    material: str | None = None,
    state: str = "active",
    created: int = -1,
    ended: int | None = None,
    attributes: str = "{}",
) -> tuple[Any, ...]:
    """A `unit` row in COLS["unit"] order (round-wafer positions: die_x/die_y)."""
    return (uid, name, kind, lot, slot, x, y, None, None, bin_, reason, material, state,
            created, ended, attributes)  # fmt: skip


def dicing_setpoints() -> dict[str, Any]:
    return {
        "work_shape": {"value": "ROUND", "unit": ""},
        "work_width": {"value": WAFER_MM, "unit": "mm"},
        "die_x": {"value": DIE_X_MM, "unit": "mm"},
        "die_y": {"value": DIE_Y_MM, "unit": "mm"},
    }


# -- targets: a fresh database with the schema, and a raw connection to it ---------------


class Target:
    name = ""

    def fresh(self) -> str:
        """URL of an empty database with the current schema."""
        raise NotImplementedError

    def raw(self, url: str) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteTarget(Target):
    name = "SQLite"

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="fabline-bench-")
        self._n = 0

    def fresh(self) -> str:
        self._n += 1
        url = f"sqlite:///{self._tmp.name}/bench{self._n}.db"
        db = Database(url)
        db.migrate()
        db.close()
        return url

    def raw(self, url: str) -> sqlite3.Connection:
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
            con.execute(f"PRAGMA {pragma}")
        return con

    def close(self) -> None:
        self._tmp.cleanup()


class PgTarget(Target):
    name = "PostgreSQL"

    def __init__(self, admin_url: str) -> None:
        self._admin = admin_url
        self._dbname = f"fabline_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {self._dbname}")
        self.url = make_url(admin_url).set(database=self._dbname).render_as_string(False)
        try:
            db = Database(self.url)
            db.migrate()
            db.close()
        except BaseException:
            self.close()
            raise

    def fresh(self) -> str:
        with psycopg.connect(self.url, autocommit=True) as c:
            tables = [r[0] for r in c.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'")]  # fmt: skip
            c.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return self.url

    def raw(self, url: str) -> psycopg.Connection[Any]:
        return psycopg.connect(url)

    def close(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {self._dbname} WITH (FORCE)")


# -- genealogy write ------------------------------------------------------------------------

LOT = "BENCH-LOT"
RECIPE_HASH = "b" * 32
DICE_STEP = 2


def stack_names(n: int) -> list[str]:
    return [f"{LOT}-STK{i:02d}" for i in range(1, n + 1)]


def setup_write(db: Database, n_stacks: int) -> tuple[dict[str, int], int]:
    """The lot, its stacks and the started dicing run; return stack ids and the run id."""

    def tx(s: Session) -> tuple[dict[str, int], int]:
        store.save_recipe(
            s, hash=RECIPE_HASH, recipe_id="bench", version=1, status="released", text="{}"
        )
        s.add(Lot(id=LOT, recipe_id="bench", recipe_version=1, recipe_hash=RECIPE_HASH,
                  state="running", station="bench"))  # fmt: skip
        s.flush()
        stacks = [
            {"name": n, "kind": "stack", "lot_id": LOT, "slot": i, "created_step": 0,
             "state": "active", "attributes": {"from": f"{LOT}-W{i:02d}"}}
            for i, n in enumerate(stack_names(n_stacks), 1)
        ]  # fmt: skip
        ids = store.insert_units(s, stacks)
        run_id = store.add_step_run(
            s, lot_id=LOT, step_index=DICE_STEP, step_id="dice", kind="tool", tool_id="DICE-1",
            tool_kind="dicing", operation="dice", job_id="BENCH-002-1", recipe_id="bench",
            recipe_hash=RECIPE_HASH, state="started", setpoints=dicing_setpoints(),
        )  # fmt: skip
        return ids, run_id

    return db.run_sync(tx)


def dicing_step() -> ToolStepPlan:
    """The dicing step whose change is written: a 300 mm round stack into packages."""
    return ToolStepPlan(
        index=DICE_STEP, id="dice", template="dice", path=("bench",), name="dice",
        role="dicing", tool="dicing", operation="dice",
        values={"work_shape": "ROUND", "work_width": WAFER_MM, "work_length": WAFER_MM,
                "die_x": DIE_X_MM, "die_y": DIE_Y_MM},
        genealogy=Genealogy(split=Split.model_validate({"from": "stack", "into": "package"})),
    )  # fmt: skip


def plan_dicing(n_stacks: int, stack_ids: dict[str, int], seed: int) -> Change:
    """The change the engine plans for the dicing step (controller/engine/material.py), each
    stack carrying the defects an earlier step reported so its rejects are binned."""
    material = Material(LOT)
    for slot, name in enumerate(stack_names(n_stacks), 1):
        defects = {REASONS[(seed + slot) % len(REASONS)]: REJECTS_PER_STACK}
        material.active[name] = UnitView(
            name, "stack", stack_ids[name], slot, None, {"defects": defects}
        )
    return plan_change(material, dicing_step(), {}, {}, {})


def raw_unit_rows(change: Change) -> list[tuple[Any, ...]]:
    """The same rows for the raw path, JSON serialised; the id (0 here) is set under the clock."""
    return [
        unit_row(0, u["name"], u["kind"], LOT, u["slot"], u["die_x"], u["die_y"], u["bin"],
                 created=u["created_step"], attributes=json.dumps(u["attributes"]))
        for u in change.units
    ]  # fmt: skip


def raw_write_sqlite(
    con: sqlite3.Connection,
    rows: list[tuple[Any, ...]],
    change: Change,
    active: dict[str, int],
    run_id: int,
) -> float:
    t0 = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    base = con.execute("SELECT coalesce(max(id), 0) FROM unit").fetchone()[0]
    ids = dict(active)
    ids.update((r[1], base + i) for i, r in enumerate(rows, 1))
    con.executemany(
        f"INSERT INTO unit ({COLS['unit']}) VALUES ({', '.join('?' * len(rows[0]))})",
        [(base + i, *r[1:]) for i, r in enumerate(rows, 1)],
    )
    con.executemany(
        f"INSERT INTO edge ({COLS['edge']}) VALUES (?, ?, ?, ?)",
        [(ids[p], ids[c], k, run_id) for p, c, k in change.edges],
    )
    ended = [ids[n] for n in change.ended]
    marks = ", ".join("?" * len(ended))
    con.execute(
        f"UPDATE unit SET state = 'split', ended_step = ? WHERE id IN ({marks})",
        [DICE_STEP, *ended],
    )
    con.executemany(
        "UPDATE unit SET bin = ?, bin_reason = ? WHERE id = ?",
        [(b, r, ids[n]) for n, (b, r) in change.bins.items()],
    )
    con.execute("COMMIT")
    return time.perf_counter() - t0


def raw_write_pg(
    con: psycopg.Connection[Any],
    rows: list[tuple[Any, ...]],
    change: Change,
    active: dict[str, int],
    run_id: int,
) -> float:
    t0 = time.perf_counter()
    with con.transaction(), con.cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('unit', 'id')) FROM generate_series(1, %s)",
            (len(rows),),
        )
        new = [r[0] for r in cur.fetchall()]
        ids = dict(active)
        ids.update((r[1], uid) for uid, r in zip(new, rows, strict=True))
        with cur.copy(f"COPY unit ({COLS['unit']}) FROM STDIN") as cp:
            for uid, r in zip(new, rows, strict=True):
                cp.write_row((uid, *r[1:]))
        with cur.copy(f"COPY edge ({COLS['edge']}) FROM STDIN") as cp:
            for p, c, k in change.edges:
                cp.write_row((ids[p], ids[c], k, run_id))
        cur.execute(
            "UPDATE unit SET state = 'split', ended_step = %s WHERE id = ANY(%s)",
            (DICE_STEP, [ids[n] for n in change.ended]),
        )
        cur.executemany(
            "UPDATE unit SET bin = %s, bin_reason = %s WHERE id = %s",
            [(b, r, ids[n]) for n, (b, r) in change.bins.items()],
        )
    return time.perf_counter() - t0


def check_write(url: str, n_units: int, n_stacks: int) -> None:
    """Both paths must leave the same genealogy behind."""
    queries = (
        "SELECT count(*) FROM unit WHERE kind = 'package' AND lot_id = 'BENCH-LOT'",
        "SELECT count(*) FROM edge WHERE kind = 'split'",
        "SELECT count(*) FROM unit WHERE kind = 'stack' AND state = 'split' AND ended_step = 2",
        "SELECT count(*) FROM unit WHERE bin = 'reject' AND bin_reason IS NOT NULL",
    )
    db = Database(url)
    try:
        got = db.run_sync(lambda s: tuple(s.execute(text(q)).scalar_one() for q in queries))
    finally:
        db.close()
    want = (n_units, n_units, n_stacks, n_stacks * REJECTS_PER_STACK)
    assert got == want, f"write check: {got} != {want}"


def bench_write(target: Target, n_stacks: int, rounds: int) -> dict[str, float]:
    positions = grid()
    rows_per_round = 2 * n_stacks * len(positions)
    fab_t: list[float] = []
    raw_t: list[float] = []
    for r in range(rounds):
        for path in ("raw", "fabline") if r % 2 == 0 else ("fabline", "raw"):
            url = target.fresh()
            db = Database(url)
            active, run_id = setup_write(db, n_stacks)
            change = plan_dicing(n_stacks, active, seed=r)
            if path == "fabline":
                tx = functools.partial(
                    write_change,
                    lot_id=LOT,
                    change=change,
                    run_id=run_id,
                    step_index=DICE_STEP,
                    known=active,
                )
                t0 = time.perf_counter()
                db.run_sync(tx)
                fab_t.append(time.perf_counter() - t0)
                db.close()
            else:
                db.close()
                rows = raw_unit_rows(change)
                con = target.raw(url)
                fn = raw_write_sqlite if isinstance(con, sqlite3.Connection) else raw_write_pg
                raw_t.append(fn(con, rows, change, active, run_id))
                con.close()
            check_write(url, n_stacks * len(positions), n_stacks)
    return {
        "rows": rows_per_round,
        "raw": rows_per_round / med(raw_t),
        "fabline": rows_per_round / med(fab_t),
    }


# -- the 1M-package database ---------------------------------------------------------------


@dataclass
class Built:
    lots: int
    packages: int
    units: int
    edges: int
    seconds: float


def ts(dt: datetime, sqlite: bool) -> str:
    # SQLAlchemy stores DateTime on SQLite as naive ISO text with a space
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else dt.isoformat()


STEPS = (  # index, step id, tool, tool kind, operation, setpoints
    (0, "bond", "BOND-1", "bonder", "hybrid_bond", {"force": {"value": 40.0, "unit": "kN"}}),
    (1, "grind", "GRIND-1", "grinder", "backgrind", {"target": {"value": 50.0, "unit": "µm"}}),
    (2, "dice", "DICE-1", "dicing", "dice", dicing_setpoints()),
    (3, "inspect", "AOI-1", "inspect", "aoi", {"mode": {"value": "FULL", "unit": ""}}),
)


class LotBuilder:
    """Rows of the 1M-package database, lot by lot, with ids assigned here."""

    def __init__(self, positions: list[tuple[int, int]], sqlite: bool, seed: int) -> None:
        self.positions = positions
        self.sqlite = sqlite
        self.rng = random.Random(seed)
        self.next_id = 1
        self.wheels: dict[str, int] = {}  # grinding-wheel lot -> unit id

    def uid(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def lot(self, n: int) -> dict[str, list[tuple[Any, ...]]]:
        lot, at, sq = f"TL{n:04d}", T0 + timedelta(hours=n), self.sqlite
        recipe, recipe_hash = "3d-stack", f"{n // 3 * 3:032x}"  # a new version every 3 lots
        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in LOAD_ORDER}
        units, edges, runs = out["unit"], out["edge"], out["step_run"]
        if n % 3 == 0:
            out["recipe_version"].append((recipe_hash, recipe, n // 3 + 1, "released", "{}",
                                          ts(at, sq)))  # fmt: skip
        out["lot"].append((lot, recipe, n // 3 + 1, recipe_hash, "{}", "completed", None, 0, 4,
                           4, "bench", None, None, None, 0, ts(at, sq),
                           ts(at + timedelta(hours=6), sq)))  # fmt: skip
        run_of: dict[int, int] = {}
        for index, step_id, tool, tool_kind, op, setpoints in STEPS:
            attempts = 2 if (n % 5 == 0 and index == 1) else 1
            for attempt in range(1, attempts + 1):
                run_id = n * 10 + len(runs) + 1
                state = "done" if attempt == attempts else "failed"
                start = at + timedelta(minutes=30 * index + 5 * attempt)
                runs.append((run_id, lot, index, step_id, attempt, "tool", tool, tool_kind, op,
                             f"{lot}-{index:03d}-{attempt}", recipe, recipe_hash, state,
                             json.dumps(setpoints), json.dumps({"duration_s": 60.0 + index}),
                             None if state == "done" else "spindle load", ts(start, sq),
                             ts(start + timedelta(minutes=4), sq)))  # fmt: skip
                run_of[index] = run_id
        adhesive = self.uid()
        units.append(unit_row(adhesive, f"ADH-{n:05d}", "consumable", material="adhesive"))
        wheel_name = f"WHL-{n // 4:05d}"
        if wheel_name not in self.wheels:
            self.wheels[wheel_name] = self.uid()
            units.append(unit_row(self.wheels[wheel_name], wheel_name, "consumable",
                                  material="diamond wheel"))  # fmt: skip
        stacks = []
        for slot in range(1, STACKS + 1):
            top, bottom, stack = self.uid(), self.uid(), self.uid()
            w, b, s = f"{lot}-W{slot:02d}", f"{lot}-B{slot:02d}", f"{lot}-STK{slot:02d}"
            units += [
                unit_row(top, w, "wafer", lot, slot, material="Si", state="merged", ended=0,
                         attributes='{"input": "top"}'),
                unit_row(bottom, b, "wafer", lot, slot, material="Si", state="merged", ended=0,
                         attributes='{"input": "bottom"}'),
                unit_row(stack, s, "stack", lot, slot, state="split", created=0, ended=2,
                         attributes=json.dumps({"from": w})),
            ]  # fmt: skip
            edges += [
                (top, stack, "merge", run_of[0]),
                (bottom, stack, "merge", run_of[0]),
                (adhesive, stack, "consume", run_of[0]),
                (self.wheels[wheel_name], stack, "consume", run_of[1]),
            ]
            stacks.append((stack, s, slot))
        rng, positions = self.rng, self.positions
        for stack, s, slot in stacks:
            attributes = json.dumps({"from": s})
            rejects = set(rng.sample(range(len(positions)), len(positions) // 100))
            for i, (x, y) in enumerate(positions):
                p = self.uid()
                bin_, reason = ("reject", rng.choice(REASONS)) if i in rejects else ("good", None)
                units.append(unit_row(p, f"{s}-X{x:03d}Y{y:03d}", "package", lot, slot, x, y,
                                      bin_, reason, created=2, attributes=attributes))  # fmt: skip
                edges.append((stack, p, "split", run_of[2]))
        return out


def build_trace_db(target: Target, n_lots: int, seed: int) -> tuple[str, Built]:
    """Bulk-load the trace database through the raw driver (FK checks off while loading: the
    rows are consistent by construction), then ANALYZE as a live database would be."""
    url = target.fresh()
    con = target.raw(url)
    sqlite = isinstance(con, sqlite3.Connection)
    builder = LotBuilder(grid(), sqlite, seed)
    t0 = time.perf_counter()
    if sqlite:
        con.execute("PRAGMA foreign_keys=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("BEGIN")
    else:
        con.execute("SET session_replication_role = replica")  # no FK triggers
        con.execute("SET synchronous_commit = off")
    n_units = n_edges = 0
    for n in range(n_lots):
        tables = builder.lot(n)
        n_units += len(tables["unit"])
        n_edges += len(tables["edge"])
        for t in LOAD_ORDER:
            rows = tables[t]
            if not rows:
                continue
            if sqlite:
                marks = ", ".join("?" * len(rows[0]))
                con.executemany(f"INSERT INTO {t} ({COLS[t]}) VALUES ({marks})", rows)
            else:
                with con.cursor() as cur, cur.copy(f"COPY {t} ({COLS[t]}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)
    if sqlite:
        con.execute("COMMIT")
        con.execute("ANALYZE")
    else:
        for t in ("unit", "edge", "step_run"):
            con.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), max(id)) FROM {t}")
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE")
    con.close()
    packages = n_lots * STACKS * len(builder.positions)
    return url, Built(n_lots, packages, n_units, n_edges, time.perf_counter() - t0)


# -- trace timing ---------------------------------------------------------------------------


def raw_sql(stmt: Any, sqlite: bool) -> str:
    """The statement's SQL for the raw driver (sqlite3 takes :name, psycopg %(name)s)."""
    sql: str = getattr(stmt, "element", stmt).text  # text(...).columns(...) wraps the text
    if sqlite:
        return sql
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql.replace("%", "%%"))


def raw_trace(con: Any, sql: str, sqlite: bool) -> Callable[[str], int]:
    lookup = "SELECT id FROM unit WHERE name = " + ("?" if sqlite else "%s")
    if sqlite:

        def run(name: str) -> int:
            uid = con.execute(lookup, (name,)).fetchone()[0]
            return len(con.execute(sql, {"uid": uid}).fetchall())

        return run
    cur = con.cursor()

    def run_pg(name: str) -> int:
        uid = cur.execute(lookup, (name,)).fetchone()[0]
        n = len(cur.execute(sql, {"uid": uid}).fetchall())
        con.rollback()  # end the read transaction, as run_sync's commit does
        return n

    return run_pg


def timed_calls(fn: Callable[[str], Any], names: list[str]) -> list[float]:
    out = []
    for name in names:
        t0 = time.perf_counter()
        fn(name)
        out.append(time.perf_counter() - t0)
    return out


TraceFn = Callable[[Session, str], list[trace.Node]]


def through_db(db: Database, fn: TraceFn) -> Callable[[str], list[trace.Node]]:
    return lambda name: db.run_sync(lambda s: fn(s, name))


def bench_trace(
    target: Target, url: str, built: Built, rounds: int, calls: int, seed: int, explain: bool
) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    positions = grid()
    db = Database(url)
    con = target.raw(url)
    sqlite = isinstance(con, sqlite3.Connection)
    if not sqlite:  # the raw path gets what forward() sets per statement, for free
        con.execute("SET jit = off")
        con.commit()

    def package() -> str:
        x, y = rng.choice(positions)
        lot, stack = rng.randrange(built.lots), rng.randint(1, STACKS)
        return f"TL{lot:04d}-STK{stack:02d}-X{x:03d}Y{y:03d}"

    def wafer() -> str:
        return f"TL{rng.randrange(built.lots):04d}-{rng.choice('WB')}{rng.randint(1, STACKS):02d}"

    fwd = trace.FORWARD if sqlite else trace.FORWARD_PG
    cases: dict[str, tuple[TraceFn, Any, Callable[[], str], int]] = {
        "backward": (trace.backward, trace.BACKWARD, package, calls),
        "forward": (trace.forward, fwd, wafer, max(calls // 4, 10)),
    }
    for fn, stmt, pick, _ in cases.values():  # same rows as the raw path; warm-up
        fab, raw = through_db(db, fn), raw_trace(con, raw_sql(stmt, sqlite), sqlite)
        for name in [pick() for _ in range(5)]:
            nodes = fab(name)
            assert nodes[0].name == name and len({(n.id, n.depth) for n in nodes}) == len(nodes)
            assert raw(name) >= len(nodes) > 1, name
    if explain:
        show_plans(con, sqlite, [(label, c[1], c[2]()) for label, c in cases.items()])
    out: dict[str, dict[str, float]] = {}
    for label, (fn, stmt, pick, n) in cases.items():
        fab, raw = through_db(db, fn), raw_trace(con, raw_sql(stmt, sqlite), sqlite)
        fab_m: list[float] = []
        raw_m: list[float] = []
        for r in range(rounds):
            names = [pick() for _ in range(n)]
            order = (raw, fab) if r % 2 == 0 else (fab, raw)
            for f in order:
                (raw_m if f is raw else fab_m).append(med(timed_calls(f, names)))
        out[label] = {"raw": med(raw_m) * 1e3, "fabline": med(fab_m) * 1e3,
                      "nodes": len(fab(pick())), "calls": n}  # fmt: skip
    con.close()
    db.close()
    return out


def show_plans(con: Any, sqlite: bool, cases: list[tuple[str, Any, str]]) -> None:
    lookup = "SELECT id FROM unit WHERE name = " + ("?" if sqlite else "%s")
    for label, stmt, name in cases:
        uid = con.execute(lookup, (name,)).fetchone()[0]
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
        print(f"--- {label} {name}")
        for row in con.execute(prefix + raw_sql(stmt, sqlite), {"uid": uid}).fetchall():
            print("   ", row[-1] if sqlite else row[0])
        if not sqlite:
            con.rollback()


# -- main -----------------------------------------------------------------------------------


def run_db(which: str, args: argparse.Namespace) -> None:
    n_stacks = 4 if args.quick else STACKS
    lots = args.lots or (1 if args.quick else 16)
    calls = args.calls or (30 if args.quick else 200)
    t_start = time.perf_counter()
    target: Target = SqliteTarget() if which == "sqlite" else PgTarget(args.pg_url)
    try:
        w = bench_write(target, n_stacks, args.rounds)
        print(f"\n== {target.name}: genealogy write, dicing {n_stacks} stacks × {len(grid())} "
              f"dies = {w['rows']:,.0f} rows (units + edges); medians of {args.rounds} "
              "rounds")  # fmt: skip
        ratio = w["fabline"] / w["raw"]
        verdict = "ok" if ratio >= 0.25 else "MISSED"
        print(f"   raw {w['raw']:>9,.0f} rows/s   fabline {w['fabline']:>9,.0f} rows/s   "
              f"fabline/raw {ratio:6.1%}   (target ≥ 25 %: {verdict})")  # fmt: skip
        url, built = build_trace_db(target, lots, seed=1)
        print(f"== {target.name}: trace, {built.packages:,} packages ({built.units:,} units, "
              f"{built.edges:,} edges, built raw in {built.seconds:.1f} s); medians of "
              f"{args.rounds} rounds")  # fmt: skip
        t = bench_trace(target, url, built, args.rounds, calls, seed=2, explain=args.explain)
        for label, limit in (("backward", 5.0), ("forward", 50.0)):
            f = t[label]
            verdict = "ok" if f["fabline"] < limit else "MISSED"
            ratio = f["fabline"] / f["raw"]
            print(f"   {label:<8} ({f['calls']:.0f} calls/round, {f['nodes']:.0f} nodes)  raw "
                  f"{f['raw']:6.2f} ms   fabline {f['fabline']:6.2f} ms   fabline/raw "
                  f"{ratio:5.2f}×   (target < {limit:g} ms: {verdict})")  # fmt: skip
    finally:
        target.close()
    print(f"   ({which} done in {time.perf_counter() - t_start:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="short smoke run (small sizes)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lots", type=int, default=0, help="lots of 62,500 packages (default 16)")
    ap.add_argument("--calls", type=int, default=0, help="backward traces per round (200)")
    ap.add_argument("--pg-url", default=PG_ADMIN, help="server to create the bench database on")
    ap.add_argument("--explain", action="store_true", help="print the trace query plans")
    args = ap.parse_args()
    if args.rounds < 3:
        ap.error("--rounds must be ≥ 3 (medians)")
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
          f"psycopg {psycopg.__version__}")  # fmt: skip
    for which in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        run_db(which, args)


if __name__ == "__main__":
    main()
