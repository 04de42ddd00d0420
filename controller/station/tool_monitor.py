"""Each tool's state (SEMI E10) and alarms, reported to the MES as they change.

Tools are polled concurrently, so an unreachable tool (a status call bounded by its
timeout) never delays the others' reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from controller.events import (
    AlarmCleared,
    AlarmData,
    AlarmSet,
    EventBase,
    ToolStateChanged,
    ToolStateData,
)
from controller.genealogy import store
from controller.genealogy.db import Database
from drivers.base import ToolDriver
from drivers.errors import ToolError
from drivers.interface import ToolState


@dataclass(frozen=True)
class Seen:
    state: str  # idle, busy, alarm, offline
    alarms: frozenset[int]


def tool_events(d: ToolDriver, before: Seen | None, now: ToolStateData) -> list[EventBase]:
    """The events that tell what changed on tool `d` since `before`."""
    out: list[EventBase] = []
    was = before.alarms if before else frozenset()
    codes = frozenset(now.alarms)
    for code, cls in [(c, AlarmSet) for c in sorted(codes - was)] + [
        (c, AlarmCleared) for c in sorted(was - codes)
    ]:
        a = d.interface.alarm(code)
        out.append(cls(tool_id=d.tool_id, data=AlarmData(code=code, name=a.name, text=a.text)))
    if before is None or now.state != before.state:
        out.append(ToolStateChanged(tool_id=d.tool_id, data=now))
    return out


async def read_state(d: ToolDriver) -> ToolStateData:
    try:
        st = await d.status()
    except ToolError:
        return ToolStateData(
            state="offline", e10="UNSCHEDULED_DOWN", tool_state=None, job_id=None, alarms=[]
        )
    codes = [a.code for a in st.alarms]
    if st.alarms:
        state, e10 = "alarm", "UNSCHEDULED_DOWN"
    elif st.state is ToolState.RUNNING:
        state, e10 = "busy", "PRODUCTIVE"
    else:
        state, e10 = "idle", "STANDBY"
    return ToolStateData(
        state=state,
        e10=e10,
        tool_state=st.state.name,
        job_id=st.job_id,
        alarms=codes,
    )


async def monitor_tools(
    db: Database,
    drivers: Iterable[ToolDriver],
    station: str,
    stop: asyncio.Event,
    interval: float = 1.0,
) -> None:
    """Poll every tool each `interval` seconds until `stop`; write what changed."""
    tools = list(drivers)
    seen: dict[str, Seen] = {}
    while not stop.is_set():
        states = await asyncio.gather(*(read_state(d) for d in tools))
        events: list[EventBase] = []
        for d, now in zip(tools, states, strict=True):
            events += tool_events(d, seen.get(d.tool_id), now)
            seen[d.tool_id] = Seen(now.state, frozenset(now.alarms))
        if events:
            await db.run(functools.partial(store.add_events, station=station, events=events))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
