"""Queries of the SPC tables (controller/genealogy/spc_models.py), each inside the caller's
transaction. Rows in, rows out: the chart logic is controller/spc, which this layer does
not import (the engine and the front doors join the two)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy.models import utcnow
from controller.genealogy.spc_models import SpcChart, SpcLimits, SpcPoint, SpcViolation
from controller.genealogy.station_models import ToolInhibit

Key = tuple[str, str, str, str]  # recipe, step template, result, tool


def chart(s: Session, key: Key, *, for_update: bool = False) -> SpcChart | None:
    recipe_id, step_id, result, tool_id = key
    q = select(SpcChart).where(
        col(SpcChart.recipe_id) == recipe_id,
        col(SpcChart.step_id) == step_id,
        col(SpcChart.result) == result,
        col(SpcChart.tool_id) == tool_id,
    )
    if for_update:
        q = q.with_for_update()
    return s.scalars(q).first()


def add_chart(s: Session, row: SpcChart) -> SpcChart:
    s.add(row)
    s.flush()
    return row


def charts(s: Session, tool_id: str | None = None, recipe_id: str | None = None) -> list[SpcChart]:
    q = select(SpcChart).order_by(col(SpcChart.id))
    if tool_id is not None:
        q = q.where(col(SpcChart.tool_id) == tool_id)
    if recipe_id is not None:
        q = q.where(col(SpcChart.recipe_id) == recipe_id)
    return list(s.scalars(q).all())


def current_limits(s: Session, chart_id: int) -> SpcLimits | None:
    q = select(SpcLimits).where(
        col(SpcLimits.chart_id) == chart_id, col(SpcLimits.superseded_at).is_(None)
    )
    return s.scalars(q).first()


def supersede_limits(s: Session, chart_id: int, at: datetime | None = None) -> None:
    row = current_limits(s, chart_id)
    if row is not None:
        row.superseded_at = at or utcnow()
        s.flush()  # before a new current row: the partial unique index allows one


def add_limits(s: Session, row: SpcLimits) -> SpcLimits:
    s.add(row)
    s.flush()
    return row


def next_index(s: Session, chart_id: int) -> int:
    top = s.scalar(select(func.max(SpcPoint.idx)).where(col(SpcPoint.chart_id) == chart_id))
    return 0 if top is None else int(top) + 1


def points(s: Session, chart_id: int, since: int = 0, *, last: int | None = None) -> list[SpcPoint]:
    """The chart's points from index `since` on, oldest first (only the `last` n of them)."""
    q = select(SpcPoint).where(col(SpcPoint.chart_id) == chart_id, col(SpcPoint.idx) >= since)
    if last is not None:
        q = q.order_by(col(SpcPoint.idx).desc()).limit(last)
        return list(reversed(s.scalars(q).all()))
    return list(s.scalars(q.order_by(col(SpcPoint.idx))).all())


def add_violations(s: Session, rows: Sequence[SpcViolation]) -> list[int]:
    s.add_all(rows)
    s.flush()
    return [r.id for r in rows if r.id is not None]


def violations(
    s: Session, chart_id: int, *, open_only: bool = False, since: int = 0
) -> list[SpcViolation]:
    q = select(SpcViolation).where(
        col(SpcViolation.chart_id) == chart_id, col(SpcViolation.idx) >= since
    )
    if open_only:
        q = q.where(col(SpcViolation.acknowledged_at).is_(None))
    return list(s.scalars(q.order_by(col(SpcViolation.id))).all())


def acknowledge(s: Session, chart_id: int, by: str, note: str) -> int:
    """Acknowledge the chart's open violations; how many there were."""
    rows = violations(s, chart_id, open_only=True)
    now = utcnow()
    for r in rows:
        r.acknowledged_at, r.acknowledged_by, r.note = now, by, note
    s.flush()
    return len(rows)


def open_violations_of_tool(s: Session, tool_id: str) -> int:
    """Violations not yet acknowledged on the tool's charts."""
    q = (
        select(func.count())
        .select_from(SpcViolation)
        .join(SpcChart, col(SpcChart.id) == col(SpcViolation.chart_id))
        .where(col(SpcChart.tool_id) == tool_id, col(SpcViolation.acknowledged_at).is_(None))
    )
    return int(s.scalar(q) or 0)


