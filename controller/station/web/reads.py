"""What the page and the API show, read from the database and the tool monitor: the JSON
shapes of the HTTP API (the lot shapes are controller/lots/views.py's, shared with the CLI).
No business logic: reads only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy import lineage, store
from controller.genealogy.models import Lot, Outbox, StepRun
from controller.genealogy.station_models import AlarmAck, Audit
from controller.lots import FINAL, LotDetail, LotView, ToolStatusView
from controller.lots.views import history
from controller.recipes import LoadedRecipe, catalog
from controller.recipes.catalog import recipes_dir
from controller.station.tool_monitor import Tile

QUEUE_LIMIT = 200
ACTIVE = {"held": 0, "running": 1, "waiting": 2, "paused": 3, "queued": 4}  # queue order


class InhibitView(BaseModel):
    id: int
    reason: str
    by: str
    at: str


class ToolView(BaseModel):
    """A tool tile: the tool's own status, E10 and E116 with the reason it is blocked,
    the job and lot it runs, and since when it is in this state."""

    tool: str
    kind: str
    state: str  # idle, busy, alarm, offline
    e10: str
    e10_substate: str | None
    e10_context: str | None
    e116: str
    blocked: str | None
    since: str
    job_id: str | None
    lot_id: str | None
    step: str | None
    status: ToolStatusView
    inhibits: list[InhibitView]
    spc_open: int = 0  # SPC violations on its charts not yet acknowledged

    @classmethod
    def of(cls, t: Tile) -> ToolView:
        return cls(
            tool=t.tool_id,
            kind=t.kind,
            state=t.data.state,
            e10=t.data.e10,
            e10_substate=t.data.e10_substate,
            e10_context=t.data.context,
            e116=t.data.e116 or "idle",
            blocked=t.data.blocked,
            since=iso(t.since),
            job_id=t.data.job_id,
            lot_id=t.lot_id,
            step=t.step_id,
            status=t.status,
            inhibits=[
                InhibitView(id=i.id, reason=i.reason, by=i.by, at=iso(i.at))
                for i in t.context.inhibits
            ],
            spc_open=t.context.spc_open,
        )


class QueueRow(BaseModel):
    lot: str
    recipe: str
    state: str
    priority: int
    step: int
    steps: int
    step_id: str | None
    tool: str | None
    since: str  # in this step (or state) since
    hold_reason: str | None
    hold_kind: str | None
    hold_code: str | None
    request: str | None


class AlarmRow(BaseModel):
    event: int  # the outbox id of its alarm_set: what an acknowledgement names
    tool: str
    code: int
    name: str
    text: str
    at: str
    active: bool
    cleared_at: str | None
    acked_by: str | None
    acked_at: str | None


class AuditRow(BaseModel):
    id: int
    at: str
    actor: str
    role: str
    action: str
    target: str
    reason_code: str | None
    comment: str | None
    result: str
    message: str


def tool_views(tiles: list[Tile]) -> list[ToolView]:
    return [ToolView.of(t) for t in tiles]


def queue(
    s: Session, *, states: list[str] | None = None, limit: int = QUEUE_LIMIT
) -> list[QueueRow]:
    """Lots not finished (or of `states`), held and running first, then by priority and
    age; each with its current step, tool and time in that step. Columns, not ORM objects:
    a page of 200 lots costs a third of the time."""
    wanted = states or list(ACTIVE)
    order = case(ACTIVE, value=col(Lot.state), else_=len(ACTIVE))
    lots = s.execute(
        select(
            col(Lot.id), col(Lot.recipe_id), col(Lot.recipe_version), col(Lot.state),
            col(Lot.priority), col(Lot.next_step), col(Lot.step_count), col(Lot.updated_at),
            col(Lot.hold_reason), col(Lot.hold_kind), col(Lot.hold_code), col(Lot.request),
        )
        .where(col(Lot.state).in_(wanted))
        .order_by(order, col(Lot.priority).desc(), col(Lot.created_at))
        .limit(limit)
    ).all()  # fmt: skip
    latest = _latest_runs(s, [lot.id for lot in lots])
    out = []
    for lot in lots:
        run = latest.get(lot.id)
        current = run is not None and run[0] == lot.next_step
        stopped = lot.state in ("held", "paused")
        out.append(
            QueueRow(
                lot=lot.id,
                recipe=f"{lot.recipe_id} v{lot.recipe_version}",
                state=lot.state,
                priority=lot.priority,
                step=lot.next_step,
                steps=lot.step_count,
                step_id=run[1] if run and current else None,
                tool=run[2] if run and current else None,
                since=iso(run[3] if run and current else lot.updated_at),
                hold_reason=lot.hold_reason if stopped else None,
                hold_kind=lot.hold_kind if stopped else None,
                hold_code=lot.hold_code if lot.state == "held" else None,
                request=lot.request,
            )
        )
    return out


def _latest_runs(s: Session, lot_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """lot -> (step index, step id, tool, started) of its newest step run."""
    if not lot_ids:
        return {}
    newest = (
        select(func.max(StepRun.id))
        .where(col(StepRun.lot_id).in_(lot_ids))
        .group_by(col(StepRun.lot_id))
        .scalar_subquery()
    )
    rows = s.execute(
        select(
            col(StepRun.lot_id), col(StepRun.step_index), col(StepRun.step_id),
            col(StepRun.tool_id), col(StepRun.started_at),
        ).where(col(StepRun.id).in_(newest))
    ).all()  # fmt: skip
    return {r[0]: tuple(r[1:]) for r in rows}


def lot_detail(s: Session, lot_id: str) -> LotDetail:
    lot = store.get_lot(s, lot_id)
    return LotDetail(
        **LotView.of(lot).model_dump(),
        units=store.count_units(s, lot_id),
        history=history(s, lot_id),
        events=store.lot_events(s, lot_id),
        operations=[lineage.describe(k) for k in lineage.of_lot(s, lot_id)],
    )


def lot_final(state: str) -> bool:
    return any(state == f.value for f in FINAL)


def alarm_history(s: Session, limit: int = 200, tool: str | None = None) -> list[AlarmRow]:
    """Alarms newest first: each alarm_set with when it cleared and who acknowledged it."""
    q = (
        select(col(Outbox.id), col(Outbox.payload))
        .where(col(Outbox.type).in_(["alarm_set", "alarm_cleared"]))
        .order_by(col(Outbox.id).desc())
        .limit(limit * 2)
    )
    if tool:
        q = q.where(col(Outbox.payload)["tool_id"].as_string() == tool)
    rows = s.execute(q).all()
    cleared: dict[tuple[str, int], str] = {}  # the next clear after each set (newest first)
    sets: list[tuple[int, dict[str, Any], str | None]] = []
    for ident, payload in rows:
        key = (payload.get("tool_id") or "", int(payload["data"]["code"]))
        if payload["type"] == "alarm_cleared":
            cleared[key] = payload["time"]
        else:
            sets.append((int(ident), payload, cleared.pop(key, None)))
    acks = {
        a.alarm_event: a
        for a in s.scalars(
            select(AlarmAck).where(col(AlarmAck.alarm_event).in_([i for i, _, _ in sets]))
        )
    }
    out = []
    for ident, p, clear in sets[:limit]:
        ack = acks.get(ident)
        out.append(
            AlarmRow(
                event=ident,
                tool=p.get("tool_id") or "",
                code=int(p["data"]["code"]),
                name=p["data"]["name"],
                text=p["data"]["text"],
                at=p["time"],
                active=clear is None,
                cleared_at=clear,
                acked_by=ack.by if ack else None,
                acked_at=ack.at.isoformat() if ack else None,
            )
        )
    return out


def active_alarms(s: Session, tiles: list[Tile]) -> list[AlarmRow]:
    """The alarms tools report now, each with the event that reported it."""
    live = {(t.tool_id, a.code) for t in tiles for a in t.status.alarms}
    if not live:
        return []
    return [a for a in alarm_history(s, limit=500) if a.active and (a.tool, a.code) in live]


def audit_rows(
    s: Session, *, limit: int = 100, target: str | None = None, event_ids: list[str] | None = None
) -> list[AuditRow]:
    q = select(Audit).order_by(col(Audit.id).desc()).limit(limit)
    if target:
        q = q.where(col(Audit.target) == target)
    if event_ids is not None:
        q = q.where(col(Audit.event_id).in_(event_ids))
    return [
        AuditRow(
            id=a.id or 0,
            at=a.at.isoformat(),
            actor=a.actor,
            role=a.role,
            action=a.action,
            target=a.target,
            reason_code=a.reason_code,
            comment=a.comment,
            result=a.result,
            message=a.message,
        )
        for a in s.scalars(q)
    ]


_recipes: tuple[tuple[Any, ...], list[LoadedRecipe]] | None = None


def recipes() -> list[LoadedRecipe]:
    """The recipe catalog, loaded again only when a recipe file changed (loading and
    checking every recipe takes ~70 ms: too much for every page)."""
    global _recipes
    folder = recipes_dir()
    key = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.yaml")))
    if _recipes is None or _recipes[0] != key:
        _recipes = (key, catalog())
    return _recipes[1]


def backlog(s: Session) -> int:
    n = s.execute(select(func.count()).where(col(Outbox.sent_at).is_(None))).scalar()
    return int(n or 0)


def last_event_id(s: Session) -> int:
    return int(s.execute(select(func.max(Outbox.id))).scalar() or 0)


def iso(dt: datetime) -> str:
    """UTC with its offset (SQLite hands datetimes back naive): what the page's clocks read."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()
