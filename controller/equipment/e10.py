"""SEMI E10 equipment states, time in state per tool, and the E10 RAM and utilisation metrics.

E10 ("Specification for Definition and Measurement of Equipment Reliability, Availability and
Maintainability (RAM) and Utilization") divides all of a tool's time into six mutually
exclusive states:

    total time ─┬─ non-scheduled time (NST)
                └─ operations time ─┬─ downtime ─┬─ scheduled downtime (SDT)
                                    │            └─ unscheduled downtime (UDT): the failed state
                                    └─ uptime ───┬─ engineering (ENG)
                                                 └─ manufacturing ─┬─ standby (SBY)
                                                                   └─ productive (PRD)

Each state has its E10 sub-states (`SUBSTATES`); a change records who entered it, a reason
code and the technician's context. The metrics (`metrics`) follow E10's definitions:

- total uptime = uptime / total time; operational uptime (availability) = uptime / operations
  time; equipment-dependent uptime = uptime / (operations time − the downtime that is not the
  equipment's doing: maintenance delay, out-of-spec input, facilities);
- operational utilisation = productive time / operations time; total utilisation =
  productive time / total time;
- MTBF(p) = productive time / failures that occur during productive time; MTBA(p) =
  productive time / assists during productive time ("productive time divided by the number
  of assists during that time", E10-92);
- MTTR = repair time / failures, repair time being the unscheduled downtime of failures less
  maintenance delay, out-of-spec input and facilities time (no repair happens then);
- MTOL (mean time off-line) = downtime (SDT + UDT) / the times the tool went down.

A failure is an interrupt that takes the tool into UDT for repair; an assist is an
interrupt an operator clears without repair (E10: no part replaced other than specified
consumables): both enter UDT, marked by `Interrupt`. Events are counted in the period they
start in; times are clipped to the period.

Sources: SEMI E10 scope (six states, UDT as the failed condition; reliability, availability,
maintainability metric families), the SEMI E10-92 glossary entries for MTBA(p) and the
supplier-/equipment-dependent uptimes, and the state tree as SEMI publishes it (mirrored in
OPC UA Machine Vision, part 1, §11.6).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from drivers.errors import UsageError


class E10Error(UsageError):
    """A state change, period or inhibit that E10 accounting refuses (the message says which):
    bad input, exit 2 / HTTP 400."""


class E10State(StrEnum):
    PRODUCTIVE = "PRD"
    STANDBY = "SBY"
    ENGINEERING = "ENG"
    SCHEDULED_DOWN = "SDT"
    UNSCHEDULED_DOWN = "UDT"
    NON_SCHEDULED = "NST"

    @property
    def is_uptime(self) -> bool:
        return self in (E10State.PRODUCTIVE, E10State.STANDBY, E10State.ENGINEERING)

    @property
    def is_downtime(self) -> bool:
        return self in (E10State.SCHEDULED_DOWN, E10State.UNSCHEDULED_DOWN)


class SubState(StrEnum):
    # productive
    REGULAR_PRODUCTION = "regular-production"
    THIRD_PARTY_WORK = "third-party-work"
    REWORK = "rework"
    ENGINEERING_RUNS = "engineering-runs"
    # standby
    NO_OPERATOR = "no-operator"
    NO_PRODUCT = "no-product"
    NO_SUPPORT_TOOL = "no-support-tool"
    # engineering
    PROCESS_ENGINEERING = "process-engineering"
    EQUIPMENT_ENGINEERING = "equipment-engineering"
    SOFTWARE_ENGINEERING = "software-engineering"
    # scheduled and unscheduled downtime
    MAINTENANCE_DELAY = "maintenance-delay"
    PRODUCTION_TEST = "production-test"
    PREVENTIVE_MAINTENANCE = "preventive-maintenance"
    CONSUMABLES_CHANGE = "consumables-change"
    SETUP = "setup"
    REPAIR = "repair"
    OUT_OF_SPEC_INPUT = "out-of-spec-input"
    FACILITIES = "facilities"
    # non-scheduled
    UNWORKED_SHIFT = "unworked-shift"
    INSTALLATION = "installation"  # installation, modification, rebuild or upgrade
    OFFLINE_TRAINING = "offline-training"
    SHUTDOWN_STARTUP = "shutdown-startup"


S = SubState
SUBSTATES: Mapping[E10State, frozenset[SubState]] = MappingProxyType(
    {
        E10State.PRODUCTIVE: frozenset(
            {S.REGULAR_PRODUCTION, S.THIRD_PARTY_WORK, S.REWORK, S.ENGINEERING_RUNS}
        ),
        E10State.STANDBY: frozenset({S.NO_OPERATOR, S.NO_PRODUCT, S.NO_SUPPORT_TOOL}),
        E10State.ENGINEERING: frozenset(
            {S.PROCESS_ENGINEERING, S.EQUIPMENT_ENGINEERING, S.SOFTWARE_ENGINEERING}
        ),
        E10State.SCHEDULED_DOWN: frozenset(
            {
                S.MAINTENANCE_DELAY,
                S.PRODUCTION_TEST,
                S.PREVENTIVE_MAINTENANCE,
                S.CONSUMABLES_CHANGE,
                S.SETUP,
                S.FACILITIES,
            }
        ),
        E10State.UNSCHEDULED_DOWN: frozenset(
            {S.MAINTENANCE_DELAY, S.REPAIR, S.CONSUMABLES_CHANGE, S.OUT_OF_SPEC_INPUT, S.FACILITIES}
        ),
        E10State.NON_SCHEDULED: frozenset(
            {S.UNWORKED_SHIFT, S.INSTALLATION, S.OFFLINE_TRAINING, S.SHUTDOWN_STARTUP}
        ),
    }
)
# downtime that is not the equipment's doing (E10's equipment-dependent uptime leaves it out)
NOT_EQUIPMENT_DEPENDENT = frozenset({S.MAINTENANCE_DELAY, S.OUT_OF_SPEC_INPUT, S.FACILITIES})


class Interrupt(StrEnum):
    FAILURE = "failure"  # needs a repair
    ASSIST = "assist"  # cleared by an operator, no repair


@dataclass(frozen=True, slots=True)
class StateChange:
    """The tool entered `state` at `at` (timezone-aware). `interrupt` marks an entry into
    UDT as a failure (the default) or an assist; it is refused on other states."""

    tool_id: str
    at: datetime
    state: E10State
    substate: SubState | None = None
    reason: str = ""  # reason code: "ALARM-405", "BLADE-CHANGE", "SPC:N5", ...
    context: str = ""  # what the technician wrote
    by: str = ""  # who entered it ("engine" when automatic)
    interrupt: Interrupt | None = None

    def __post_init__(self) -> None:
        where = f"{self.tool_id} at {self.at.isoformat()}"
        if self.at.tzinfo is None:
            raise E10Error(f"{where}: state change time needs a timezone")
        if self.substate is not None and self.substate not in SUBSTATES[self.state]:
            allowed = ", ".join(sorted(SUBSTATES[self.state]))
            raise E10Error(
                f"{where}: {self.substate} is not a sub-state of {self.state} ({allowed})"
            )
        if self.interrupt is not None and self.state is not E10State.UNSCHEDULED_DOWN:
            raise E10Error(f"{where}: an interrupt ({self.interrupt}) only enters UDT")

    @property
    def interrupt_kind(self) -> Interrupt | None:
        if self.state is not E10State.UNSCHEDULED_DOWN:
            return None
        return self.interrupt or Interrupt.FAILURE


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end), timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise E10Error("a period needs timezone-aware start and end")
        if not self.end > self.start:
            raise E10Error(
                f"period end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )

    @property
    def length(self) -> timedelta:
        return self.end - self.start


ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class StateTimes:
    """One tool's time in each state over a period, and the events that started in it.
    `sum(by_state.values()) + unrecorded == period.length`, exactly."""

    tool_id: str
    period: Period
    by_state: Mapping[E10State, timedelta]  # every state, zero when unused
    by_substate: Mapping[tuple[E10State, SubState | None], timedelta]
    unrecorded: timedelta  # before the tool's first recorded state
    failures: int  # entries into UDT as a failure
    assists: int
    productive_failures: int  # ... from the productive state
    productive_assists: int
    downs: int  # entries into SDT or UDT from any other state
    repair_time: timedelta  # UDT time of failures, less non-repair sub-states


def time_in_states(changes: Sequence[StateChange], period: Period) -> StateTimes:
    """Clip one tool's time-ordered state changes to the period and add them up."""
    if not changes:
        raise E10Error("no state changes to account")
    tool = changes[0].tool_id
    for a, b in itertools.pairwise(changes):
        if b.tool_id != tool:
            raise E10Error(f"state changes of {tool} and {b.tool_id} mixed in one timeline")
        if b.at < a.at:
            raise E10Error(
                f"{tool}: state changes out of order ({b.at.isoformat()} after {a.at.isoformat()})"
            )
    by_state = dict.fromkeys(E10State, ZERO)
    by_sub: dict[tuple[E10State, SubState | None], timedelta] = {}
    failures = assists = p_failures = p_assists = downs = 0
    repair = ZERO
    episode: Interrupt | None = None  # the interrupt of the UDT episode we are in
    start, end = period.start, period.end
    for i, c in enumerate(changes):
        prev = changes[i - 1].state if i > 0 else None
        if c.state is E10State.UNSCHEDULED_DOWN and prev is not E10State.UNSCHEDULED_DOWN:
            episode = c.interrupt_kind
            if start <= c.at < end:
                failures += episode is Interrupt.FAILURE
                assists += episode is Interrupt.ASSIST
                p_failures += episode is Interrupt.FAILURE and prev is E10State.PRODUCTIVE
                p_assists += episode is Interrupt.ASSIST and prev is E10State.PRODUCTIVE
        elif c.state is not E10State.UNSCHEDULED_DOWN:
            episode = None
        if c.state.is_downtime and (prev is None or not prev.is_downtime) and start <= c.at < end:
            downs += 1
        seg_end = changes[i + 1].at if i + 1 < len(changes) else end
        lo, hi = max(c.at, start), min(seg_end, end)
        if hi <= lo:
            continue
        span = hi - lo
        by_state[c.state] += span
        key = (c.state, c.substate)
        by_sub[key] = by_sub.get(key, ZERO) + span
        if episode is Interrupt.FAILURE and c.substate not in NOT_EQUIPMENT_DEPENDENT:
            repair += span
    unrecorded = min(max(changes[0].at, start), end) - start
    return StateTimes(
        tool,
        period,
        MappingProxyType(by_state),
        MappingProxyType(by_sub),
        unrecorded,
        failures,
        assists,
        p_failures,
        p_assists,
        downs,
        repair,
    )


