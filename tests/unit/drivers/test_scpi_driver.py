"""The SCPI driver (drivers/scpi_driver.py): the exact lines it sends, how it reads replies,
and what it makes of garbled ones, on a sputter with a transcript link."""

from __future__ import annotations

import pytest

from drivers.base import Job
from drivers.errors import GarbledReply, ParameterError, ToolTimeout, ValueRefused
from drivers.interface import JobState, ToolState
from drivers.interfaces.sputter import SPUTTER
from drivers.testing import ScpiRefused, expect_scpi
from tests.unit.drivers.scpi_sputter import (
    CONSUMABLES,
    DONE,
    JOB,
    RESULT,
    START,
    STATE,
    STATUS,
    status,
)

MISSING = ScpiRefused(-241, "Hardware missing; TARGET CU not installed")


async def test_identify() -> None:
    with expect_scpi(SPUTTER, [("*IDN?", "FABLINE-SIM,MAGNA-300,SN-SPUT-1,1.0.0")]) as d:
        ident = await d.identify()
    assert (ident.vendor, ident.model, ident.serial, ident.revision) == (
        "FABLINE-SIM",
        "MAGNA-300",
        "SN-SPUT-1",
        "1.0.0",
    )


async def test_an_identity_of_three_fields_is_garbled() -> None:
    steps = [("*IDN?", "FABLINE-SIM,MAGNA-300,SN-SPUT-1")]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(GarbledReply, match=r"\*IDN\? gave") as e:
        await d.identify()
    assert e.value.where == "*IDN?"


async def test_status_reads_state_alarms_consumables_and_setup() -> None:
    cons = CONSUMABLES.replace("TARGET_CU,0,2000", "TARGET_CU,1850.5,2000")
    reply = (
        f'RUNNING,"L1-003-1#a3f2",41.7;2,105,"cooling water flow low",190,"target life above'
        f' 90 %";{cons};1,TARGETS,"CU TI"'
    )
    with expect_scpi(SPUTTER, [(STATUS, reply)], tool_id="SPUT-1") as d:
        st = await d.status()
    assert (st.tool_id, st.state, st.job_id, st.progress) == (
        "SPUT-1",
        ToolState.RUNNING,
        "L1-003-1#a3f2",
        41.7,
    )
    assert [a.code for a in st.alarms] == [105] and [w.code for w in st.warnings] == [190]
    cu = st.consumables[0]
    assert (cu.name, cu.unit, cu.level, cu.limit, cu.supply) == (
        "target_cu",
        "kWh",
        1850.5,
        2000,
        False,
    )
    assert cu.used_fraction == pytest.approx(0.92525)
    assert len(st.consumables) == 8
    assert st.setup == {"targets": ("CU", "TI")}


async def test_an_idle_tool_has_no_job() -> None:
    with expect_scpi(SPUTTER, [(STATUS, status("CU"))]) as d:
        st = await d.status()
    assert st.job_id is None and st.state is ToolState.IDLE and not st.alarms


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        ('IDLE,"",0.0;0;1,TARGETS,"CU"', "expected 4 reply units, got 3"),
        (status("CU", state='SLEEPING,"",0.0'), "bad status reply"),
        (status("CU", state='IDLE,"",fast'), "bad status reply"),
        (status("CU").replace("TARGET_CU", "TARGET_XX"), "bad status reply"),
        (status("CU", alarms="1,105"), None),  # a code without its text still parses
        ('IDLE,"unterminated,0.0;0;0;0', "garbled reply"),  # as the transport says
    ],
)
async def test_a_garbled_status_is_a_typed_error_naming_the_query(
    reply: str, words: str | None
) -> None:
    with expect_scpi(SPUTTER, [(STATUS, reply)], tool_id="SPUT-1") as d:
        if words is None:
            await d.status()
            return
        with pytest.raises(GarbledReply, match=words) as e:
            await d.status()
    assert e.value.where == STATUS and e.value.tool_id == "SPUT-1"


async def test_start_sends_every_parameter_in_the_sheets_unit() -> None:
    """0.3 µm, 5000 W and 298.15 K travel as 300 nm, 5 kW and 25 °C; choices upper-case."""
    job = Job(
        "J1",
        "deposit",
        {"target": "cu", "thickness": "0.3 µm", "power": "5000 W", "chuck_temp": "298.15 K"},
    )
    with expect_scpi(SPUTTER, [(START, "")]) as d:
        await d.start(job)


async def test_start_of_a_seed_stack_in_the_operations_parameter_order() -> None:
    job = Job(
        "J2", "seed_stack", {"barrier": "TIW", "seed_thickness": "0.25 µm", "power": "6.5 kW"}
    )
    line = (
        'JOB:NEW "J2",SEED_STACK;:JOB:PAR BARRIER,TIW;:JOB:PAR BARRIER_THICKNESS,100;'
        ":JOB:PAR SEED_THICKNESS,250;:JOB:PAR POWER,6.5;:JOB:PAR PRESSURE,4;"
        ":JOB:PAR CHUCK_TEMP,25;:JOB:STAR"
    )
    with expect_scpi(SPUTTER, [(line, "")]) as d:
        await d.start(job)


