"""E10 time in state and metrics per tool over a period, from what the station recorded:
every change of a tool's state the tool monitor saw is a `tool_state` event in the outbox
(controller/station/tool_monitor.py), with its E10 state, the sub-state and note a
technician entered, and its alarms; and every lot's job is a step run, from its intent to
its commit. controller/equipment/e10.py adds them up.

The monitor samples (once a second by default), so a short job between two looks would be
lost: a tool the monitor saw up (standby or productive) is productive exactly while it holds
a lot's job. A tool's own down states (an alarm, unreachable, idle while inhibited) are
unscheduled down as a failure, with the reason `ALARM-<code>`, `OFFLINE`, `SPC` or `INHIBIT`;
a technician's entry carries its sub-state and note. Before the first state recorded for a
tool its time is unrecorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.equipment import (
    E10Metrics,
    E10State,
    Period,
    StateChange,
    StateTimes,
    SubState,
    metrics,
    time_in_states,
)
from controller.events import ToolStateData
from controller.genealogy.models import Outbox, StepRun

_TOOL = col(Outbox.payload)["tool_id"].as_string()


@dataclass(frozen=True)
class ToolReport:
    tool_id: str
    times: StateTimes | None  # None: no state recorded before the period's end
    metrics: E10Metrics | None


class SubstateTime(BaseModel):
    state: str
    substate: str | None
    seconds: float


class E10ReportView(BaseModel):
    """One tool's E10 report as the API and `tools report --json` give it: seconds per
    state, ratios as fractions, means in seconds (None: no denominator, or nothing
    recorded)."""

    tool: str
    recorded: bool
    start: datetime
    end: datetime
    seconds: dict[str, float] = Field(default_factory=dict)  # PRD, SBY, ENG, SDT, UDT, NST
    unrecorded_s: float | None = None
    substates: list[SubstateTime] = Field(default_factory=list)
    failures: int = 0
    assists: int = 0
    downs: int = 0
    total_uptime: float | None = None
    availability: float | None = None  # operational uptime
    equipment_dependent_uptime: float | None = None
    operational_utilization: float | None = None
    total_utilization: float | None = None
    mtbf_p_s: float | None = None
    mtba_p_s: float | None = None
    mttr_s: float | None = None
    mtol_s: float | None = None

    @classmethod
    def of(cls, r: ToolReport, period: Period) -> E10ReportView:
        if r.times is None or r.metrics is None:
            return cls(tool=r.tool_id, recorded=False, start=period.start, end=period.end)
        t, m = r.times, r.metrics

        def sec(d: timedelta | None) -> float | None:
            return None if d is None else d.total_seconds()

        return cls(
            tool=r.tool_id, recorded=True, start=period.start, end=period.end,
            seconds={s.value: v.total_seconds() for s, v in t.by_state.items()},
            unrecorded_s=t.unrecorded.total_seconds(),
            substates=[SubstateTime(state=s.value, substate=sub.value if sub else None,
                                    seconds=v.total_seconds())
                       for (s, sub), v in t.by_substate.items()],
            failures=t.failures, assists=t.assists, downs=t.downs,
            total_uptime=m.total_uptime, availability=m.operational_uptime,
            equipment_dependent_uptime=m.equipment_dependent_uptime,
            operational_utilization=m.operational_utilization,
            total_utilization=m.total_utilization, mtbf_p_s=sec(m.mtbf_p),
            mtba_p_s=sec(m.mtba_p), mttr_s=sec(m.mttr), mtol_s=sec(m.mtol),
        )  # fmt: skip


def aware(at: datetime) -> datetime:
    """SQLite returns the stored UTC times without their zone."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def state_change(tool_id: str, at: datetime, data: ToolStateData) -> StateChange:
    state = E10State[data.e10]
    sub: SubState | None = None
    if data.e10_substate:
        with contextlib.suppress(ValueError):
            sub = SubState(data.e10_substate)
    reason = ""
    if data.state == "offline":
        reason = "OFFLINE"
    elif data.alarms:
        reason = f"ALARM-{data.alarms[0]}"
    elif (data.blocked or "").startswith("inhibited: SPC "):
        reason = "SPC"
    elif (data.blocked or "").startswith("inhibited: "):
        reason = "INHIBIT"
    return StateChange(tool_id, at, state, sub, reason, data.context or "")


