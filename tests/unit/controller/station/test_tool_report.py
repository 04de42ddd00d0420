"""The E10 report fed from what a station records (controller/station/tool_report.py), on
SQLite: the monitor's tool_state events and the lots' step runs of a hand-written morning of
a saw, folded into states and checked against times and metrics computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from controller.equipment import E10State, Period, SubState
from controller.events import ToolStateChanged, ToolStateData
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Outbox
from controller.station.tool_report import report, state_changes
from tests.unit.controller.rows import add_lot

DAY = datetime(2026, 12, 7, tzinfo=UTC)


def at(hh_mm: str) -> datetime:
    h, m = hh_mm.split(":")
    return DAY + timedelta(hours=int(h), minutes=int(m))


IDLE = ToolStateData(state="idle", e10="STANDBY", tool_state="IDLE", job_id=None, alarms=[])
ALARM = ToolStateData(state="alarm", e10="UNSCHEDULED_DOWN", tool_state="ALARM", job_id=None,
                      alarms=[404], e116="blocked", blocked="alarm 404")  # fmt: skip
PM = ToolStateData(state="idle", e10="SCHEDULED_DOWN", tool_state="IDLE", job_id=None,
                   alarms=[], e116="blocked", e10_substate="preventive-maintenance",
                   context="flange cleaned")  # fmt: skip

# what the monitor wrote (it polls: it never saw the saw busy, the jobs were between looks)
SAMPLED = [("07:30", IDLE), ("09:45", ALARM), ("10:15", IDLE), ("10:50", ALARM),
           ("11:20", IDLE), ("11:30", PM)]  # fmt: skip
JOBS = [("08:30", "09:30"), ("10:30", "11:00")]  # lots' jobs, intent to commit
PERIOD = Period(at("08:00"), at("12:00"))


def _record(db: Database) -> None:
    def tx(s: Session) -> None:
        add_lot(s, "L1")
        for when, data in SAMPLED:
            ev = ToolStateChanged(tool_id="DICE-1", data=data)
            payload = {**ev.dump(), "station": "st-1"}
            s.add(Outbox(event_id=ev.event_id, type="tool_state", payload=payload,
                         created_at=at(when)))  # fmt: skip
            s.flush()  # ids in time order
        for i, (a, b) in enumerate(JOBS):
            store.add_step_run(
                s, lot_id="L1", step_index=i, step_id="dice", kind="tool", tool_id="DICE-1",
                job_id=f"J-{i}", recipe_id="unit-flow", recipe_hash="x", state="done",
                started_at=at(a), ended_at=at(b),
            )  # fmt: skip

    db.run_sync(tx)


def test_the_monitor_s_states_and_the_jobs_make_one_timeline(db: Database) -> None:
    _record(db)
    timeline = db.run_sync(lambda s: state_changes(s, ["DICE-1"], PERIOD.end))["DICE-1"]
    assert [(c.at, c.state, c.substate, c.reason) for c in timeline] == [
        (at("07:30"), E10State.STANDBY, None, ""),
        (at("08:30"), E10State.PRODUCTIVE, SubState.REGULAR_PRODUCTION, ""),
        (at("09:30"), E10State.STANDBY, None, ""),
        (at("09:45"), E10State.UNSCHEDULED_DOWN, None, "ALARM-404"),
        (at("10:15"), E10State.STANDBY, None, ""),
        (at("10:30"), E10State.PRODUCTIVE, SubState.REGULAR_PRODUCTION, ""),
        (at("10:50"), E10State.UNSCHEDULED_DOWN, None, "ALARM-404"),  # the job is not up
        (at("11:20"), E10State.STANDBY, None, ""),
        (at("11:30"), E10State.SCHEDULED_DOWN, SubState.PREVENTIVE_MAINTENANCE, ""),
    ]
    assert timeline[-1].context == "flange cleaned"


def test_the_report_matches_the_hand_computed_morning(db: Database) -> None:
    _record(db)
    [r] = db.run_sync(lambda s: report(s, PERIOD, ["DICE-1"]))
    assert r.times is not None and r.metrics is not None
    minutes = {s: v / timedelta(minutes=1) for s, v in r.times.by_state.items()}
    # PRD 08:30–09:30 + 10:30–10:50; SBY 08:00–08:30, 09:30–09:45, 10:15–10:30, 11:20–11:30;
    # UDT 09:45–10:15, 10:50–11:20; SDT 11:30–12:00
    assert minutes == {E10State.PRODUCTIVE: 80, E10State.STANDBY: 70, E10State.ENGINEERING: 0,
                       E10State.SCHEDULED_DOWN: 30, E10State.UNSCHEDULED_DOWN: 60,
                       E10State.NON_SCHEDULED: 0}  # fmt: skip
    assert r.times.unrecorded == timedelta(0)
    assert (r.times.failures, r.times.productive_failures, r.times.downs) == (2, 1, 3)
    m = r.metrics
    assert m.operational_uptime == 150 / 240  # availability: (PRD + SBY) / operations time
    assert m.operational_utilization == 80 / 240
    assert m.mtbf_p == timedelta(minutes=80)  # PRD / failures from PRD
    assert m.mttr == timedelta(minutes=30)  # 60 min of repair / 2 failures
    assert m.mtol == timedelta(minutes=30)  # 90 min down / 3 times down
    assert m.mtba_p is None  # no assists


def test_a_tool_with_nothing_recorded_before_the_end_has_no_report(db: Database) -> None:
    _record(db)
    early = Period(at("06:00"), at("07:00"))
    [r] = db.run_sync(lambda s: report(s, early, ["DICE-1"]))
    assert r.times is None and r.metrics is None
    [r] = db.run_sync(lambda s: report(s, Period(at("07:00"), at("08:00")), ["DICE-1"]))
    assert r.times is not None and r.times.unrecorded == timedelta(minutes=30)
    assert r.times.by_state[E10State.STANDBY] == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("start", "end", "minutes", "failures"),
    [
        # down since 09:45 (the alarm before the period is not its failure), idle from 10:15
        ("10:00", "10:20", {E10State.UNSCHEDULED_DOWN: 15, E10State.STANDBY: 5}, 0),
        # a job since 08:30 runs into the period
        ("09:00", "09:40", {E10State.PRODUCTIVE: 30, E10State.STANDBY: 10}, 0),
        ("09:40", "09:50", {E10State.STANDBY: 5, E10State.UNSCHEDULED_DOWN: 5}, 1),
    ],
)
def test_a_period_starts_in_the_state_in_force_at_its_start(
    db: Database, start: str, end: str, minutes: dict[E10State, int], failures: int
) -> None:
    _record(db)
    [r] = db.run_sync(lambda s: report(s, Period(at(start), at(end)), ["DICE-1"]))
    assert r.times is not None and r.times.unrecorded == timedelta(0)
    got = {s: v / timedelta(minutes=1) for s, v in r.times.by_state.items() if v}
    assert (got, r.times.failures) == (minutes, failures)
