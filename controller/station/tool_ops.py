"""What people do to the station's tools: enter an E10 state with its context, inhibit a
tool and release the inhibit, acknowledge an alarm, clear a tool's alarms. Each checks the
actor's scope and writes its audit row with its effect (controller/lots/audit.py).

An inhibit takes the tool out of the engine's pool (as a lot holding it would), so no new
job starts on it; a job running on it finishes first. Lots that need only that tool wait
for it, and its tile says it is blocked and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.access import Actor, Scope
from controller.engine import ToolPool
from controller.equipment import SUBSTATES, E10State, SubState
from controller.genealogy.db import Database
from controller.genealogy.models import Outbox, utcnow
from controller.genealogy.station_models import AlarmAck, ToolContext, ToolInhibit
from controller.lots import audit
from controller.station.tool_monitor import E10_NAMES, ToolMonitor
from drivers.errors import (
    FablineError,
    LotStateError,
    NotFound,
    ParameterError,
    ToolError,
    shown,
)

T = TypeVar("T")
AUTO = "AUTO"  # hand the E10 state back to the tool's own
INHIBIT_POLL = 2.0  # seconds between looks for inhibits another process set or released


class ToolService:
    def __init__(self, db: Database, station: str, pool: ToolPool, monitor: ToolMonitor) -> None:
        self.db = db
        self.station = station
        self.pool = pool
        self.monitor = monitor
        self._refreshing: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Keep the tools inhibited before this start (by a person or by SPC) out of the
        pool."""

        def open_inhibits(s: Session) -> set[str]:
            q = select(col(ToolInhibit.tool_id)).where(col(ToolInhibit.released_at).is_(None))
            return set(s.scalars(q))

        for tool_id in await self.db.run(open_inhibits):
            if tool_id in self.pool.drivers:
                self.pool.hold_out(tool_id)
        self._watch = asyncio.create_task(self._follow_inhibits(open_inhibits))

    async def _follow_inhibits(self, open_inhibits: Callable[[Session], set[str]]) -> None:
        """Inhibits released or set by another process (`fabline spc clear` on the station's
        database): the pool follows the database."""
        while True:
            await asyncio.sleep(INHIBIT_POLL)
            try:
                inhibited = await self.db.run(open_inhibits)
            except FablineError:
                continue  # the database is back later
            for tool_id in self.pool.drivers:
                if (tool_id in inhibited) != self.pool.held_out(tool_id):
                    await self.sync(tool_id)

    async def sync(self, tool_id: str) -> None:
        """Hold the tool out of the pool while an inhibit of it is in force, else let it in;
        its tile shows which."""

        def live(s: Session) -> bool:
            q = select(col(ToolInhibit.id)).where(
                col(ToolInhibit.tool_id) == tool_id, col(ToolInhibit.released_at).is_(None)
            )
            return s.scalars(q).first() is not None

        if await self.db.run(live):
            self.pool.hold_out(tool_id)
        else:
            self.pool.let_in(tool_id)
        await self.monitor.refresh_context(tool_id)

    async def close(self) -> None:
        tasks = [*self._refreshing, *([self._watch] if self._watch else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def spc_acted(self, tool_id: str) -> None:
        """A step's SPC chart on the tool had a violation (and may have inhibited the tool,
        held out of the pool already): its tile shows it."""
        task = asyncio.get_running_loop().create_task(self.monitor.refresh_context(tool_id))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    def _tool(self, tool_id: str) -> str:
        if tool_id not in self.pool.drivers:
            raise NotFound(f"no tool {shown(tool_id)!r} on this station's line")
        return tool_id

    async def _audited(
        self, actor: Actor, action: str, target: str, tool_id: str | None,
        work: Callable[[], Awaitable[T]],
    ) -> T:  # fmt: skip
        tool = tool_id if tool_id in self.pool.drivers else None
        return await audit.attempted(self.db, self.station, actor, action, target, work, tool)

    def _ok(self, s: Session, actor: Actor, action: str, target: str, tool: str, msg: str) -> None:
        audit.record(
            s, station=self.station, actor=actor, action=action, target=target, result="ok",
            message=msg, tool_id=tool,
        )  # fmt: skip

    # -- E10 ------------------------------------------------------------------------------

    async def set_e10(self, tool_id: str, state: str, substate: str | None, actor: Actor) -> str:
        """Enter an E10 state (by name: SCHEDULED_DOWN, ...) with an optional sub-state;
        AUTO hands the state back to the tool's own. Reason code and note: the actor's."""

        async def work() -> str:
            actor.require(Scope.TOOL_STATE, f"set the E10 state of {shown(tool_id)}")
            self._tool(tool_id)
            e10, sub = _e10(state, substate)

            def tx(s: Session) -> str:
                s.add(
                    ToolContext(
                        tool_id=tool_id, e10=e10, substate=sub, reason=actor.reason_code,
                        context=actor.comment, by=actor.name,
                    )
                )  # fmt: skip
                text = f"{tool_id}: E10 {E10_NAMES[e10] if e10 else 'from the tool'}"
                text += f" ({sub})" if sub else ""
                self._ok(s, actor, "e10", tool_id, tool_id, text)
                return text

            text = await self.db.run(tx)
            await self.monitor.refresh_context(tool_id)
            return text

        return await self._audited(actor, "e10", tool_id, tool_id, work)

    # -- inhibits -------------------------------------------------------------------------

    async def inhibit(self, tool_id: str, reason: str, actor: Actor) -> int:
        async def work() -> int:
            actor.require(Scope.INHIBIT, f"inhibit {shown(tool_id)}")
            self._tool(tool_id)
            if not reason.strip():
                raise ParameterError("an inhibit needs a reason")

            def tx(s: Session) -> int:
                row = ToolInhibit(tool_id=tool_id, reason=reason.strip(), by=actor.name)
                s.add(row)
                s.flush()
                assert row.id is not None
                self._ok(s, actor, "inhibit", tool_id, tool_id, f"{tool_id} inhibited: {reason}")
                return row.id

            ident = await self.db.run(tx)
            self.pool.hold_out(tool_id)
            await self.monitor.refresh_context(tool_id)
            return ident

        return await self._audited(actor, "inhibit", tool_id, tool_id, work)

    async def release_inhibit(self, tool_id: str, inhibit_id: int, note: str, actor: Actor) -> str:
        async def work() -> str:
            actor.require(Scope.INHIBIT, f"release an inhibit of {shown(tool_id)}")
            self._tool(tool_id)
            if not note.strip():
                raise ParameterError("say what was done to release the inhibit")

            def tx(s: Session) -> tuple[str, bool]:
                row = s.get(ToolInhibit, inhibit_id, with_for_update=True)
                if row is None or row.tool_id != tool_id:
                    raise NotFound(f"no inhibit {inhibit_id} on {tool_id}")
                if row.released_at is not None:
                    raise LotStateError(f"inhibit {inhibit_id} of {tool_id} is already released")
                row.released_at, row.released_by, row.release_note = utcnow(), actor.name, note
                s.flush()
                left = s.scalars(
                    select(col(ToolInhibit.id)).where(
                        col(ToolInhibit.tool_id) == tool_id, col(ToolInhibit.released_at).is_(None)
                    )
                ).first()
                text = f"{tool_id}: inhibit {inhibit_id} released"
                self._ok(s, actor, "release_inhibit", tool_id, tool_id, text)
                return text, left is None

            text, free = await self.db.run(tx)
            if free:
                self.pool.let_in(tool_id)
            await self.monitor.refresh_context(tool_id)
            return text

        return await self._audited(actor, "release_inhibit", tool_id, tool_id, work)

    # -- alarms ---------------------------------------------------------------------------

    async def acknowledge(self, alarm_event: int, actor: Actor) -> str:
        """Acknowledge the alarm an `alarm_set` event (its outbox id) reported."""

        async def work() -> str:
            actor.require(Scope.ACK_ALARMS, "acknowledge alarms")

            def tx(s: Session) -> str:
                row = s.get(Outbox, alarm_event)
                if row is None or row.type != "alarm_set":
                    raise NotFound(f"no alarm {alarm_event}")
                tool, code = row.payload.get("tool_id") or "", int(row.payload["data"]["code"])
                done = s.scalars(
                    select(AlarmAck).where(col(AlarmAck.alarm_event) == alarm_event)
                ).first()
                if done is not None:
                    raise LotStateError(f"alarm {alarm_event} was acknowledged by {done.by}")
                s.add(
                    AlarmAck(
                        alarm_event=alarm_event, tool_id=tool, code=code, by=actor.name,
                        comment=actor.comment,
                    )
                )  # fmt: skip
                text = f"{tool}: alarm {code} acknowledged"
                self._ok(s, actor, "ack", f"{tool}/alarm-{alarm_event}", tool, text)
                return text

            return await self.db.run(tx)

        return await self._audited(actor, "ack", f"alarm-{alarm_event}", None, work)

    async def clear_alarms(self, tool_id: str, actor: Actor) -> str:
        """Tell the tool to clear its alarms (after the cause is fixed)."""

        async def work() -> str:
            actor.require(Scope.TOOL_STATE, f"clear the alarms of {shown(tool_id)}")
            self._tool(tool_id)
            try:
                await self.pool.drivers[tool_id].clear_alarms()
            except ToolError as e:
                raise ToolError(tool_id, f"alarms not cleared: {e.detail}", e.where) from None
            text = f"{tool_id}: alarms cleared"
            await self.db.run(lambda s: self._ok(s, actor, "clear_alarms", tool_id, tool_id, text))
            self.monitor.poke(tool_id)
            return text

        return await self._audited(actor, "clear_alarms", tool_id, tool_id, work)


def _e10(state: str, substate: str | None) -> tuple[str | None, str | None]:
    if state == AUTO:
        if substate:
            raise ParameterError("AUTO takes no sub-state")
        return None, None
    try:
        e10 = E10State[state]
    except KeyError:
        names = ", ".join([*E10State.__members__, AUTO])
        raise ParameterError(f"E10 state {shown(state)!r} is not one of {names}") from None
    if substate is None:
        return state, None
    try:
        sub = SubState(substate)
    except ValueError:
        sub = None
    if sub is None or sub not in SUBSTATES[e10]:
        allowed = ", ".join(sorted(SUBSTATES[e10]))
        raise ParameterError(f"{shown(substate)!r} is not a sub-state of {state} ({allowed})")
    return state, sub.value
