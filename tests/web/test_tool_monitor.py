"""The tool monitor: one polling task per tool, so a tool that never answers does not delay
the others; E10 and E116 derived from the tool's status and what technicians entered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest_asyncio

from controller.genealogy.db import Database
from controller.lots import ToolStatusView
from controller.lots.views import AlarmView
from controller.station.tool_monitor import Context, Inhibit, Tile, ToolMonitor, derive
from drivers.base import ToolStatus
from drivers.line import Line, ToolEntry
from drivers.registry import make_driver


@pytest_asyncio.fixture(loop_scope="session")
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections and never answers (a hung tool controller)."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_a_hung_tool_does_not_delay_the_others(
    line: Line, silent_port: int, tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    good = make_driver(line.tool("SPUT-1"), timeout=1.0)
    await good.connect()
    hung = make_driver(ToolEntry(id="SPUT-9", kind="sputter", port=silent_port), timeout=1.0)
    looks = [0]
    real_status = good.status

    async def counted() -> ToolStatus:
        looks[0] += 1
        return await real_status()

    good.status = counted  # type: ignore[method-assign]
    seen: dict[str, list[Tile]] = {"SPUT-1": [], "SPUT-9": []}
    hung_seen = asyncio.Event()

    def listen(t: Tile) -> None:
        seen[t.tool_id].append(t)
        if t.tool_id == "SPUT-9":
            hung_seen.set()

    monitor = ToolMonitor(db, [good, hung], "st-m", interval=0.05)
    monitor.listeners.append(listen)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    try:
        # the hung tool's first look ends with its timeout (1 s)
        await asyncio.wait_for(hung_seen.wait(), 30)
        # meanwhile the good tool was looked at again and again
        assert looks[0] >= 5
        assert seen["SPUT-1"][-1].data.state in ("idle", "busy")  # (other tests use it)
        offline = seen["SPUT-9"][0]
        assert offline.data.state == "offline" and offline.data.e116 == "blocked"
        assert offline.data.blocked is not None and offline.data.blocked.startswith("unreachable")
    finally:
        stop.set()
        await task
        await good.close()
        await hung.close()
        db.close()


def status(state: str, alarms: int = 0) -> ToolStatusView:
    return ToolStatusView(
        tool="T-1", kind="sputter", state=state, job_id="J1" if state == "RUNNING" else None,
        alarms=[AlarmView(code=103, name="ARC", text="arcing")] * alarms,
    )  # fmt: skip


def test_e10_and_e116_follow_the_tool_and_the_technician() -> None:
    idle, running = status("IDLE"), status("RUNNING")
    assert (derive("T-1", idle, Context()).e10, derive("T-1", idle, Context()).e116) == (
        "STANDBY", "idle",
    )  # fmt: skip
    busy = derive("T-1", running, Context())
    assert (busy.state, busy.e10, busy.e116, busy.job_id) == ("busy", "PRODUCTIVE", "busy", "J1")
    alarm = derive("T-1", status("ALARM", alarms=1), Context())
    assert (alarm.e10, alarm.e116, alarm.blocked) == (
        "UNSCHEDULED_DOWN",
        "blocked",
        "alarm 103 ARC",
    )
    pm = Context(e10="SCHEDULED_DOWN", substate="preventive-maintenance", note="chamber clean")
    down = derive("T-1", idle, pm)
    assert (down.e10, down.e116) == ("SCHEDULED_DOWN", "blocked")
    assert down.blocked == "scheduled down: preventive-maintenance"
    assert (down.e10_substate, down.context) == ("preventive-maintenance", "chamber clean")
    eng = derive("T-1", running, Context(e10="ENGINEERING", substate="process-engineering"))
    assert (eng.e10, eng.e116) == ("ENGINEERING", "blocked")
    spc = Inhibit(1, "SPC kerf drift", "spc", datetime.now(UTC))
    inhibited = derive("T-1", idle, Context(inhibits=(spc,)))
    assert (inhibited.e116, inhibited.blocked) == ("blocked", "inhibited: SPC kerf drift")
    # idle and inhibited: not available, waiting for a technician; a job running finishes
    assert (inhibited.e10, inhibited.e10_substate) == ("UNSCHEDULED_DOWN", "maintenance-delay")
    finishing = derive("T-1", running, Context(inhibits=(spc,)))
    assert (finishing.e10, finishing.e116) == ("PRODUCTIVE", "blocked")
    repair = derive(
        "T-1", idle, Context(e10="UNSCHEDULED_DOWN", substate="repair", inhibits=(spc,))
    )
    assert (repair.e10, repair.e10_substate) == ("UNSCHEDULED_DOWN", "repair")
    assert derive("T-1", status("OFFLINE"), Context()).e10 == "UNSCHEDULED_DOWN"