def open_violations_by_lot(s: Session, lot_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each lot's violations not yet acknowledged: `chart: text`, oldest first."""
    if not lot_ids:
        return {}
    q = (
        select(
            col(SpcViolation.lot_id),
            col(SpcChart.recipe_id),
            col(SpcChart.step_id),
            col(SpcChart.result),
            col(SpcChart.tool_id),
            col(SpcViolation.text),
        )
        .join(SpcChart, col(SpcChart.id) == col(SpcViolation.chart_id))
        .where(
            col(SpcViolation.lot_id).in_(list(lot_ids)), col(SpcViolation.acknowledged_at).is_(None)
        )
        .order_by(col(SpcViolation.id))
    )
    out: dict[str, list[str]] = {}
    for lot, recipe, step, result, tool, text in s.execute(q):
        if lot is not None:
            out.setdefault(lot, []).append(f"{recipe}/{step}/{result}@{tool}: {text}")
    return out


def open_inhibits(s: Session, tool_id: str, ref: str | None = None) -> list[ToolInhibit]:
    """The tool's inhibits in force (only those raised by `ref`, if given), oldest first."""
    q = select(ToolInhibit).where(
        col(ToolInhibit.tool_id) == tool_id, col(ToolInhibit.released_at).is_(None)
    )
    if ref is not None:
        q = q.where(col(ToolInhibit.ref) == ref)
    return list(s.scalars(q.order_by(col(ToolInhibit.id))).all())


# -- the engine's path: built once, run on the connection (like store.py's step statements) --

_C: Table = SpcChart.__table__  # type: ignore[attr-defined]
_L: Table = SpcLimits.__table__  # type: ignore[attr-defined]
_P: Table = SpcPoint.__table__  # type: ignore[attr-defined]
DECLARED = ("chart_type", "subgroup_size", "rule_set", "action", "baseline_points",
            "check_spread", "unit")  # fmt: skip
_STATE = (
    select(
        _C.c.id,
        _C.c.phase_start,
        *(_C.c[n] for n in DECLARED),
        _L.c.id.label("limits_id"),
        _L.c.center,
        _L.c.sigma,
        _L.c.source,
        _L.c.basis,
        _L.c.since,
    )
    .select_from(_C.outerjoin(_L, and_(_L.c.chart_id == _C.c.id, _L.c.superseded_at.is_(None))))
    .where(
        _C.c.recipe_id == bindparam("recipe_id"),
        _C.c.step_id == bindparam("step_id"),
        _C.c.result == bindparam("result"),
        _C.c.tool_id == bindparam("tool_id"),
    )
    .with_for_update(of=_C)  # one writer per chart (a baseline from the CLI, say)
)
_RECENT = (
    select(_P.c.idx, _P.c.value)
    .where(_P.c.chart_id == bindparam("chart_id"), _P.c.idx >= bindparam("since"))
    .order_by(_P.c.idx.desc())
    .limit(bindparam("n"))
)
_INSERT_POINT = _P.insert()


@dataclass(frozen=True)
class ChartState:
    """A chart as the engine needs it for a new point: its id, series start, declaration
    and current limits (None in phase I)."""

    chart_id: int
    phase_start: int
    declared: dict[str, Any]
    limits: SpcLimits | None


def chart_state(s: Session, key: Key) -> ChartState | None:
    recipe_id, step_id, result, tool_id = key
    row = (
        s.connection()
        .execute(
            _STATE,
            {"recipe_id": recipe_id, "step_id": step_id, "result": result, "tool_id": tool_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    limits = None
    if row["limits_id"] is not None:
        limits = SpcLimits(
            id=row["limits_id"], chart_id=row["id"], center=row["center"], sigma=row["sigma"],
            source=row["source"], basis=row["basis"], since=row["since"], frozen_by="",
        )  # fmt: skip
    return ChartState(row["id"], row["phase_start"], {n: row[n] for n in DECLARED}, limits)


def set_declared(s: Session, chart_id: int, declared: dict[str, Any]) -> None:
    s.connection().execute(_C.update().where(_C.c.id == chart_id).values(**declared))


def recent(s: Session, chart_id: int, since: int, n: int) -> list[tuple[int, float]]:
    """The last `n` points (index, value) from index `since` on, oldest first."""
    rows = s.connection().execute(_RECENT, {"chart_id": chart_id, "since": since, "n": n})
    return [(int(i), float(v)) for i, v in reversed(rows.all())]


def insert_point(s: Session, **fields: Any) -> None:
    fields.setdefault("measured_at", utcnow())
    fields.setdefault("site_values", None)
    s.connection().execute(_INSERT_POINT, fields)
