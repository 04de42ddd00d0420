"""Queue-time limits at run time: which limits have run out when a step is about to start.

A limit (docs/recipes.md `queue_times`) runs from the end of its `from` step — or of its
rework step, if that ran since — to the start of the step it ends at. At that step an expired
limit holds the lot; at a rework step, an expired limit routes the lot through it (otherwise
the rework step is skipped). A limit the lot was already held for, and released from by an
engineer, is waived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.recipes.expand import PlannedStep, QueueLimit
from controller.recipes.history import History
from drivers.units import format_quantity


@dataclass(frozen=True)
class Expired:
    limit: QueueLimit
    waited_s: float
    since: str  # the step the clock started at

    def describe(self) -> str:
        return (
            f"queue time {_duration(self.waited_s)} since {self.since} exceeds"
            f" {_duration(self.limit.max_s)} before {self.limit.to_id} ({self.limit.reason})"
        )

    def data(self, action: str) -> dict[str, Any]:
        """The qtime_expired event's data."""
        return {
            "step_index": self.limit.to_index,
            "from_index": self.limit.from_index,
            "from_step": self.since,
            "limit_s": self.limit.max_s,
            "waited_s": round(self.waited_s, 3),
            "action": action,
            "rework_step": self.limit.rework_id,
            "reason": self.limit.reason,
        }


def _clock(limit: QueueLimit, history: History) -> tuple[datetime, str] | None:
    start = history.ended.get(limit.from_index)
    if start is None:
        return None  # the from step has not run (a release past it): nothing to time
    since = limit.from_id
    if limit.rework_index is not None:
        again = history.ended.get(limit.rework_index)
        if again is not None and again >= start:
            start, since = again, limit.rework_id or since
    return start, since


def expired(step: PlannedStep, history: History, now: datetime) -> list[Expired]:
    """Limits ending at `step` that have run out (and were not waived)."""
    out = []
    for limit in step.queue_limits:
        if (limit.to_index, limit.from_index) in history.waived:
            continue
        clock = _clock(limit, history)
        if clock is None:
            continue
        waited = (now - clock[0]).total_seconds()
        if waited > limit.max_s:
            out.append(Expired(limit, waited, clock[1]))
    return out


def rework_due(step: PlannedStep, history: History, now: datetime) -> list[Expired]:
    """For a rework step: the limits routing here that have already run out."""
    out = []
    for limit in step.reworks:
        start = history.ended.get(limit.from_index)
        if start is None:
            continue
        waited = (now - start).total_seconds()
        if waited > limit.max_s:
            out.append(Expired(limit, waited, limit.from_id))
    return out


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return format_quantity(round(seconds / 3600.0, 2), "h")
    if seconds >= 60:
        return format_quantity(round(seconds / 60.0, 1), "min")
    return format_quantity(round(seconds, 2), "s")
