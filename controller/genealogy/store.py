"""Transactions of the genealogy store. Each function takes the open Session of one
transaction (see Database.run), so what must be atomic is simply one call.

Bulk rows (units, edges) go through Core `insert` with lists of dicts: building ORM objects
costs ~17 µs each (STACK.md), far too slow for a diced stack of thousands of packages. The
statements every process step runs are built once (below) and executed on the session's
connection: building a statement and the ORM's execute path cost ~250 µs a call on this
class of machine, more than SQLite takes to run it (bench/engine.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Required, TypedDict

from sqlalchemy import Table, bindparam, event, func, insert, update
from sqlalchemy.orm import Session
from sqlmodel import col, select

from controller.events import EventBase
from controller.genealogy.models import (
    ConsumableLoad,
    Edge,
    Lot,
    Outbox,
    RecipeVersion,
    RunPiece,
    StepRun,
    Unit,
    utcnow,
)
from drivers.errors import FablineError, LotNotFound, StaleStep

# -- statements on every step's path, built once -------------------------------------------

_LOTS: Table = Lot.__table__  # type: ignore[attr-defined]
_RUNS: Table = StepRun.__table__  # type: ignore[attr-defined]
_LOADS: Table = ConsumableLoad.__table__  # type: ignore[attr-defined]
_UNITS: Table = Unit.__table__  # type: ignore[attr-defined]
_SELECT_LOT = _LOTS.select().where(_LOTS.c.id == bindparam("lot_id"))
_SELECT_LOT_FOR_UPDATE = _SELECT_LOT.with_for_update()
_UPDATE_LOT = _LOTS.update().where(_LOTS.c.id == bindparam("lot_key"))
_LOT_FIELDS = tuple(c.name for c in _LOTS.columns if c.name not in ("id", "created_at"))
_INSERT_RUN = _RUNS.insert().returning(_RUNS.c.id)
_FINISH_RUN = _RUNS.update().where(
    _RUNS.c.id == bindparam("run_id"), _RUNS.c.state.in_(bindparam("expect", expanding=True))
)
_INSERT_PIECES = RunPiece.__table__.insert()  # type: ignore[attr-defined]
_INSERT_EVENTS = Outbox.__table__.insert()  # type: ignore[attr-defined]
_INSERT_EDGES = Edge.__table__.insert()  # type: ignore[attr-defined]
_LOADED_CONSUMABLE = (
    select(_UNITS.c.name, _UNITS.c.id)
    .join(_LOADS, _LOADS.c.unit_id == _UNITS.c.id)
    .where(
        _LOADS.c.tool_id == bindparam("tool_id"),
        _LOADS.c.consumable == bindparam("consumable"),
        _LOADS.c.unloaded_at.is_(None),
    )
    .order_by(_LOADS.c.id.desc())
    .limit(1)
)


# -- recipes and lots ---------------------------------------------------------------------


def save_recipe(
    s: Session, *, hash: str, recipe_id: str, version: int, status: str, text: str
) -> None:
    if s.get(RecipeVersion, hash) is None:
        s.add(
            RecipeVersion(hash=hash, recipe_id=recipe_id, version=version, status=status, text=text)
        )
        s.flush()


def recipe_text(s: Session, hash: str) -> str:
    rv = s.get(RecipeVersion, hash)
    if rv is None:
        raise FablineError(f"recipe version {hash} is not in the database")
    return rv.text


def get_lot(s: Session, lot_id: str, *, for_update: bool = False) -> Lot:
    """The lot as stored; `for_update` locks its row for the transaction (PostgreSQL). Changes
    made to it in the transaction are written when the transaction commits, as the ORM would
    (read with one Core statement and written with one: the ORM's load and flush cost
    ~600 µs a transaction, and every process step runs one)."""
    stmt = _SELECT_LOT_FOR_UPDATE if for_update else _SELECT_LOT
    row = s.connection().execute(stmt, {"lot_id": lot_id}).mappings().first()
    if row is None:
        raise LotNotFound(f"no lot {lot_id!r}")
    lot = Lot(**row)
    if for_update:
        for check in _ON_LOCK:
            check(lot)
    s.info.setdefault(_LOTS_READ, []).append((lot, {f: getattr(lot, f) for f in _LOT_FIELDS}))
    return lot


_ON_LOCK: list[Callable[[Lot], None]] = []


def on_lot_locked(check: Callable[[Lot], None]) -> None:
    """Run `check` on every lot read to be written (`get_lot(..., for_update=True)`): the
    lease module's fence, which refuses a write by a controller whose lease was taken over."""
    _ON_LOCK.append(check)


