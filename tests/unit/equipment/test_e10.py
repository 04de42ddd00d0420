"""E10 time in state and metrics against a hand-computed day of a dicing saw; time in state
always adds up to the period; refusals name the tool and the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.equipment import (
    SUBSTATES,
    E10Error,
    E10State,
    Interrupt,
    Period,
    StateChange,
    SubState,
    metrics,
    time_in_states,
)

DAY = datetime(2026, 11, 2, tzinfo=UTC)
H = timedelta(hours=1)
P, SB, EN, SD, UD, NS = (
    E10State.PRODUCTIVE,
    E10State.STANDBY,
    E10State.ENGINEERING,
    E10State.SCHEDULED_DOWN,
    E10State.UNSCHEDULED_DOWN,
    E10State.NON_SCHEDULED,
)


def at(hours: float) -> datetime:
    return DAY + hours * H


def change(hours: float, state: E10State, sub: SubState | None = None, **kw: object) -> StateChange:
    return StateChange("DICE-1", at(hours), state, sub, **kw)  # type: ignore[arg-type]


# One day of DICE-1, by hand:
#   00:00–06:00 NST unworked shift      6 h
#   06:00–07:00 SBY no product          1 h
#   07:00–10:00 PRD                     3 h
#   10:00–10:30 UDT failure (alarm 405), waiting for a technician: maintenance delay 0.5 h
#   10:30–11:30 UDT repair (blade)      1 h
#   11:30–12:00 ENG qualification cut   0.5 h
#   12:00–16:00 PRD                     4 h
#   16:00–16:15 UDT assist (operator clears a jam) 0.25 h
#   16:15–18:00 PRD                     1.75 h
#   18:00–20:00 SDT preventive maint.   2 h
#   20:00–22:00 PRD                     2 h
#   22:00–24:00 SBY                     2 h
DAY_CHANGES = [
    change(0, NS, SubState.UNWORKED_SHIFT, by="planner"),
    change(6, SB, SubState.NO_PRODUCT, by="engine"),
    change(7, P, SubState.REGULAR_PRODUCTION, by="engine"),
    change(10, UD, SubState.MAINTENANCE_DELAY, reason="ALARM-405", by="engine"),
    change(10.5, UD, SubState.REPAIR, reason="BLADE-CHANGE", context="new HUB_50", by="tech-ana"),
    change(11.5, EN, SubState.EQUIPMENT_ENGINEERING, reason="QUAL-CUT", by="tech-ana"),
    change(12, P, SubState.REGULAR_PRODUCTION, by="engine"),
    change(16, UD, reason="JAM", interrupt=Interrupt.ASSIST, by="op-li"),
    change(16.25, P, by="engine"),
    change(18, SD, SubState.PREVENTIVE_MAINTENANCE, reason="PM-WEEKLY", by="tech-ana"),
    change(20, P, by="engine"),
    change(22, SB, SubState.NO_PRODUCT, by="engine"),
]


def test_a_day_by_hand() -> None:
    t = time_in_states(DAY_CHANGES, Period(at(0), at(24)))
    assert dict(t.by_state) == {
        NS: 6 * H,
        SB: 3 * H,
        P: 10.75 * H,
        UD: 1.75 * H,
        EN: 0.5 * H,
        SD: 2 * H,
    }
    assert t.by_substate[(UD, SubState.REPAIR)] == H
    assert t.by_substate[(UD, SubState.MAINTENANCE_DELAY)] == 0.5 * H
    assert (t.failures, t.assists, t.productive_failures, t.productive_assists) == (1, 1, 1, 1)
    assert t.downs == 3 and t.repair_time == H and t.unrecorded == timedelta(0)

    m = metrics(t)
    assert m.total_time == 24 * H and m.operations_time == 18 * H
    assert m.uptime == 14.25 * H and m.downtime == 3.75 * H
    assert m.total_uptime == pytest.approx(14.25 / 24)
    assert m.operational_uptime == pytest.approx(14.25 / 18)  # availability
    assert m.equipment_dependent_uptime == pytest.approx(14.25 / 17.5)  # less the 0.5 h delay
    assert m.operational_utilization == pytest.approx(10.75 / 18)
    assert m.total_utilization == pytest.approx(10.75 / 24)
    assert m.mtbf_p == 10.75 * H and m.mtba_p == 10.75 * H
    assert m.mttr == H  # the repair, not the wait for the technician
    assert m.mtol == 1.25 * H  # 3.75 h down over 3 downs


def test_a_period_clips_the_timeline_and_counts_what_starts_in_it() -> None:
    t = time_in_states(DAY_CHANGES, Period(at(9), at(12)))
    assert dict(t.by_state) == {NS: 0 * H, SB: 0 * H, P: H, UD: 1.5 * H, EN: 0.5 * H, SD: 0 * H}
    assert (t.failures, t.assists, t.downs) == (1, 0, 1)
    later = time_in_states(DAY_CHANGES, Period(at(10.75), at(17)))
    assert later.failures == 0 and later.assists == 1  # the failure started before the period
    assert later.repair_time == 0.75 * H  # ... but its repair time in the period still counts
    m = metrics(later)
    assert m.mttr is None and m.mtbf_p is None and m.mtba_p == later.by_state[P]


def test_time_before_the_first_record_is_unrecorded() -> None:
    t = time_in_states(DAY_CHANGES[6:], Period(at(0), at(13)))  # first record at 12:00
    assert t.unrecorded == 12 * H and t.by_state[P] == H
    assert metrics(t).total_time == H
    none = time_in_states(DAY_CHANGES[6:], Period(at(0), at(1)))
    assert none.unrecorded == H and metrics(none).total_uptime is None


def test_a_change_into_udt_is_a_failure_unless_marked_an_assist() -> None:
    assert change(1, UD).interrupt_kind is Interrupt.FAILURE
    assert change(1, UD, interrupt=Interrupt.ASSIST).interrupt_kind is Interrupt.ASSIST
    assert change(1, P).interrupt_kind is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: StateChange("DICE-1", datetime(2026, 1, 1), P),
            "DICE-1 at 2026-01-01T00:00:00: state change time needs a timezone",
        ),
        (lambda: change(1, P, SubState.REPAIR), "repair is not a sub-state of PRD"),
        (
            lambda: change(1, P, interrupt=Interrupt.FAILURE),
            "an interrupt \\(failure\\) only enters UDT",
        ),
        (lambda: Period(at(2), at(2)), "is not after its start"),
        (lambda: Period(datetime(2026, 1, 1), at(2)), "timezone-aware"),
        (
            lambda: time_in_states([change(2, P), change(1, SB)], Period(at(0), at(3))),
            "DICE-1: state changes out of order",
        ),
        (
            lambda: time_in_states(
                [change(1, P), StateChange("BOND-1", at(2), P)], Period(at(0), at(3))
            ),
            "DICE-1 and BOND-1 mixed",
        ),
        (lambda: time_in_states([], Period(at(0), at(3))), "no state changes"),
    ],
)
def test_refusals(make: object, message: str) -> None:
    with pytest.raises(E10Error, match=message):
        make()  # type: ignore[operator]


substates = {s: [None, *sorted(subs)] for s, subs in SUBSTATES.items()}


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[StateChange], Period]:
    n = draw(st.integers(1, 30))
    offsets = sorted(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)))
    changes = []
    for off in offsets:
        state = draw(st.sampled_from(list(E10State)))
        sub = draw(st.sampled_from(substates[state]))
        kind = draw(st.sampled_from([None, Interrupt.ASSIST])) if state is UD else None
        changes.append(
            StateChange("T", DAY + timedelta(microseconds=off * 997), state, sub, interrupt=kind)
        )
    a, b = sorted(
        draw(st.lists(st.integers(-(10**8), 11 * 10**8), min_size=2, max_size=2, unique=True))
    )
    return changes, Period(
        DAY + timedelta(microseconds=a * 997), DAY + timedelta(microseconds=b * 997)
    )


@given(timelines())
def test_time_in_states_always_adds_up_to_the_period(tl: tuple[list[StateChange], Period]) -> None:
    changes, period = tl
    t = time_in_states(changes, period)
    assert sum(t.by_state.values(), timedelta(0)) + t.unrecorded == period.length
    assert sum(t.by_substate.values(), timedelta(0)) == sum(t.by_state.values(), timedelta(0))
    assert all(v >= timedelta(0) for v in t.by_state.values())
    m = metrics(t)
    assert m.uptime + m.downtime + t.by_state[NS] == m.total_time
    for ratio in (
        m.total_uptime,
        m.operational_uptime,
        m.operational_utilization,
        m.total_utilization,
    ):
        assert ratio is None or 0.0 <= ratio <= 1.0 + 1e-12
    assert t.repair_time <= t.by_state[UD]


@given(timelines(), st.integers(1, 10**9))
def test_splitting_a_period_splits_its_times(
    tl: tuple[list[StateChange], Period], cut: int
) -> None:
    changes, period = tl
    mid = period.start + (period.length * (cut % 1000 + 1)) / 1002
    if not period.start < mid < period.end:
        return
    whole = time_in_states(changes, period)
    left = time_in_states(changes, Period(period.start, mid))
    right = time_in_states(changes, Period(mid, period.end))
    for s in E10State:
        assert left.by_state[s] + right.by_state[s] == whole.by_state[s]
    assert left.failures + right.failures == whole.failures
    assert left.downs + right.downs == whole.downs
