"""The checks a step passes when it is about to start, in one pure function for the engine.

In order: a rework step runs only when a queue-time limit through it has run out or a rework
route sent the lot back to it (else it is skipped); an expired queue-time limit ending at the
step holds the lot; fed-forward setpoints are computed from the lot's measurements (a missing
measurement or a setpoint the tool would refuse holds the lot); the interlocks that read the
step's own setpoints are checked on those values (e.g. the CTE run-out of a lamination with
the film's measured artwork scale). A returned field of an external step outside its spec
held the lot when it was confirmed; a lot released from that hold runs on with the value, as
after any out-of-spec result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.events import HoldKind, QtimeData, QtimeExpired
from controller.recipes import feedforward, interlocks, qtime
from controller.recipes.expand import Expansion, PlannedStep, ToolStepPlan
from controller.recipes.history import History
from drivers.errors import FeedForwardError


@dataclass(frozen=True)
class Gate:
    step: PlannedStep  # with its fed-forward setpoints resolved
    hold: tuple[HoldKind, str] | None = None  # hold the lot: the reason's kind and text
    skip: str | None = None  # skip the step (a rework step that is not needed)
    events: tuple[QtimeExpired, ...] = ()  # to record on the lot at the step

    @property
    def clear(self) -> bool:
        """Nothing to record or decide: the step just runs."""
        return self.hold is None and self.skip is None and not self.events


def _expired(e: qtime.Expired, action: str) -> QtimeExpired:
    return QtimeExpired(data=QtimeData(**e.data(action)))


def gate(exp: Expansion, step: PlannedStep, history: History, now: datetime) -> Gate:
    events: list[QtimeExpired] = []
    if step.rework and not history.rework_pending(step.index):
        due = qtime.rework_due(step, history, now)
        if not due:
            return Gate(
                step,
                skip=f"rework step {step.id} not needed: no queue-time limit through it ran out",
            )
        events += [_expired(e, "rework") for e in due]
    late = qtime.expired(step, history, now)
    if late:
        events += [_expired(e, "hold") for e in late]
        reason = "; ".join(e.describe() for e in late)
        return Gate(step, hold=("qtime", f"step {step.id}: {reason}"), events=tuple(events))
    try:
        resolved = feedforward.resolve(step, history)
    except FeedForwardError as e:
        text = f"step {step.id}: feed-forward: {e}"
        return Gate(step, hold=("feed_forward", text), events=tuple(events))
    pieces = resolved.pieces if isinstance(resolved, ToolStepPlan) else {}
    for piece, as_run in [(None, resolved), *pieces.items()]:
        problems = interlocks.step_problems(exp, as_run)
        if problems:
            where = f"step {step.id}" + (f" (piece {piece})" if piece else "")
            hold: tuple[HoldKind, str] = ("interlock", f"{where}: {problems[0]}")
            return Gate(resolved, hold=hold, events=tuple(events))
    return Gate(resolved, events=tuple(events))
