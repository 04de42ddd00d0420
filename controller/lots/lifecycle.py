"""The lot lifecycle: one enum of states, one table of transitions, one function that moves a
lot and writes the MES event that says so, with the lot's next sequence number, in the same
transaction.

    action     from                                  to         event
    track_in   queued running                        running    (track_in, written by the runner)
    wait       queued running                        waiting    external_waiting
    confirm    queued running waiting                queued     external_confirmed
    hold       queued running paused waiting         held       hold
    pause      queued running waiting                paused     pause
    release    held paused                           queued     release
    abort      queued running paused waiting held    aborted    abort
    complete   queued running                        completed  lot_completed
    hand_over  queued running                        queued     lot_handed_over (another area)
    split      queued paused held                    same       lot_split (parent and child)
    merge      queued paused held                    same       lot_merged (the lot kept)
    merge_into queued paused held                    merged     lot_merged_into (the others)
    scrap      queued paused held                    scrapped   lot_scrapped (every unit)
    scrap_units queued paused held                   same       units_scrapped (some units)
    rework     queued paused held                    queued     lot_reworked

Completed, aborted, scrapped and merged are final; `same` leaves the lot's state as it is
(`operate`). The lot operations (split, merge, scrap, rework: controller/lots/operations.py)
apply only to a lot no live controller drives, so never between a job's start and its end.

A hold, pause or abort asked of a lot that a live
controller drives is not applied here but left as the lot's `request`, which its runner
applies at the next step boundary (abort: at once, stopping the running job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import get_args

from sqlalchemy.orm import Session

from controller.events import (
    Abort,
    EventBase,
    Hold,
    HoldData,
    HoldKind,
    Pause,
    PauseData,
    Release,
    ReleaseData,
)
from controller.genealogy import store
from controller.genealogy.models import Lot
from drivers.errors import LotStateError


class LotState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"  # at an external step until its confirmation
    HELD = "held"
    COMPLETED = "completed"
    ABORTED = "aborted"
    SCRAPPED = "scrapped"
    MERGED = "merged"  # its units joined another lot


FINAL = frozenset({LotState.COMPLETED, LotState.ABORTED, LotState.SCRAPPED, LotState.MERGED})
STOPPED = FINAL | {LotState.HELD, LotState.PAUSED, LotState.WAITING}  # a runner ends here
HOLD_KINDS: tuple[str, ...] = get_args(HoldKind)

_Q, _R, _P, _W, _H = (
    LotState.QUEUED,
    LotState.RUNNING,
    LotState.PAUSED,
    LotState.WAITING,
    LotState.HELD,
)


@dataclass(frozen=True)
class Transition:
    sources: frozenset[LotState]
    target: LotState | None  # None: the state stays (a lot operation that keeps the lot)


TRANSITIONS: dict[str, Transition] = {
    "track_in": Transition(frozenset({_Q, _R}), LotState.RUNNING),
    "wait": Transition(frozenset({_Q, _R}), LotState.WAITING),
    "confirm": Transition(frozenset({_Q, _R, _W}), LotState.QUEUED),
    "hold": Transition(frozenset({_Q, _R, _P, _W}), LotState.HELD),
    "pause": Transition(frozenset({_Q, _R, _W}), LotState.PAUSED),
    "release": Transition(frozenset({_H, _P}), LotState.QUEUED),
    "abort": Transition(frozenset({_Q, _R, _P, _W, _H}), LotState.ABORTED),
    "complete": Transition(frozenset({_Q, _R}), LotState.COMPLETED),
    "hand_over": Transition(frozenset({_Q, _R}), LotState.QUEUED),
    "split": Transition(frozenset({_Q, _P, _H}), None),
    "merge": Transition(frozenset({_Q, _P, _H}), None),
    "merge_into": Transition(frozenset({_Q, _P, _H}), LotState.MERGED),
    "scrap": Transition(frozenset({_Q, _P, _H}), LotState.SCRAPPED),
    "scrap_units": Transition(frozenset({_Q, _P, _H}), None),
    "rework": Transition(frozenset({_Q, _P, _H}), LotState.QUEUED),
}
OPERATIONS = ("split", "merge", "merge_into", "scrap", "scrap_units", "rework")
REQUESTS = ("hold", "pause", "abort")  # what may be asked of a lot another controller drives
# A pending request gives way to the same or a stronger one only: a pause replacing a hold
# would let the next runner resume the lot, a hold replacing an abort leave its job running.
_STRENGTH = {"pause": 1, "hold": 2, "abort": 3}


@dataclass(frozen=True)
class HoldReason:
    """Why a lot stopped: a kind to filter on (alarm, out_of_spec, operator, ...) and the
    text an engineer reads."""

    kind: HoldKind
    text: str


def check(lot: Lot, action: str) -> Transition:
    """The transition, or LotStateError naming the lot's state and what allows the action."""
    t = TRANSITIONS[action]
    state = LotState(lot.state)
    if state not in t.sources:
        if state is LotState.HELD and action == "hold":
            raise LotStateError(f"lot {lot.id} is already held ({lot.hold_reason})")
        if state in FINAL:
            raise LotStateError(f"lot {lot.id} is {state}: nothing to {action}")
        allowed = ", ".join(sorted(t.sources))
        raise LotStateError(f"lot {lot.id} is {state}: only a lot {allowed} can {action}")
    return t


