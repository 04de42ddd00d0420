"""The policy of the driver surface (drivers/base.py), on a sputter with a transcript link.

Lost-reply recovery in `start`, the link budget and timeout in `wait`, and validation before
anything is sent, each against the exact SCPI lines a sputter would see; no socket, and time
passes only on the transcript's clock.
"""

from __future__ import annotations

import pytest

from drivers.base import Job
from drivers.errors import (
    GarbledReply,
    JobAborted,
    JobNotFound,
    ParameterError,
    ToolAlarm,
    ToolBusy,
    ToolOffline,
    ToolTimeout,
    UnitError,
    ValueRefused,
)
from drivers.interface import JobState
from drivers.interfaces.sputter import SPUTTER
from drivers.testing import ScpiRefused, expect_scpi
from tests.unit.drivers.scpi_sputter import DONE, IDLE, JOB, RESULT, START, STATE, STATUS, status

LINK_ERRORS = [ToolTimeout, ToolOffline, GarbledReply]
DUPLICATE = ScpiRefused(-221, "Settings conflict; job J1 already exists (RUNNING)")
BUSY = ScpiRefused(-213, "Init ignored; busy with job J1")


# -- start: nothing is sent for a bad job ------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "error", "words"),
    [
        (Job("", "deposit", JOB.params), ParameterError, ["job id ''", "1–32 ASCII"]),
        (Job("J" * 33, "deposit", JOB.params), ParameterError, ["1–32 ASCII"]),
        (Job("Jé", "deposit", JOB.params), ParameterError, ["'Jé'"]),
        (Job("J1", "etch", {}), ParameterError, ["no operation 'etch'", "deposit, seed_stack"]),
        (Job("J1", "deposit", {**JOB.params, "power": "25 kW"}), ParameterError, ["1–20 kW"]),
        (Job("J1", "deposit", {**JOB.params, "power": "5"}), UnitError, ["missing unit"]),
        (Job("J1", "deposit", {"target": "CU", "power": "5 kW"}), ParameterError, ["thickness"]),
    ],
)
async def test_a_bad_job_is_refused_before_anything_is_sent(
    job: Job, error: type[Exception], words: list[str]
) -> None:
    with expect_scpi(SPUTTER, [], tool_id="SPUT-1") as d, pytest.raises(error) as e:
        await d.start(job)
    assert str(e.value).startswith("SPUT-1")
    for w in words:
        assert w in str(e.value)


async def test_the_setup_seen_in_status_vets_jobs_before_sending() -> None:
    with expect_scpi(SPUTTER, [(STATUS, status("TI TIW"))], tool_id="SPUT-1") as d:
        assert d.setup_problem("deposit", {"target": "CU"}) is None  # not known yet
        await d.status()
        with pytest.raises(ParameterError, match=r"target CU not set up \(installed: TI TIW\)"):
            await d.start(JOB)
        assert "installed: TI TIW" in (d.setup_problem("deposit", {"target": "CU"}) or "")
        assert d.setup_problem("deposit", {"target": "TI"}) is None


async def test_start_sends_the_job_once() -> None:
    with expect_scpi(SPUTTER, [(START, "")]) as d:
        await d.start(JOB)


# -- start: a lost reply is checked with the tool, never resent blindly -----------------------


@pytest.mark.parametrize("lost", LINK_ERRORS)
@pytest.mark.parametrize("state", ["RUNNING,DEPOSIT,0,0", DONE, "ALARM,DEPOSIT,105,0"])
async def test_a_start_whose_reply_is_lost_but_that_ran_counts_as_started(
    lost: type[Exception], state: str
) -> None:
    with expect_scpi(SPUTTER, [(START, lost), (RESULT, state)]) as d:
        await d.start(JOB)


@pytest.mark.parametrize("lost", LINK_ERRORS)
@pytest.mark.parametrize("state", ["UNKNOWN,NONE,0", "SETUP,DEPOSIT,0,0"])
async def test_a_start_whose_reply_is_lost_and_that_did_not_run_raises_the_link_error(
    lost: type[Exception], state: str
) -> None:
    """SETUP: the job was opened but never started, so it is not running."""
    with expect_scpi(SPUTTER, [(START, lost), (RESULT, state)]) as d, pytest.raises(lost):
        await d.start(JOB)