_LOTS_READ = "fabline.lots"


@event.listens_for(Session, "before_commit")
def _write_changed_lots(s: Session) -> None:
    for lot, before in s.info.pop(_LOTS_READ, []):
        changed = {f: getattr(lot, f) for f in _LOT_FIELDS if getattr(lot, f) != before[f]}
        if changed:
            s.connection().execute(_UPDATE_LOT, {**changed, "lot_key": lot.id})


def write_lots(s: Session) -> None:
    """Write the changes to lots read in this transaction now, so a statement that reads a
    lot's row again (a lot operation inside a step's commit) sees them."""
    _write_changed_lots(s)


def list_lots(s: Session, states: Sequence[str] | None = None) -> list[Lot]:
    q = select(Lot).order_by(col(Lot.created_at))
    if states:
        q = q.where(col(Lot.state).in_(states))
    return list(s.scalars(q))


def set_lot(lot: Lot, **changes: Any) -> None:
    """Change a lot loaded in the current transaction."""
    for k, v in changes.items():
        setattr(lot, k, v)
    lot.updated_at = utcnow()


# -- units and edges ----------------------------------------------------------------------


class NewUnit(TypedDict, total=False):
    """A unit row to insert: name and kind always, the rest as the unit has them. A typed
    dict, not a dataclass: the store writes tens of thousands per diced step, and building
    objects only to turn them back into rows costs more than the insert (STACK.md)."""

    name: Required[str]
    kind: Required[str]
    lot_id: str | None
    slot: int | None
    die_x: int | None
    die_y: int | None
    unit_x: int | None
    unit_y: int | None
    bin: str | None
    bin_reason: str | None
    material: str | None
    state: str  # active (default), supply, merged, split, consumed, scrapped
    created_step: int  # -1 (default): a lot input or a consumable lot
    ended_step: int | None
    attributes: dict[str, Any]


UNIT_COLUMNS = (
    "name", "kind", "lot_id", "slot", "die_x", "die_y", "unit_x", "unit_y", "bin",
    "bin_reason", "material", "state", "created_step", "ended_step", "attributes",
)  # fmt: skip


def insert_units(s: Session, rows: Sequence[NewUnit]) -> dict[str, int]:
    """Insert units; return name -> id. PostgreSQL: ids drawn from the sequence, rows sent
    with COPY (bound executemany sends 10,000-parameter statements and is 5x slower)."""
    if not rows:
        return {}
    if s.get_bind().dialect.name == "postgresql":
        return _copy_units(s, rows)
    # no sort_by_parameter_order: SQLite would then send one statement per row; names map
    result = s.execute(insert(Unit).returning(col(Unit.id), col(Unit.name)), rows)
    return {name: uid for uid, name in result if uid is not None}


def _copy_units(s: Session, rows: Sequence[NewUnit]) -> dict[str, int]:
    cur = _pg_cursor(s)
    with cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('unit', 'id')) FROM generate_series(1, %s)",
            (len(rows),),
        )
        ids = [r[0] for r in cur.fetchall()]
        with cur.copy(f"COPY unit (id, {', '.join(UNIT_COLUMNS)}) FROM STDIN") as cp:
            for uid, r in zip(ids, rows, strict=True):
                cp.write_row((uid, *(_column(r, c) for c in UNIT_COLUMNS)))
    return {r["name"]: uid for uid, r in zip(ids, rows, strict=True)}


def _pg_cursor(s: Session) -> Any:
    """psycopg's own cursor on the session's connection, for COPY."""
    dbapi = s.connection().connection.dbapi_connection
    assert dbapi is not None
    return dbapi.cursor()


def _column(row: NewUnit, name: str) -> Any:
    if name == "attributes":
        return json.dumps(row.get("attributes") or {})
    if name == "state":
        return row.get("state", "active")
    if name == "created_step":
        return row.get("created_step", -1)
    return row.get(name)


