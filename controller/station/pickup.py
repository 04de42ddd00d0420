"""Which lots a serving station starts runners for.

Without areas, a station runs the lots given to it (`lot.station`) that nobody drives: lots
released or confirmed on a terminal, handed to it by `fabline run`/`resume`, or whose
controller died. With areas, the station serving an area pulls the area's queue: lots whose
next step is there, nobody holding their lease, highest priority first, then oldest. The rows
are read `FOR UPDATE SKIP LOCKED` and their leases taken in the same transaction, so two
processes pulling at once never start the same lot (a row one of them has locked is skipped
by the other, not waited for).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy import store
from controller.genealogy.models import Lot
from controller.lots import lease
from controller.lots.lifecycle import LotState

WAITING = (LotState.QUEUED.value, LotState.RUNNING.value)  # a runner drives these on


def orphans(s: Session, station: str, running: Collection[str]) -> list[str]:
    """The station's own lots nobody drives (no areas)."""
    now = lease.db_now(s)
    return [
        lot.id
        for lot in store.list_lots(s, WAITING)
        if lot.station == station and lot.id not in running and not lease.holds(lot, now)
    ]


def pull(s: Session, area: str, station: str, running: Collection[str], limit: int) -> list[str]:
    """Take the leases of up to `limit` lots of the area's queue; their ids, in order."""
    now = lease.db_now(s)
    rows = s.scalars(
        select(Lot)
        .where(col(Lot.area) == area, col(Lot.state).in_(WAITING))
        .order_by(col(Lot.priority).desc(), col(Lot.created_at), col(Lot.id))
        .limit(limit + len(running))  # rows this station runs come back too: skip them below
        .with_for_update(skip_locked=True)
    ).all()
    taken: list[str] = []
    for lot in rows:
        if len(taken) == limit:
            break
        if lot.id in running or lease.holds(lot, now):
            continue
        lease.take(s, lot, station)
        taken.append(lot.id)
    return taken
