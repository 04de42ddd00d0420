"""Queries of the SPC tables (controller/genealogy/spc_models.py), each inside the caller's
transaction. Rows in, rows out: the chart logic is controller/spc, which this layer does
not import (the engine and the front doors join the two)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
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


def add_point(s: Session, row: SpcPoint) -> None:
    s.add(row)


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


def open_inhibits(s: Session, tool_id: str, ref: str | None = None) -> list[ToolInhibit]:
    """The tool's inhibits in force (only those raised by `ref`, if given), oldest first."""
    q = select(ToolInhibit).where(
        col(ToolInhibit.tool_id) == tool_id, col(ToolInhibit.released_at).is_(None)
    )
    if ref is not None:
        q = q.where(col(ToolInhibit.ref) == ref)
    return list(s.scalars(q.order_by(col(ToolInhibit.id))).all())