def _sampled(
    s: Session, tools: set[str] | None, since: datetime | None, until: datetime
) -> dict[str, list[StateChange]]:
    """Each tool's E10 states as the monitor saw them from the one in force at `since` (all,
    without it) to `until`, in order."""
    states = col(Outbox.type) == "tool_state"
    wanted = [_TOOL.in_(sorted(tools))] if tools is not None else []
    rows = and_(states, col(Outbox.created_at) < until, *wanted)
    if since is not None:  # the state in force at `since`: each tool's last before it
        before = (
            select(func.max(col(Outbox.id)))
            .where(states, col(Outbox.created_at) < since, *wanted)
            .group_by(_TOOL)
        )
        rows = or_(col(Outbox.id).in_(before), and_(rows, col(Outbox.created_at) >= since))
    q = select(col(Outbox.payload), col(Outbox.created_at)).where(rows)
    out: dict[str, list[StateChange]] = {}
    for payload, created in s.execute(q.order_by(col(Outbox.id))):
        tool = payload.get("tool_id")
        try:
            data = ToolStateData.model_validate(payload["data"])
        except (KeyError, ValueError):
            continue
        timeline = out.setdefault(tool, [])
        at = aware(created)
        if timeline:
            at = max(at, timeline[-1].at)  # two processes' clocks: never backwards
        timeline.append(state_change(tool, at, data))
    return out


def _jobs(
    s: Session, tools: set[str] | None, since: datetime | None, until: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Each tool's lot jobs that overlap [since, until), from intent to commit (a job still
    open: to `until`)."""
    q = select(col(StepRun.tool_id), col(StepRun.started_at), col(StepRun.ended_at)).where(
        col(StepRun.kind) == "tool", col(StepRun.started_at) < until
    )
    if since is not None:
        q = q.where(or_(col(StepRun.ended_at).is_(None), col(StepRun.ended_at) > since))
    if tools is not None:
        q = q.where(col(StepRun.tool_id).in_(sorted(tools)))
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for tool, began, ended in s.execute(q):
        if tool is None:
            continue
        end = min(aware(ended), until) if ended is not None else until
        out.setdefault(tool, []).append((aware(began), max(end, aware(began))))
    return out


_UP = (E10State.STANDBY, E10State.PRODUCTIVE)


def _merge(
    tool: str, sampled: list[StateChange], jobs: list[tuple[datetime, datetime]]
) -> list[StateChange]:
    """The monitor's states with the tool productive while it holds a lot's job."""
    marks: list[tuple[datetime, int, StateChange | None]] = [(c.at, 0, c) for c in sampled]
    marks += [(a, 1, None) for a, _ in jobs] + [(b, -1, None) for _, b in jobs]
    marks.sort(key=lambda m: (m[0], m[1]))
    out: list[StateChange] = []
    seen: StateChange | None = None
    active = 0
    i = 0
    while i < len(marks):
        at = marks[i][0]
        while i < len(marks) and marks[i][0] == at:  # everything at one instant first
            _, delta, change = marks[i]
            active += delta
            seen = change if change is not None else seen
            i += 1
        now: StateChange | None
        if active > 0 and (seen is None or seen.state in _UP):
            now = StateChange(tool, at, E10State.PRODUCTIVE, SubState.REGULAR_PRODUCTION)
        elif seen is not None:
            now = StateChange(tool, at, seen.state, seen.substate, seen.reason, seen.context)
        else:
            continue
        last = out[-1] if out else None
        if last is None or (last.state, last.substate, last.reason) != (
            now.state, now.substate, now.reason,
        ):  # fmt: skip
            out.append(now)
    return out


def state_changes(
    s: Session, tools: Iterable[str] | None, until: datetime, since: datetime | None = None
) -> dict[str, list[StateChange]]:
    """Each tool's E10 states up to `until` (from the one in force at `since`, if given), in
    order, one change per new state (a new job on a busy tool, a new alarm on a tool already
    down, is the same state)."""
    wanted = set(tools) if tools is not None else None
    sampled = _sampled(s, wanted, since, until)
    jobs = _jobs(s, wanted, since, until)
    return {
        t: _merge(t, sampled.get(t, []), jobs.get(t, [])) for t in sorted(set(sampled) | set(jobs))
    }


def report(s: Session, period: Period, tools: Sequence[str] | None = None) -> list[ToolReport]:
    """E10 time in state and metrics of each tool (the named ones, else every tool with a
    recorded state) over the period."""
    changes = state_changes(s, tools, period.end, period.start)
    out = []
    for tool in tools if tools is not None else sorted(changes):
        timeline = changes.get(tool)
        if not timeline:
            out.append(ToolReport(tool, None, None))
            continue
        times = time_in_states(timeline, period)
        out.append(ToolReport(tool, times, metrics(times)))
    return out