async def test_a_lost_reply_for_an_id_another_operation_holds_is_not_our_job() -> None:
    other = "COMPLETE,SEED_STACK,0,0,BARRIER_MEASURED,101"
    steps = [(START, ToolTimeout), (RESULT, other)]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(ToolTimeout):
        await d.start(JOB)


async def test_a_lost_reply_whose_check_fails_too_raises_without_resending() -> None:
    steps = [(START, ToolTimeout), (RESULT, ToolOffline)]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(ToolOffline):
        await d.start(JOB)


@pytest.mark.parametrize("refusal", [DUPLICATE, BUSY])
@pytest.mark.parametrize("state", ["RUNNING,DEPOSIT,0,0", DONE])
async def test_a_resend_refused_as_duplicate_or_busy_with_our_job_counts_as_started(
    refusal: ScpiRefused, state: str
) -> None:
    """The first send started the job but its reply was lost; the engine sends it again."""
    with expect_scpi(SPUTTER, [(START, refusal), (RESULT, state)]) as d:
        await d.start(JOB)


async def test_a_duplicate_id_of_another_operation_is_refused_not_attached() -> None:
    """Never take another job's results for ours (a `--job-id` typed twice)."""
    taken = ScpiRefused(-221, "Settings conflict; job J1 already exists (COMPLETE)")
    other = "COMPLETE,SEED_STACK,0,0,BARRIER_MEASURED,101"
    steps = [(START, taken), (RESULT, other)]
    with expect_scpi(SPUTTER, steps, tool_id="SPUT-1") as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert e.value.code == -221 and "already exists" in str(e.value)


async def test_busy_with_another_job_is_refused() -> None:
    busy = ScpiRefused(-213, "Init ignored; busy with job OTHER")
    steps = [(START, busy), (RESULT, "UNKNOWN,NONE,0")]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(ToolBusy) as e:
        await d.start(JOB)
    assert e.value.code == -213


async def test_a_refusal_stands_when_the_check_fails() -> None:
    steps = [(START, DUPLICATE), (RESULT, ToolTimeout)]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert e.value.code == -221


async def test_a_refused_value_is_raised_with_the_tools_code_and_text() -> None:
    out = ScpiRefused(-222, "Data out of range; POWER 5 out of range 6-20 kW")
    steps = [(START, out), (RESULT, "UNKNOWN,NONE,0")]
    with expect_scpi(SPUTTER, steps, tool_id="SPUT-1") as d, pytest.raises(ValueRefused) as e:
        await d.start(JOB)
    assert e.value.code == -222 and not isinstance(e.value, ToolBusy)
    assert str(e.value) == f"SPUT-1 [{START}]: refused: -222 {out.text}"


# -- wait ----------------------------------------------------------------------------------


async def test_wait_polls_to_the_end_and_reports_each_change_of_progress() -> None:
    steps = [
        (STATE, "RUNNING,10.0,0"),
        (STATE, "RUNNING,10.0,0"),
        (STATE, "RUNNING,60.0,0"),
        (STATE, "COMPLETE,100.0,0"),
        (RESULT, DONE),
    ]
    seen: list[tuple[float, JobState]] = []
    with expect_scpi(SPUTTER, steps) as d:
        res = await d.wait("J1", on_progress=lambda p, s: seen.append((p, s)))
    assert seen == [(10, JobState.RUNNING), (60, JobState.RUNNING), (100, JobState.COMPLETE)]
    assert (res.job_id, res.operation, res.state) == ("J1", "deposit", JobState.COMPLETE)
    assert res.results["thickness"] == 297.784493 and res.results["arc_count"] == 0


async def test_wait_rides_out_a_broken_link_within_its_budget() -> None:
    """Each scripted timeout takes the 1 s timeout; 2 s of silence at a time stays within the
    2.5 s budget, though 4 s are lost in all: the budget restarts at each good poll."""
    steps = [
        (STATE, "RUNNING,10.0,0"),
        (STATE, ToolTimeout),
        (STATE, ToolTimeout),
        (STATE, "RUNNING,50.0,0"),
        (STATE, ToolTimeout),
        (STATE, GarbledReply),
        (STATE, ToolTimeout),
        (STATE, "COMPLETE,100.0,0"),
        (RESULT, DONE),
    ]
    with expect_scpi(SPUTTER, steps, timeout=1.0, link_budget=2.5) as d:
        assert (await d.wait("J1")).state is JobState.COMPLETE
        assert d.link.clock.now == 4.0


