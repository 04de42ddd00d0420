"""The audit trail: one append-only row per operator action, and its MES event, written in
the transaction of the action's effect (a denied or refused action in a transaction of its
own, so the attempt is on record although nothing changed)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from sqlalchemy.orm import Session

from controller.access import Actor
from controller.events import OperatorAction, OperatorActionData
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot
from controller.genealogy.station_models import Audit
from drivers.errors import FablineError, Forbidden, Unauthorized, shown

T = TypeVar("T")
Result = Literal["ok", "denied", "refused"]
MESSAGE_MAX = 500


def result_of(error: FablineError) -> Result:
    return "denied" if isinstance(error, Forbidden | Unauthorized) else "refused"


def record(
    s: Session,
    *,
    station: str,
    actor: Actor,
    action: str,
    target: str,
    result: Result,
    message: str,
    lot: Lot | None = None,
    tool_id: str | None = None,
) -> None:
    """Write the audit row and its `operator_action` event. An action that changed `lot`
    is one of the lot's events (its next sequence number, on the lot's topic); a tool's goes
    on the tool's topic; the rest (users, refusals) on the station's."""
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    event = OperatorAction(
        lot_id=lot.id if lot is not None else None,
        tool_id=tool_id,
        data=OperatorActionData(
            actor=actor.name,
            role=actor.role.value,
            action=action,
            target=target,
            reason_code=actor.reason_code,
            comment=actor.comment,
            result=result,
            message=message,
        ),
    )
    s.add(
        Audit(
            actor=actor.name,
            role=actor.role.value,
            action=action,
            target=target,
            reason_code=actor.reason_code,
            comment=actor.comment,
            result=result,
            message=message,
            event_id=event.event_id,
        )
    )
    store.add_events(s, lot.station if lot is not None else station, [event], lot)


async def attempted(
    db: Database,
    station: str,
    actor: Actor | None,
    action: str,
    target: str,
    work: Callable[[], Awaitable[T]],
    tool_id: str | None = None,
) -> T:
    """Run an action (`work` writes its own audit row with its effect); when it fails and
    someone asked for it, the attempt is audited in a transaction of its own (denied or
    refused, with the message), then the error goes on to the front door."""
    try:
        return await work()
    except FablineError as e:
        if actor is not None:
            await db.run(
                functools.partial(
                    record, station=station, actor=actor, action=action,
                    target=shown(target, 128), result=result_of(e), message=str(e),
                    tool_id=tool_id,
                )
            )  # fmt: skip
        raise
