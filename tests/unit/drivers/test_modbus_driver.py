"""The Modbus driver (drivers/modbus_driver.py) against a transcript of register requests.

Register numbers are the literal ones of docs/tools/modbus-map.md; the kind is a small press
declared here, so every job block can be written out register by register.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from drivers.base import Job
from drivers.errors import (
    GarbledReply,
    ParameterError,
    ToolAlarm,
    ToolBusy,
    ToolTimeout,
    ValueRefused,
)
from drivers.interface import (
    Alarm,
    Consumable,
    JobState,
    Operation,
    Param,
    Qualification,
    Result,
    SetupField,
    ToolInterface,
    ToolState,
)
from drivers.testing import (
    Identify,
    ModbusRefused,
    ReadInput,
    Registers,
    Write,
    expect_modbus,
    text_regs,
)

PRESS = ToolInterface(
    kind="press",
    protocol="modbus",
    title="Test press",
    vendor="FABLINE-TEST",
    model="PRESS-1",
    operations=(
        Operation(
            "press",
            3,
            "Press a part with an installed die.",
            params=(
                Param("die", choices=("A", "B", "C"), setup="dies"),
                Param("force", "kN", 1, 50),
                Param("hold", "s", 0, 60, default=5.0),
            ),
            results=(Result("height", "µm"), Result("peak_force", "kN")),
        ),
        Operation("calibrate", 4, "Zero the load cell.", params=(), results=()),
    ),
    alarms=(
        Alarm(501, "OVERLOAD", "force overload"),
        Alarm(590, "DIE_WEAR_WARNING", "die wear above 90 %", warning=True),
    ),
    consumables=(
        Consumable("die_wear", "count", 1000.0),
        Consumable("grease", "mL", 500.0, supply=True),
    ),
    id_prefix="PRESS",
    qualification=Qualification("calibrate", {}),
    setup=(SetupField("dies", ("A", "B", "C")),),
)

JOB = Job("J1", "press", {"die": "B", "force": "20 kN"})
# FC16 from HR 0: START, operation 3, "J1" in 16 registers, 2 spare, then one f32 per
# parameter: die B = choice 1 = 1.0 (0x3F800000), 20 kN (0x41A00000), hold 5 s (0x40A00000)
START = Write(0, [1, 3, 0x4A31, *[0] * 15, 0, 0, 0x3F80, 0, 0x41A0, 0, 0x40A0, 0])
SELECT = Write(100, [0x4A31, *[0] * 15])  # the job id to query: "J1"
POLL = ReadInput(0, 26)  # state, progress, alarm ... current job id
STATUS = ReadInput(0, 114)
QUERY = ReadInput(200, 77)  # registers 200..276: job, state, results, warnings
WHY = ReadInput(5, 53)  # refusal code, register ... refusal text


def current(state: ToolState, permille: int = 0, job: str = "J1", alarm: int = 0) -> Registers:
    return Registers(26).u16(0, state).u16(1, permille).u16(2, alarm).text(10, job, 16)


def queried(
    state: JobState,
    *,
    job: str = "J1",
    op: int = 3,
    permille: int = 1000,
    alarm: int = 0,
    results: tuple[float, ...] = (),
) -> Registers:
    q = Registers(77, base=200).text(200, job, 16).u16(216, state).u16(217, permille)
    q.u16(218, alarm).u16(219, op)
    for i, value in enumerate(results):
        q.f32(220 + 2 * i, value)
    return q


def refusal(code: int, register: int, text: str) -> Registers:
    return Registers(53, base=5).u16(5, code).u16(6, register).text(26, text, 32)


def status(
    state: ToolState = ToolState.IDLE,
    *,
    dies: int = 0b011,
    job: str = "",
    alarms: tuple[int, ...] = (),
) -> Registers:
    r = Registers(114).u16(0, state).u16(1, 417).text(10, job, 16).u16(66, dies)
    r.f32(74, 912.0).f32(76, 125.5).f32(90, 1000.0).f32(92, 500.0)  # die wear, grease
    for i, code in enumerate(alarms):
        r.u16(58 + i, code)
    return r


# -- identify and status --------------------------------------------------------------------


async def test_identify_reads_the_device_identification_objects() -> None:
    objects = {0: "FABLINE-TEST", 1: "PRESS-1", 2: "1.0.0", 0x80: "SN-PRESS-7"}
    with expect_modbus(PRESS, [(Identify(), objects), (Identify(), {0: "X", 1: "Y", 2: "2"})]) as d:
        ident = await d.identify()
        assert (ident.vendor, ident.model, ident.serial, ident.revision) == (
            "FABLINE-TEST",
            "PRESS-1",
            "SN-PRESS-7",
            "1.0.0",
        )
        assert (await d.identify()).serial == ""  # the serial is optional


async def test_an_identification_without_its_revision_is_garbled() -> None:
    steps = [(Identify(), {0: "FABLINE-TEST", 1: "PRESS-1"})]
    with expect_modbus(PRESS, steps) as d, pytest.raises(GarbledReply, match="lacks object 2"):
        await d.identify()


async def test_status_decodes_the_status_block() -> None:
    block = status(ToolState.RUNNING, dies=0b101, job="J1", alarms=(501,))
    block.u16(106, 590)  # a warning
    with expect_modbus(PRESS, [(STATUS, block)], tool_id="PRESS-1") as d:
        st = await d.status()
    assert (st.tool_id, st.state, st.job_id, st.progress) == (
        "PRESS-1",
        ToolState.RUNNING,
        "J1",
        41.7,
    )
    assert [a.name for a in st.alarms] == ["OVERLOAD"]
    assert [w.name for w in st.warnings] == ["DIE_WEAR_WARNING"]
    wear, grease = st.consumables
    assert (wear.name, wear.unit, wear.level, wear.limit, wear.supply) == (
        "die_wear",
        "count",
        912.0,
        1000.0,
        False,
    )
    assert grease.supply and grease.used_fraction == pytest.approx(0.749)
    assert st.setup == {"dies": ("A", "C")}  # bits 0 and 2


async def test_an_idle_tool_reports_no_job() -> None:
    with expect_modbus(PRESS, [(STATUS, status())]) as d:
        assert (await d.status()).job_id is None


async def test_an_unknown_tool_state_is_garbled() -> None:
    steps = [(STATUS, status().u16(0, 9))]
    with expect_modbus(PRESS, steps) as d, pytest.raises(GarbledReply, match="state 9") as e:
        await d.status()
    assert e.value.where == "IR 0"


# -- start --------------------------------------------------------------------------------


async def test_start_writes_the_job_block_in_one_request() -> None:
    with expect_modbus(PRESS, [(START, None)]) as d:
        await d.start(JOB)


async def test_a_refused_start_is_explained_from_the_refusal_registers() -> None:
    steps = [
        (START, ModbusRefused(3)),
        (WHY, refusal(8, 22, "FORCE 20 KN NEEDS HOLD >= 8 S")),
        (SELECT, None),
        (QUERY, queried(JobState.UNKNOWN)),
    ]
    with expect_modbus(PRESS, steps, tool_id="PRESS-1") as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert not isinstance(e.value, ToolBusy)
    assert (e.value.code, e.value.where) == (8, "HR 22")
    assert str(e.value) == "PRESS-1 [HR 22]: refused (rule): FORCE 20 KN NEEDS HOLD >= 8 S"


async def test_busy_with_another_job_is_tool_busy() -> None:
    steps = [
        (START, ModbusRefused(6)),
        (WHY, refusal(3, 0, "BUSY WITH JOB J0")),
        (SELECT, None),
        (QUERY, queried(JobState.UNKNOWN)),
    ]
    with expect_modbus(PRESS, steps) as d, pytest.raises(ToolBusy, match=r"\(busy\)") as e:
        await d.start(JOB)
    assert e.value.code == 3


@pytest.mark.parametrize(("exception", "code"), [(3, 5), (6, 3)])  # duplicate, busy
async def test_a_resend_refused_with_our_job_running_counts_as_started(
    exception: int, code: int
) -> None:
    steps = [
        (START, ModbusRefused(exception)),
        (WHY, refusal(code, 2, "JOB J1 ALREADY EXISTS (RUNNING)")),
        (SELECT, None),
        (QUERY, queried(JobState.RUNNING, permille=120)),
    ]
    with expect_modbus(PRESS, steps) as d:
        await d.start(JOB)


async def test_a_duplicate_id_of_another_operation_is_refused() -> None:
    steps = [
        (START, ModbusRefused(3)),
        (WHY, refusal(5, 2, "JOB J1 ALREADY EXISTS (COMPLETE)")),
        (SELECT, None),
        (QUERY, queried(JobState.COMPLETE, op=4)),  # J1 was a calibration
    ]
    with expect_modbus(PRESS, steps) as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert e.value.code == 5


async def test_a_start_whose_reply_is_lost_but_that_ran_counts_as_started() -> None:
    steps = [(START, ToolTimeout), (SELECT, None), (QUERY, queried(JobState.RUNNING))]
    with expect_modbus(PRESS, steps) as d:
        await d.start(JOB)


async def test_an_unexplained_refusal_is_raised_bare() -> None:
    steps = [
        (START, ModbusRefused(3)),
        (WHY, ToolTimeout),
        (SELECT, None),
        (QUERY, queried(JobState.UNKNOWN)),
    ]
    with expect_modbus(PRESS, steps, tool_id="PRESS-1") as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert str(e.value) == "PRESS-1 [HR 0]: refused: exception 3 (illegal data value)"


async def test_not_set_up_rereads_the_setup_so_the_next_job_is_vetted() -> None:
    steps = [
        (STATUS, status(dies=0b011)),
        (START, ModbusRefused(3)),
        (WHY, refusal(4, 20, "DIE B NOT SET UP (INSTALLED: A)")),
        (STATUS, status(dies=0b001)),  # the re-read: only die A now
        (SELECT, None),
        (QUERY, queried(JobState.UNKNOWN)),
    ]
    with expect_modbus(PRESS, steps) as d:
        await d.status()
        with pytest.raises(ValueRefused) as e:
            await d.start(JOB)
        assert e.value.code == 4 and e.value.where == "HR 20"
        with pytest.raises(ParameterError, match=r"die B not set up \(installed: A\)"):
            await d.start(Job("J2", "press", JOB.params))


async def test_not_set_up_stands_when_the_setup_cannot_be_reread() -> None:
    steps = [
        (START, ModbusRefused(3)),
        (WHY, refusal(4, 20, "DIE B NOT SET UP (INSTALLED: A)")),
        (STATUS, ToolTimeout),
        (SELECT, None),
        (QUERY, queried(JobState.UNKNOWN)),
    ]
    with expect_modbus(PRESS, steps) as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert e.value.code == 4


# -- progress, wait, result ------------------------------------------------------------------


async def test_the_current_jobs_progress_takes_one_read() -> None:
    with expect_modbus(PRESS, [(POLL, current(ToolState.RUNNING, 417))]) as d:
        p = await d.job_progress("J1")
    assert (p.state, p.progress, p.alarm_code) == (JobState.RUNNING, 41.7, 0)


async def test_an_older_jobs_progress_is_queried_by_id() -> None:
    steps = [(POLL, current(ToolState.RUNNING, 417, job="J2")), (SELECT, None)]
    steps.append((QUERY, queried(JobState.COMPLETE, results=(152.5, 19.75))))
    with expect_modbus(PRESS, steps) as d:
        p = await d.job_progress("J1")
    assert (p.state, p.progress) == (JobState.COMPLETE, 100.0)


async def test_wait_polls_then_reads_the_results() -> None:
    steps = [
        (POLL, current(ToolState.RUNNING, 100)),
        (POLL, current(ToolState.RUNNING, 600)),
        (POLL, current(ToolState.COMPLETE, 1000)),
        (SELECT, None),
        (QUERY, queried(JobState.COMPLETE, results=(152.5, 19.75))),
    ]
    seen: list[float] = []
    with expect_modbus(PRESS, steps) as d:
        res = await d.wait("J1", on_progress=lambda p, s: seen.append(p))
    assert seen == [10.0, 60.0, 100.0]
    assert res.operation == "press" and res.results == {"height": 152.5, "peak_force": 19.75}


async def test_a_job_whose_alarm_was_cleared_still_ends_in_its_alarm() -> None:
    """After an operator clears the alarm the tool is IDLE but still shows J1 as its last
    job: IDLE says nothing about J1, so the driver asks for J1 by id."""
    alarmed = queried(JobState.ALARM, permille=500, alarm=501)
    steps = [
        (POLL, current(ToolState.IDLE, 500)),
        (SELECT, None),
        (QUERY, alarmed),
        (SELECT, None),
        (QUERY, alarmed),
    ]
    with expect_modbus(PRESS, steps) as d, pytest.raises(ToolAlarm) as e:
        await d.wait("J1")
    assert (e.value.code, e.value.job_id) == (501, "J1")


async def test_a_tool_alarm_after_our_job_finished_is_not_our_jobs_alarm() -> None:
    steps = [(POLL, current(ToolState.ALARM, 1000, alarm=501)), (SELECT, None)]
    steps.append((QUERY, queried(JobState.COMPLETE, results=(152.5, 19.75))))
    with expect_modbus(PRESS, steps) as d:
        p = await d.job_progress("J1")
    assert (p.state, p.alarm_code) == (JobState.COMPLETE, 0)


async def test_a_query_answered_for_another_job_is_garbled() -> None:
    steps = [(SELECT, None), (QUERY, queried(JobState.COMPLETE, job="J2"))]
    with expect_modbus(PRESS, steps) as d, pytest.raises(GarbledReply, match="echoed job 'J2'"):
        await d.result("J1")


@pytest.mark.parametrize(
    ("block", "where"),
    [
        (queried(JobState.COMPLETE, op=9), "IR 219"),
        (queried(JobState.COMPLETE).u16(216, 9), "IR 216"),
    ],
)
async def test_a_garbled_query_block_names_its_register(block: Registers, where: str) -> None:
    steps = [(SELECT, None), (QUERY, block)]
    with expect_modbus(PRESS, steps) as d, pytest.raises(GarbledReply) as e:
        await d.result("J1")
    assert e.value.where == where


async def test_concurrent_queries_never_interleave_select_and_read() -> None:
    """A query is a write of the id then a read; a second query between them would read
    the other job's block."""
    select_j2 = Write(100, text_regs("J2", 16))
    steps = [
        (SELECT, None),
        (QUERY, queried(JobState.COMPLETE, results=(150.0, 20.0))),
        (select_j2, None),
        (QUERY, queried(JobState.COMPLETE, job="J2", results=(160.0, 21.0))),
    ]
    with expect_modbus(PRESS, steps) as d:
        r1, r2 = await asyncio.gather(d.result("J1"), d.result("J2"))
    assert (r1.results["height"], r2.results["height"]) == (150.0, 160.0)


# -- commands -------------------------------------------------------------------------------


async def test_commands_write_the_command_register() -> None:
    steps = [(Write(0, [2]), None), (Write(0, [3]), None), (Write(0, [5, 1]), None)]
    with expect_modbus(PRESS, steps) as d:
        await d.abort()
        await d.clear_alarms()
        await d.replace_consumable("grease")  # consumable index 1


@pytest.mark.parametrize(
    ("code", "reason"), [(10, "refused (no job): NO JOB TO ABORT"), (99, "refused (refusal 99)")]
)
async def test_a_refused_command_is_explained(code: int, reason: str) -> None:
    steps = [(Write(0, [2]), ModbusRefused(3)), (WHY, refusal(code, 0, "NO JOB TO ABORT"))]
    with (
        expect_modbus(PRESS, steps) as d,
        pytest.raises(ValueRefused, match=re.escape(reason)) as e,
    ):
        await d.abort()
    assert e.value.code == code