@dataclass(frozen=True, slots=True)
class E10Metrics:
    """E10 metrics of one tool over a period. Ratios are fractions (0–1); a metric whose
    denominator is zero (no failures, no operations time) is None."""

    tool_id: str
    period: Period
    total_time: timedelta  # recorded time in the period
    operations_time: timedelta
    uptime: timedelta
    downtime: timedelta
    productive_time: timedelta
    total_uptime: float | None
    operational_uptime: float | None  # availability
    equipment_dependent_uptime: float | None
    operational_utilization: float | None
    total_utilization: float | None
    mtbf_p: timedelta | None
    mtba_p: timedelta | None
    mttr: timedelta | None
    mtol: timedelta | None
    failures: int
    assists: int


def _ratio(a: timedelta, b: timedelta) -> float | None:
    return a / b if b > ZERO else None


def _mean(total: timedelta, n: int) -> timedelta | None:
    return total / n if n > 0 else None


def metrics(t: StateTimes) -> E10Metrics:
    s = t.by_state
    total = t.period.length - t.unrecorded
    ops = total - s[E10State.NON_SCHEDULED]
    up = s[E10State.PRODUCTIVE] + s[E10State.STANDBY] + s[E10State.ENGINEERING]
    down = s[E10State.SCHEDULED_DOWN] + s[E10State.UNSCHEDULED_DOWN]
    prd = s[E10State.PRODUCTIVE]
    not_equipment = sum(
        (v for (state, sub), v in t.by_substate.items()
         if state.is_downtime and sub in NOT_EQUIPMENT_DEPENDENT),
        ZERO,
    )  # fmt: skip
    return E10Metrics(
        tool_id=t.tool_id,
        period=t.period,
        total_time=total,
        operations_time=ops,
        uptime=up,
        downtime=down,
        productive_time=prd,
        total_uptime=_ratio(up, total),
        operational_uptime=_ratio(up, ops),
        equipment_dependent_uptime=_ratio(up, ops - not_equipment),
        operational_utilization=_ratio(prd, ops),
        total_utilization=_ratio(prd, total),
        mtbf_p=_mean(prd, t.productive_failures),
        mtba_p=_mean(prd, t.productive_assists),
        mttr=_mean(t.repair_time, t.failures),
        mtol=_mean(down, t.downs),
        failures=t.failures,
        assists=t.assists,
    )
