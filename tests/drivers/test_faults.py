"""Fault behaviour of the transports and the driver surface, on one SCPI, one Modbus and one
GEM tool (the dicing saw again, on HSMS).

Each fault is injected into a running simulator; the driver must surface a typed error within
its timeout (never hang) and stay usable afterwards.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest
import pytest_asyncio

from drivers.base import Job, ToolDriver
from drivers.errors import (
    GarbledReply,
    JobAborted,
    ToolAlarm,
    ToolBusy,
    ToolOffline,
    ToolTimeout,
    ValueRefused,
)
from drivers.interface import JobState, ToolState
from drivers.line import Line, ToolEntry
from simulators.line import SimLine
from tests.helpers import connected, new_job_id

JOBS = {
    "SPUT-1": ("deposit", {"target": "CU", "thickness": "300 nm", "power": "5 kW"}),
    "DICE-1": (
        "dice",
        {"blade": "HUB_30", "material": "SI", "stack_thickness": "100 µm",
         "cut_depth": "130 µm", "feed": "50 mm/s", "die_x": "5 mm", "die_y": "5 mm",
         "work_width": "300 mm"},
    ),
}  # fmt: skip
JOBS["DICE-G"] = JOBS["DICE-1"]
ALARM = {"SPUT-1": 105, "DICE-1": 403, "DICE-G": 403}
TOOLS = list(JOBS)
TIMEOUT = 0.5


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fault_line() -> AsyncIterator[SimLine]:
    spec = Line(
        tools=[
            ToolEntry(id="SPUT-1", kind="sputter"),
            ToolEntry(id="DICE-1", kind="dicing"),
            ToolEntry(id="DICE-G", kind="dicing", protocol="gem"),
        ]
    )
    # slow enough that a job is still running when a test looks at it (a sputter job ≈ 0.5 s)
    async with SimLine(spec, time_scale=500) as line:
        yield line


def driver(sl: SimLine, tool_id: str) -> AbstractAsyncContextManager[ToolDriver]:
    return connected(sl.describe(), tool_id, timeout=TIMEOUT, link_budget=1.0)


def job(tool_id: str) -> Job:
    op, params = JOBS[tool_id]
    return Job(new_job_id(tool_id), op, params)


@pytest.fixture(autouse=True)
def _clean(fault_line: SimLine) -> None:
    for tid in TOOLS:
        fault_line.fault(tid, "clear")
        sim = fault_line.sim(tid)
        sim.reset()
        for c in sim.interface.consumables:
            sim.replace_consumable(c.name)


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_alarm_mid_job_then_driver_still_usable(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        fault_line.fault(tool_id, "alarm", code=ALARM[tool_id], at=0.5)
        j = job(tool_id)
        progress: list[float] = []
        with pytest.raises(ToolAlarm) as e:
            await d.run(j, on_progress=lambda p, s: progress.append(p))
        assert e.value.code == ALARM[tool_id]
        assert e.value.job_id == j.job_id
        assert str(e.value).startswith(tool_id)
        assert (await d.result(j.job_id)).state is JobState.ALARM
        st = await d.status()
        assert st.state is ToolState.ALARM and st.alarms[0].code == ALARM[tool_id]
        with pytest.raises(ToolBusy, match="alarm"):
            await d.start(job(tool_id))
        await d.clear_alarms()
        fault_line.sim(tool_id).time_scale = 1e5
        try:
            assert (await d.run(job(tool_id))).state is JobState.COMPLETE
        finally:
            fault_line.sim(tool_id).time_scale = 500


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_abort_stops_a_running_job(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        j = job(tool_id)
        await d.start(j)
        assert (await d.job_progress(j.job_id)).state is JobState.RUNNING
        await d.abort()
        with pytest.raises(JobAborted):
            await d.wait(j.job_id)
        assert (await d.status()).state is ToolState.ABORTED


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_dropped_connection_reconnects(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        await d.status()
        assert "dropped 1" in fault_line.fault(tool_id, "drop")
        st = await d.status()  # idempotent query: reconnects and resends
        assert st.tool_id == tool_id


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_garbled_reply_is_typed_and_recovers(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        fault_line.fault(tool_id, "garble", count=1)
        t0 = time.monotonic()
        with pytest.raises((GarbledReply, ToolTimeout)) as e:
            await d.status()
        assert time.monotonic() - t0 < TIMEOUT + 1.5
        assert e.value.tool_id == tool_id and e.value.where
        assert isinstance(e.value, GarbledReply)
        assert (await d.status()).tool_id == tool_id


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_stalled_reply_times_out_then_recovers(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        fault_line.fault(tool_id, "stall", count=1)
        t0 = time.monotonic()
        with pytest.raises(ToolTimeout) as e:
            await d.status()
        assert TIMEOUT * 0.9 < time.monotonic() - t0 < TIMEOUT + 1.5
        assert "no reply" in str(e.value)
        assert (await d.status()).tool_id == tool_id


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_slow_replies_within_timeout_still_work(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        fault_line.fault(tool_id, "slow", delay=0.05, count=3)
        t0 = time.monotonic()
        await d.status()
        assert time.monotonic() - t0 >= 0.05


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_offline_tool_fails_cleanly_within_timeout(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        fault_line.fault(tool_id, "offline", seconds=30)
        t0 = time.monotonic()
        with pytest.raises(ToolOffline) as e:
            await d.status()
        assert time.monotonic() - t0 < TIMEOUT + 1.5
        assert tool_id in str(e.value)
        fault_line.fault(tool_id, "clear")  # back online
        async with driver(fault_line, tool_id) as d2:
            assert (await d2.status()).tool_id == tool_id


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_exhausted_consumable_refuses_and_alarms(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        name = {"SPUT-1": "target_cu", "DICE-1": "blade_wear", "DICE-G": "blade_wear"}[tool_id]
        fault_line.fault(tool_id, "exhaust", consumable=name)
        with pytest.raises(ValueRefused, match=f"{name} exhausted"):
            await d.start(job(tool_id))
        assert (await d.status()).state is ToolState.ALARM
        await d.replace_consumable(name)
        st = await d.status()
        assert st.state is ToolState.IDLE
        assert next(c for c in st.consumables if c.name == name).used_fraction == 0


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_result_by_id_after_a_new_driver(fault_line: SimLine, tool_id: str) -> None:
    """A restarted controller re-attaches to a job by id with a fresh driver."""
    async with driver(fault_line, tool_id) as d:
        j = job(tool_id)
        await d.start(j)
    async with driver(fault_line, tool_id) as d2:
        res = await d2.wait(j.job_id)
        assert res.state is JobState.COMPLETE and res.job_id == j.job_id
        assert (await d2.result(j.job_id)).results == res.results


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_progress_is_reported(fault_line: SimLine, tool_id: str) -> None:
    async with driver(fault_line, tool_id) as d:
        seen: list[tuple[float, JobState]] = []
        await d.run(job(tool_id), on_progress=lambda p, s: seen.append((p, s)))
        values = [p for p, _ in seen]
        assert values == sorted(values)
        assert seen[-1][1] is JobState.COMPLETE and values[-1] == 100
        assert any(0 < p < 100 for p in values)


@pytest.mark.parametrize("tool_id", TOOLS)
async def test_a_start_sent_again_after_garbled_replies_attaches_to_the_job(
    fault_line: SimLine, tool_id: str
) -> None:
    """The reply to a start and every reply after it are line noise, so `start` fails; once
    the link is clean the engine sends the same job again, which the tool refuses as a
    duplicate: that job is the one already started, never a second one."""
    async with driver(fault_line, tool_id) as d:
        sim = fault_line.sim(tool_id)
        fault_line.fault(tool_id, "garble", count=1000, on="start")
        j = job(tool_id)
        with pytest.raises((GarbledReply, ToolTimeout, ToolOffline)):
            await d.start(j)
        fault_line.fault(tool_id, "clear")
        done = sim.jobs_done
        await d.start(j)  # the retry: refused as a duplicate by the tool, attached by the driver
        result = await d.wait(j.job_id)
        assert result.state is JobState.COMPLETE
        assert sim.jobs_done == done + 1 and len([k for k in sim.jobs if k == j.job_id]) == 1