async def test_a_job_id_with_a_quote_travels_quoted() -> None:
    job = Job('L"1', "deposit", JOB.params)
    line = START.replace('"J1"', '"L""1"')
    with expect_scpi(SPUTTER, [(line, "")]) as d:
        await d.start(job)


async def test_hardware_missing_rereads_the_setup_so_the_next_job_is_vetted() -> None:
    """Someone took the Cu target out since the status was read: the tool refuses with -241,
    the driver re-reads the setup, and the same job is then refused before sending."""
    steps = [
        (STATUS, status("CU TI")),
        (START, MISSING),
        (STATUS, status("TI")),  # the re-read
        (RESULT, "SETUP,DEPOSIT,0,0"),  # started? no: refused in set-up
    ]
    with expect_scpi(SPUTTER, steps, tool_id="SPUT-1") as d:
        await d.status()
        with pytest.raises(ValueRefused) as e:
            await d.start(JOB)
        assert e.value.code == -241 and "TARGET CU not installed" in str(e.value)
        with pytest.raises(ParameterError, match=r"target CU not set up \(installed: TI\)"):
            await d.start(Job("J2", "deposit", JOB.params))


async def test_hardware_missing_stands_when_the_setup_cannot_be_reread() -> None:
    """The refusal is what the operator must see, not the timeout of a cache refresh."""
    steps = [(START, MISSING), (STATUS, ToolTimeout), (RESULT, "SETUP,DEPOSIT,0,0")]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert e.value.code == -241


async def test_other_refusals_do_not_reread_the_setup() -> None:
    rule = ScpiRefused(-221, "Settings conflict; job J1 has refused parameters: POWER")
    steps = [(START, rule), (RESULT, "SETUP,DEPOSIT,0,0")]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(ValueRefused):
        await d.start(JOB)


async def test_job_progress() -> None:
    with expect_scpi(SPUTTER, [(STATE, "RUNNING,41.7,0"), (STATE, "ALARM,50.0,105")]) as d:
        p = await d.job_progress("J1")
        assert (p.state, p.progress, p.alarm_code) == (JobState.RUNNING, 41.7, 0)
        p = await d.job_progress("J1")
        assert (p.state, p.alarm_code) == (JobState.ALARM, 105)


@pytest.mark.parametrize("reply", ["RUNNING,fast,0", "DONE,100.0,0", "RUNNING,1.0", "A;B"])
async def test_a_garbled_job_state_is_a_typed_error(reply: str) -> None:
    with expect_scpi(SPUTTER, [(STATE, reply)]) as d, pytest.raises(GarbledReply) as e:
        await d.job_progress("J1")
    assert e.value.where == STATE


async def test_result_reads_results_by_name_and_the_alarm() -> None:
    steps = [(RESULT, DONE), (RESULT, "ALARM,DEPOSIT,105,0,THICKNESS,120.5")]
    with expect_scpi(SPUTTER, steps) as d:
        res = await d.result("J1")
        assert res.operation == "deposit" and res.alarm is None
        assert set(res.results) == {r.name for r in SPUTTER.operation("deposit").results}
        res = await d.result("J1")
        assert res.state is JobState.ALARM and res.results == {"thickness": 120.5}
        assert res.alarm is not None and res.alarm.name == "COOLING_WATER"


@pytest.mark.parametrize(
    "reply",
    [
        "COMPLETE,ETCH,0,0",  # an operation the kind does not have
        "COMPLETE,DEPOSIT,0,0,THICKNESS",  # a name without its value
        "COMPLETE,DEPOSIT,0,0,THICKNESS,thick",
        "COMPLETE,DEPOSIT,x",
    ],
)
async def test_a_garbled_result_is_a_typed_error(reply: str) -> None:
    with expect_scpi(SPUTTER, [(RESULT, reply)]) as d, pytest.raises(GarbledReply) as e:
        await d.result("J1")
    assert e.value.where == RESULT


async def test_abort_and_clear_alarms() -> None:
    with expect_scpi(SPUTTER, [("JOB:ABOR", ""), ("TOOL:ALAR:CLE", "")]) as d:
        await d.abort()
        await d.clear_alarms()


async def test_a_command_answered_with_data_is_garbled() -> None:
    with expect_scpi(SPUTTER, [("JOB:ABOR", "1")]) as d, pytest.raises(GarbledReply):
        await d.abort()


async def test_close_sends_nothing() -> None:
    with expect_scpi(SPUTTER, []) as d:
        await d.close()
