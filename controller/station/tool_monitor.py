"""Each tool's state as an operator sees it — the tool's own status, SEMI E10 and E116, the
job and lot it runs, time in state — kept current in memory and reported to the MES when it
changes.

Every tool is polled by a task of its own, so an unreachable tool (a status call bounded by
the driver's timeout) never delays another tool's report. E10 is the tool's own (running:
productive, idle: standby, alarm or unreachable: unscheduled down) unless a technician
entered one (controller/station/tool_ops.py); an idle tool with an inhibit in force is
unscheduled down (maintenance delay: waiting for a technician). E116 says whether the tool
is idle, busy (it runs a job) or blocked, and why (unreachable, an alarm, an inhibit, a
technician's down state). A change writes `tool_state` (and `alarm_set` / `alarm_cleared`)
to the outbox; progress and consumable levels, which change on every poll, only go to the
listeners (the live page).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.events import (
    AlarmCleared,
    AlarmData,
    AlarmSet,
    E10State,
    EventBase,
    ToolStateChanged,
    ToolStateData,
)
from controller.genealogy import spc_store, store
from controller.genealogy.db import Database
from controller.genealogy.models import Outbox, StepRun, utcnow
from controller.genealogy.station_models import ToolContext, ToolInhibit
from controller.lots import ToolStatusView
from drivers.base import ToolDriver
from drivers.errors import ToolError
from drivers.interface import ToolState

log = structlog.get_logger("fabline.station")

E116 = Literal["idle", "busy", "blocked"]
E10_NAMES: dict[str, str] = {
    "PRODUCTIVE": "productive",
    "STANDBY": "standby",
    "ENGINEERING": "engineering",
    "SCHEDULED_DOWN": "scheduled down",
    "UNSCHEDULED_DOWN": "unscheduled down",
    "NON_SCHEDULED": "non scheduled",
}


@dataclass(frozen=True)
class Inhibit:
    id: int
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Context:
    """What a technician entered (None: the tool's own E10 state), and open inhibits."""

    e10: E10State | None = None
    substate: str | None = None
    reason: str | None = None
    note: str | None = None
    by: str | None = None
    inhibits: tuple[Inhibit, ...] = ()  # in force, oldest first
    spc_open: int = 0  # SPC violations on the tool's charts not yet acknowledged


@dataclass(frozen=True)
class Tile:
    """One tool as the station sees it now."""

    tool_id: str
    kind: str
    status: ToolStatusView
    data: ToolStateData  # what the MES was (or will be) told
    since: datetime  # when `data` last changed
    lot_id: str | None = None
    step_id: str | None = None
    context: Context = field(default_factory=Context)

    @property
    def e10_text(self) -> str:
        return E10_NAMES[self.data.e10]


def derive(tool_id: str, status: ToolStatusView, ctx: Context) -> ToolStateData:
    """The E10 and E116 states of a tool from its status and what technicians entered."""
    alarms = [a.code for a in status.alarms]
    blocked: str | None = None
    if status.state == "OFFLINE":
        state, e10 = "offline", "UNSCHEDULED_DOWN"
        blocked = f"unreachable: {status.error or 'no answer'}"
    elif status.alarms:
        state, e10 = "alarm", "UNSCHEDULED_DOWN"
        a = status.alarms[0]
        blocked = f"alarm {a.code} {a.name}"
    elif status.state in (ToolState.RUNNING.name, ToolState.SETUP.name):
        state, e10 = "busy", "PRODUCTIVE"
    else:
        state, e10 = "idle", "STANDBY"
    if ctx.e10 is not None:
        e10 = ctx.e10
        if e10 not in ("PRODUCTIVE", "STANDBY") and blocked is None:
            blocked = (
                f"{E10_NAMES[e10]}: {ctx.substate or ctx.reason or 'entered by ' + str(ctx.by)}"
            )
    substate = ctx.substate if ctx.e10 else None
    if ctx.inhibits and blocked is None:
        blocked = f"inhibited: {ctx.inhibits[0].reason}"
        if ctx.e10 is None and state == "idle":
            # not available, waiting for a technician (a job running on it finishes first)
            e10, substate = "UNSCHEDULED_DOWN", "maintenance-delay"
    e116: E116 = "blocked" if blocked else ("busy" if state == "busy" else "idle")
    return ToolStateData(
        state=state,
        e10=e10,
        tool_state=None if status.state == "OFFLINE" else status.state,
        job_id=status.job_id,
        alarms=alarms,
        e116=e116,
        blocked=blocked,
        e10_substate=substate,
        context=ctx.note if ctx.e10 else None,
    )


def tool_events(d: ToolDriver, before: ToolStateData | None, now: ToolStateData) -> list[EventBase]:
    """The events that tell what changed on tool `d` since `before`."""
    out: list[EventBase] = []
    was = frozenset(before.alarms) if before else frozenset()
    codes = frozenset(now.alarms)
    for code, cls in [(c, AlarmSet) for c in sorted(codes - was)] + [
        (c, AlarmCleared) for c in sorted(was - codes)
    ]:
        a = d.interface.alarm(code)
        out.append(cls(tool_id=d.tool_id, data=AlarmData(code=code, name=a.name, text=a.text)))
    if before is None or now != before:
        out.append(ToolStateChanged(tool_id=d.tool_id, data=now))
    return out


async def read_status(d: ToolDriver) -> ToolStatusView:
    try:
        return ToolStatusView.of(d.kind, await d.status())
    except ToolError as e:
        return ToolStatusView.offline(d.tool_id, d.kind, str(e))


def load_contexts(s: Session, tools: Iterable[str]) -> dict[str, Context]:
    """Each tool's latest technician entry and its inhibits in force."""
    out: dict[str, Context] = {}
    for t in tools:
        row = s.scalars(
            select(ToolContext)
            .where(col(ToolContext.tool_id) == t)
            .order_by(col(ToolContext.id).desc())
            .limit(1)
        ).first()
        inhibits = s.scalars(
            select(ToolInhibit)
            .where(col(ToolInhibit.tool_id) == t, col(ToolInhibit.released_at).is_(None))
            .order_by(col(ToolInhibit.id))
        ).all()
        ctx = Context(
            inhibits=tuple(Inhibit(i.id or 0, i.reason, i.by, i.at) for i in inhibits),
            spc_open=spc_store.open_violations_of_tool(s, t),
        )
        if row is not None and row.e10 is not None:
            ctx = replace(
                ctx,
                e10=row.e10,  # type: ignore[arg-type]
                substate=row.substate,
                reason=row.reason,
                note=row.context,
                by=row.by,
            )
        out[t] = ctx
    return out


def last_reports(s: Session, tools: Iterable[str]) -> dict[str, tuple[ToolStateData, datetime]]:
    """The last tool_state each tool reported, and when: time in state survives a restart."""
    out: dict[str, tuple[ToolStateData, datetime]] = {}
    for t in tools:
        row = s.execute(
            select(col(Outbox.payload), col(Outbox.created_at))
            .where(
                col(Outbox.type) == "tool_state", col(Outbox.payload)["tool_id"].as_string() == t
            )
            .order_by(col(Outbox.id).desc())
            .limit(1)
        ).first()
        if row is not None:
            with contextlib.suppress(ValueError):
                out[t] = (ToolStateData.model_validate(row[0]["data"]), row[1])
    return out


def job_lot(s: Session, job_id: str) -> tuple[str, str] | None:
    row = s.execute(
        select(col(StepRun.lot_id), col(StepRun.step_id)).where(col(StepRun.job_id) == job_id)
    ).first()
    return (row[0], row[1]) if row is not None else None


Listener = Callable[[Tile], None]


class ToolMonitor:
    """The tiles of a station's tools, polled each `interval` seconds, one task per tool."""

    def __init__(
        self,
        db: Database,
        drivers: Iterable[ToolDriver],
        station: str,
        *,
        interval: float = 1.0,
        wake_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.drivers = {d.tool_id: d for d in drivers}
        self.station = station
        self.interval = interval
        self.wake_outbox = wake_outbox
        self.tiles: dict[str, Tile] = {}
        self.contexts: dict[str, Context] = {}
        self.listeners: list[Listener] = []
        self._pokes = {t: asyncio.Event() for t in self.drivers}
        self._jobs: dict[str, tuple[str, str] | None] = {}

    async def run(self, stop: asyncio.Event) -> None:
        ids = list(self.drivers)
        self.contexts = await self.db.run(lambda s: load_contexts(s, ids))
        reports = await self.db.run(lambda s: last_reports(s, ids))
        await asyncio.gather(
            *(self._watch(d, stop, reports.get(t)) for t, d in self.drivers.items())
        )

    def poke(self, tool_id: str) -> None:
        """Look at the tool now (a technician changed its context)."""
        ev = self._pokes.get(tool_id)
        if ev is not None:
            ev.set()

    async def refresh_context(self, tool_id: str) -> None:
        self.contexts.update(await self.db.run(lambda s: load_contexts(s, [tool_id])))
        self.poke(tool_id)

    async def _watch(
        self,
        d: ToolDriver,
        stop: asyncio.Event,
        last: tuple[ToolStateData, datetime] | None,
    ) -> None:
        before, since = last if last is not None else (None, utcnow())
        poke = self._pokes[d.tool_id]
        while not stop.is_set():
            try:
                poke.clear()
                status = await read_status(d)
                ctx = self.contexts.get(d.tool_id, Context())
                now = derive(d.tool_id, status, ctx)
                events = tool_events(d, before, now)
                if events:
                    write = functools.partial(store.add_events, station=self.station, events=events)
                    await self.db.run(write)
                    self.wake_outbox()
                    if before is not None and _state(before) != _state(now):
                        since = utcnow()  # (a new job on a busy tool is the same state)
                    before = now
                lot = await self._lot_of(now.job_id)
                tile = Tile(
                    d.tool_id, d.kind, status, now, since,
                    lot_id=lot[0] if lot else None, step_id=lot[1] if lot else None, context=ctx,
                )  # fmt: skip
                if tile != self.tiles.get(d.tool_id):  # unchanged: the same object (cached HTML)
                    self.tiles[d.tool_id] = tile
                    for listener in self.listeners:
                        listener(tile)
            except Exception:  # a database hiccup must not end a tool's monitoring
                log.exception("station.tool_monitor_failed", tool_id=d.tool_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, poke), self.interval)

    async def _lot_of(self, job_id: str | None) -> tuple[str, str] | None:
        if job_id is None:
            return None
        if job_id not in self._jobs:
            found = await self.db.run(lambda s: job_lot(s, job_id))
            if found is None:
                return None  # not recorded yet (intent is written before the job starts)
            if len(self._jobs) > 10_000:
                self._jobs.clear()
            self._jobs[job_id] = found
        return self._jobs[job_id]


def _state(d: ToolStateData) -> tuple[object, ...]:
    return (d.state, d.e10, d.e116, d.blocked, d.e10_substate)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