def apply(
    s: Session,
    lot: Lot,
    action: str,
    *,
    reason: HoldReason | None = None,
    note: str | None = None,
    step_id: str | None = None,
    tool_id: str | None = None,
    events: Sequence[EventBase] = (),
    **changes: object,
) -> None:
    """Move `lot` (loaded for update in this transaction) by `action`: its state; its hold
    reason (set by hold and abort, kept by pause, cleared otherwise); any pending request
    cleared; the event of hold, pause, abort or release (with `reason` / `note`) followed by
    `events`, all with the lot's next sequence numbers."""
    t = check(lot, action)
    assert t.target is not None, f"{action} keeps the state: lifecycle.operate"
    where = {"lot_id": lot.id, "step_id": step_id, "tool_id": tool_id}
    said: list[EventBase] = []
    hold: dict[str, str | None]
    if t.target in (LotState.HELD, LotState.ABORTED):
        assert reason is not None, f"{action} needs a reason"
        data = HoldData(reason=reason.text, kind=reason.kind)
        said.append(Hold(**where, data=data) if action == "hold" else Abort(**where, data=data))
        hold = {"hold_kind": reason.kind, "hold_reason": reason.text}
    elif t.target is LotState.PAUSED:
        said.append(Pause(**where, data=PauseData(reason=reason.text if reason else None)))
        hold = {}
    else:
        if action == "release":
            said.append(Release(**where, data=ReleaseData(was=lot.hold_reason, note=note)))
        hold = {"hold_kind": None, "hold_reason": None}
    store.set_lot(
        lot,
        state=t.target.value,
        request=None,
        request_kind=None,
        request_reason=None,
        **hold,
        **changes,
    )
    if said or events:
        store.add_events(s, lot.station, [*said, *events], lot)


def operate(s: Session, lot: Lot, action: str, events: Sequence[EventBase]) -> None:
    """A lot operation that leaves `lot`'s state as it is (split, merge, partial scrap):
    checked against the table like `apply`, and its events written with the lot's next
    sequence numbers."""
    t = check(lot, action)
    assert t.target is None, f"{action} changes the state: lifecycle.apply"
    store.set_lot(lot)
    store.add_events(s, lot.station, events, lot)


def ask(lot: Lot, action: str, reason: HoldReason) -> None:
    """Leave `action` for the controller that drives the lot (checked like `apply`, and
    never in place of a stronger request still pending)."""
    assert action in REQUESTS, action
    check(lot, action)
    pending = requested(lot)
    if pending is not None and _STRENGTH.get(pending[0], 0) > _STRENGTH[action]:
        raise LotStateError(
            f"lot {lot.id}: {pending[0]} already requested ({pending[1].text});"
            f" a {action} would weaken it"
        )
    store.set_lot(lot, request=action, request_kind=reason.kind, request_reason=reason.text)


def requested(lot: Lot) -> tuple[str, HoldReason] | None:
    """The hold, pause or abort left for this lot's controller, if any."""
    if not lot.request:
        return None
    kind = lot.request_kind if lot.request_kind in HOLD_KINDS else "operator"
    text = lot.request_reason or f"{lot.request} requested"
    return lot.request, HoldReason(kind, text)  # type: ignore[arg-type]