@pytest.mark.parametrize("lost", LINK_ERRORS)
async def test_wait_gives_up_once_the_link_budget_is_spent(lost: type[Exception]) -> None:
    steps = [(STATE, "RUNNING,10.0,0"), (STATE, lost, 1.0), (STATE, lost, 1.0), (STATE, lost, 1.0)]
    with expect_scpi(SPUTTER, steps, link_budget=2.5) as d, pytest.raises(lost):
        await d.wait("J1")


async def test_a_lost_result_reply_is_fetched_again_within_the_budget() -> None:
    steps = [
        (STATE, "COMPLETE,100.0,0"),
        (RESULT, GarbledReply),
        (STATE, "COMPLETE,100.0,0"),
        (RESULT, DONE),
    ]
    with expect_scpi(SPUTTER, steps) as d:
        assert (await d.wait("J1")).results["thickness"] == 297.784493


async def test_a_lost_result_reply_past_the_budget_raises() -> None:
    steps = [(STATE, "COMPLETE,100.0,0"), (RESULT, ToolTimeout)]
    with expect_scpi(SPUTTER, steps, timeout=1.0, link_budget=0.5) as d, pytest.raises(ToolTimeout):
        await d.wait("J1")


async def test_wait_times_out_on_a_job_that_keeps_running() -> None:
    steps = [(STATE, "RUNNING,10.0,0", 2.0)] * 3  # each poll takes 2 s
    with (
        expect_scpi(SPUTTER, steps, tool_id="SPUT-1") as d,
        pytest.raises(ToolTimeout, match="job J1 still running after 5 s"),
    ):
        await d.wait("J1", timeout=5)


async def test_a_job_the_tool_does_not_know_is_not_found_at_once() -> None:
    steps = [(STATE, "UNKNOWN,0.0,0")]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(JobNotFound, match="no record of job J1"):
        await d.wait("J1")


async def test_an_alarm_ends_the_wait_with_the_tools_alarm() -> None:
    steps = [(STATE, "ALARM,42.0,105"), (RESULT, "ALARM,DEPOSIT,105,0")]
    with expect_scpi(SPUTTER, steps, tool_id="SPUT-1") as d, pytest.raises(ToolAlarm) as e:
        await d.wait("J1")
    assert (e.value.code, e.value.job_id) == (105, "J1")
    assert str(e.value) == "SPUT-1: alarm 105 cooling water flow low during job J1"


async def test_an_aborted_job_ends_the_wait() -> None:
    steps = [(STATE, "ABORTED,42.0,0"), (RESULT, "ABORTED,DEPOSIT,0,0")]
    with expect_scpi(SPUTTER, steps) as d, pytest.raises(JobAborted, match="J1 was aborted"):
        await d.wait("J1")


async def test_run_is_start_then_wait() -> None:
    steps = [(START, ""), (STATE, "COMPLETE,100.0,0"), (RESULT, DONE)]
    with expect_scpi(SPUTTER, steps) as d:
        assert (await d.run(JOB)).state is JobState.COMPLETE


# -- result, consumables, connect ----------------------------------------------------------


async def test_result_of_a_job_the_tool_never_saw_is_not_found() -> None:
    with expect_scpi(SPUTTER, [(RESULT, "UNKNOWN,NONE,0")]) as d, pytest.raises(JobNotFound):
        await d.result("J1")


async def test_replace_consumable_by_name() -> None:
    with expect_scpi(SPUTTER, [("TOOL:CONS:REPL TARGET_CU", "")], tool_id="SPUT-1") as d:
        with pytest.raises(ParameterError, match=r"no consumable 'target_xx' \(consumables: tar"):
            await d.replace_consumable("target_xx")  # refused before sending
        await d.replace_consumable("target_cu")


async def test_connect_identifies_then_caches_the_setup() -> None:
    steps = [("*IDN?", "FABLINE-SIM,MAGNA-300,SN-SPUT-1,1.0.0"), (STATUS, IDLE)]
    with expect_scpi(SPUTTER, steps) as d:
        ident = await d.connect()
        assert (ident.model, ident.serial) == ("MAGNA-300", "SN-SPUT-1")
        assert d.identity == ident
        assert d.setup_problem("deposit", {"target": "AU"}) is not None