def insert_edges(s: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if s.get_bind().dialect.name != "postgresql":
        s.connection().execute(_INSERT_EDGES, rows)
        return
    cur = _pg_cursor(s)
    with cur, cur.copy("COPY edge (parent_id, child_id, kind, step_run_id) FROM STDIN") as cp:
        for r in rows:
            cp.write_row((r["parent_id"], r["child_id"], r["kind"], r.get("step_run_id")))


def end_units(s: Session, ids: Iterable[int], state: str, step_index: int) -> None:
    ids = list(ids)
    for i in range(0, len(ids), 5000):
        s.execute(
            update(Unit)
            .where(col(Unit.id).in_(ids[i : i + 5000]))
            .values(state=state, ended_step=step_index)
        )


def set_bins(s: Session, bins: dict[int, tuple[str, str | None]]) -> None:
    for uid, (bin_, reason) in bins.items():
        s.execute(update(Unit).where(col(Unit.id) == uid).values(bin=bin_, bin_reason=reason))


def set_attributes(s: Session, unit_id: int, attributes: dict[str, Any]) -> None:
    s.execute(update(Unit).where(col(Unit.id) == unit_id).values(attributes=attributes))


def lot_units(s: Session, lot_id: str, *, active_only: bool = True) -> list[Unit]:
    q = select(Unit).where(col(Unit.lot_id) == lot_id).order_by(col(Unit.id))
    if active_only:
        q = q.where(col(Unit.state) == "active")
    return list(s.scalars(q))


def ids_by_name(s: Session, names: Iterable[str]) -> dict[str, int]:
    wanted = list(names)
    out: dict[str, int] = {}
    for i in range(0, len(wanted), 5000):
        q = select(col(Unit.name), col(Unit.id)).where(col(Unit.name).in_(wanted[i : i + 5000]))
        out |= {name: uid for name, uid in s.execute(q) if uid is not None}
    return out


def units_by_name(s: Session, names: Sequence[str]) -> dict[str, Unit]:
    if not names:
        return {}
    return {u.name: u for u in s.scalars(select(Unit).where(col(Unit.name).in_(names)))}


def unit_by_name(s: Session, name: str) -> Unit | None:
    return s.scalars(select(Unit).where(col(Unit.name) == name)).first()


def count_units(s: Session, lot_id: str) -> dict[str, int]:
    """The lot's units by kind (scrapped units leave the counts)."""
    rows = s.execute(
        select(col(Unit.kind), func.count())
        .where(col(Unit.lot_id) == lot_id, col(Unit.state) != "scrapped")
        .group_by(col(Unit.kind))
    )
    return {kind: n for kind, n in rows}


# -- consumable lots ----------------------------------------------------------------------


def load_consumable(
    s: Session, tool_id: str, consumable: str, lot_name: str, material: str
) -> Unit:
    """Record that consumable lot `lot_name` is now loaded for `consumable` on `tool_id`."""
    s.execute(
        update(ConsumableLoad)
        .where(
            col(ConsumableLoad.tool_id) == tool_id,
            col(ConsumableLoad.consumable) == consumable,
            col(ConsumableLoad.unloaded_at).is_(None),
        )
        .values(unloaded_at=utcnow())
    )
    unit = unit_by_name(s, lot_name)
    if unit is None:
        unit = Unit(name=lot_name, kind="consumable", material=material)
        s.add(unit)
        s.flush()
    assert unit.id is not None
    s.add(ConsumableLoad(tool_id=tool_id, consumable=consumable, unit_id=unit.id))
    s.flush()
    return unit


def consumable_lot(s: Session, tool_id: str, consumable: str) -> tuple[str, int]:
    """(name, unit id) of the consumable lot loaded for `consumable` on `tool_id`; when nobody
    registered one, an anonymous lot `<tool>.<consumable>.1` is recorded so consumption
    still traces."""
    row = (
        s.connection()
        .execute(_LOADED_CONSUMABLE, {"tool_id": tool_id, "consumable": consumable})
        .first()
    )
    if row is None:
        unit = load_consumable(s, tool_id, consumable, f"{tool_id}.{consumable}.1", consumable)
        assert unit.id is not None
        return unit.name, unit.id
    name, unit_id = row
    assert unit_id is not None
    return name, unit_id


# -- step runs ----------------------------------------------------------------------------


def add_step_run(s: Session, **fields: Any) -> int:
    """Insert a step run; return its id (one statement: this is on every step's path)."""
    fields.setdefault("started_at", utcnow())
    for key in ("setpoints", "results"):
        fields.setdefault(key, {})
    return int(s.connection().execute(_INSERT_RUN, fields).scalar_one())


def finish_step_run(s: Session, run_id: int, *, expect: Sequence[str], **changes: Any) -> None:
    """Move a step run out of one of the `expect` states; StaleStep if it already left."""
    params = {**changes, "ended_at": utcnow(), "run_id": run_id, "expect": list(expect)}
    done = s.connection().execute(_FINISH_RUN, params)
    if done.rowcount != 1:
        raise StaleStep(f"step run {run_id} is no longer {'/'.join(expect)}")


def reopen_step_run(s: Session, run_id: int) -> None:
    """A step run marked failed whose job the tool turns out to have: started again."""
    s.execute(
        update(StepRun)
        .where(col(StepRun.id) == run_id)
        .values(state="started", message=None, ended_at=None)
    )


def step_runs(s: Session, lot_id: str) -> list[StepRun]:
    q = select(StepRun).where(col(StepRun.lot_id) == lot_id).order_by(col(StepRun.id))
    return list(s.scalars(q))


def open_step_run(s: Session, lot_id: str, step_index: int) -> StepRun | None:
    """The newest run of this step, if any."""
    q = (
        select(StepRun)
        .where(col(StepRun.lot_id) == lot_id, col(StepRun.step_index) == step_index)
        .order_by(col(StepRun.attempt).desc())
    )
    return s.scalars(q).first()


def step_runs_of(s: Session, lot_id: str, step_index: int) -> list[StepRun]:
    """Every run of one step, oldest first (a step of several pieces has a run per job)."""
    q = (
        select(StepRun)
        .where(col(StepRun.lot_id) == lot_id, col(StepRun.step_index) == step_index)
        .order_by(col(StepRun.attempt))
    )
    return list(s.scalars(q))


class PieceRow(TypedDict):
    step_run_id: int
    unit_id: int
    position: int
    results: dict[str, Any]


def add_run_pieces(s: Session, rows: Sequence[PieceRow]) -> None:
    """The pieces of finished jobs with their results (one statement)."""
    if rows:
        s.connection().execute(_INSERT_PIECES, list(rows))


def run_pieces(s: Session, lot_id: str) -> list[tuple[int, str, int, dict[str, Any]]]:
    """(step run id, unit name, position, results) of every piece a lot's jobs processed."""
    q = (
        select(col(RunPiece.step_run_id), col(Unit.name), col(RunPiece.position),
               col(RunPiece.results))
        .join(Unit, col(Unit.id) == col(RunPiece.unit_id))
        .join(StepRun, col(StepRun.id) == col(RunPiece.step_run_id))
        .where(col(StepRun.lot_id) == lot_id)
        .order_by(col(RunPiece.id))
    )  # fmt: skip
    return [(int(r[0]), str(r[1]), int(r[2]), dict(r[3] or {})) for r in s.execute(q)]


def pieces_of_runs(s: Session, run_ids: Sequence[int]) -> list[tuple[int, str, dict[str, Any]]]:
    """(step run id, unit name, results) of every piece these step runs processed."""
    if not run_ids:
        return []
    q = (
        select(col(RunPiece.step_run_id), col(Unit.name), col(RunPiece.results))
        .join(Unit, col(Unit.id) == col(RunPiece.unit_id))
        .where(col(RunPiece.step_run_id).in_(run_ids))
        .order_by(col(RunPiece.id))
    )  # fmt: skip
    return [(int(r[0]), str(r[1]), dict(r[2] or {})) for r in s.execute(q)]


# -- events -------------------------------------------------------------------------------


def add_events(
    s: Session, station: str, events: Sequence[EventBase], lot: Lot | None = None
) -> None:
    """Write events to the outbox with the station's name; a lot's events get its next
    gapless sequence numbers."""
    rows = []
    now = utcnow()
    for ev in events:
        payload = ev.dump()
        payload["station"] = station
        if lot is not None and ev.lot_id == lot.id:
            lot.event_seq += 1
            payload["seq"] = lot.event_seq
        rows.append(
            {
                "event_id": ev.event_id,
                "lot_id": ev.lot_id,
                "seq": payload["seq"],
                "type": payload["type"],
                "payload": payload,
                "created_at": now,
            }
        )
    if rows:
        s.connection().execute(_INSERT_EVENTS, rows)


def lot_events(s: Session, lot_id: str) -> list[dict[str, Any]]:
    q = select(col(Outbox.payload)).where(col(Outbox.lot_id) == lot_id).order_by(col(Outbox.id))
    return [dict(p) for p in s.scalars(q)]
