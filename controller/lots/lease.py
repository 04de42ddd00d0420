"""Who drives a lot: a controller process holding the lot's lease.

A lease is three columns of the lot row: `owner` (the process, `host:pid`), `lease_epoch`
(raised by one each time the lot is taken) and `lease_expires`, always computed from the
database's clock (`db_now`), so the hosts of a line need not agree on the time. A runner
takes the lease when it claims the lot (`take`, with the row locked), its station renews
every lease it holds each `TTL / 3` (`renew`), and it gives the lease back when it stops.

Fencing: this process remembers the epoch of every lease it took (`HELD`). Whenever it
reads one of those lots to write its step (`store.get_lot(..., for_update=True)`, the first
statement of every step transaction) `fence` checks the row still names this process at that
epoch; if another station took the lot over meanwhile (this process was paused, or cut off
from the database past its lease), the transaction fails with `LeaseLost` and writes nothing.
The row lock held to the commit keeps a take-over from slipping in between.

What goes to a tool is fenced by time: a lease taken or renewed at local (monotonic) time t
runs at least until t + TTL by the database's clock, so this process counts it as its own
until t + SAFE × TTL (`fresh`). Past that (it was paused, say), the runner renews the lease
(`confirm`) before it sends a start, and stops if another station took the lot meanwhile:
a stale owner never sends a job for a lot it lost (a standby re-attaching to the job id
would otherwise find it on the tool later, or start the step a second time).

A lot whose lease ran out may be taken by any controller; so may one whose owner is a
process on this host that is gone (no need to wait out the lease after a crash).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy import store
from controller.genealogy.models import Lease, Lot, utcnow
from drivers.errors import LeaseLost, LotBusy

ME = f"{socket.gethostname()}:{os.getpid()}"
TTL = timedelta(seconds=15)  # a lease not renewed for this long may be taken over
# this process's leases: lot id -> the epoch it took the lot at
HELD: dict[str, int] = {}
# lot id -> the monotonic time until which its lease is surely this process's (`fresh`)
FRESH_UNTIL: dict[str, float] = {}
SAFE = 0.8  # of a lease's TTL counted from its take or renewal, on this host's clock


def configure(ttl_seconds: float) -> None:
    """Set how long this process's leases last (the station's `lease_ttl`). Process-wide, like
    the leases themselves: a shorter lease means a faster take-over after a station dies and
    a renewal every third of it; 15 s renews every 5 s, one UPDATE for all the lots held."""
    global TTL
    TTL = timedelta(seconds=ttl_seconds)


def db_now(s: Session) -> datetime:
    """The database's clock (UTC). SQLite is a file on this host: the host clock is its."""
    if s.get_bind().dialect.name == "postgresql":
        now: datetime = s.execute(text("SELECT now()")).scalar_one()
        return now.astimezone(UTC)
    return utcnow()


def aware(t: datetime) -> datetime:
    """A time read back from SQLite (naive) as the UTC it was written in."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def alive(owner: str) -> bool:
    """Whether the process `host:pid` runs (a process on another host: assumed so)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def holds(lot: Lot, now: datetime) -> bool:
    """Someone holds the lot's lease at `now` (the database's time): a runner of this process,
    or a live controller (this one included, for a lot it created and has not claimed yet)
    whose lease has not run out."""
    if not lot.owner:
        return False
    if lot.owner == ME and lot.id in HELD:
        return True  # a runner of this process drives it
    if not alive(lot.owner):
        return False
    return lot.lease_expires is not None and aware(lot.lease_expires) > now


def driven(s: Session, lot: Lot) -> bool:
    """A controller (this process's runner included) holds the lot's lease now."""
    return holds(lot, db_now(s))


def driven_elsewhere(lot: Lot, now: datetime) -> bool:
    """A controller other than this process holds the lot's lease at `now`."""
    return bool(lot.owner) and lot.owner != ME and holds(lot, now)


def take(s: Session, lot: Lot, station: str) -> int:
    """Take the lease of a lot read `for_update` in this transaction; the new epoch.
    Refused while another controller holds it."""
    started = time.monotonic()
    now = db_now(s)
    if driven_elsewhere(lot, now):
        assert lot.lease_expires is not None
        left = (aware(lot.lease_expires) - now).total_seconds()
        raise LotBusy(
            f"lot {lot.id} is being driven by controller {lot.owner} of station {lot.station}"
            f" (its lease runs {left:.0f} s more)"
        )
    lot.owner, lot.station = ME, station
    lot.lease_epoch = (lot.lease_epoch or 0) + 1
    lot.lease_expires = now + TTL
    lot.updated_at = utcnow()
    HELD[lot.id] = lot.lease_epoch
    FRESH_UNTIL[lot.id] = started + SAFE * TTL.total_seconds()
    return lot.lease_epoch


def _drop(lot_id: str) -> None:
    HELD.pop(lot_id, None)
    FRESH_UNTIL.pop(lot_id, None)


def fresh(lot_id: str) -> bool:
    """This process's lease of the lot surely runs now: renewed (or taken) less than
    SAFE × TTL ago by this host's clock. A lot this process holds no lease of: True (the
    step's transaction fences it)."""
    if lot_id not in HELD:
        return True
    return time.monotonic() < FRESH_UNTIL.get(lot_id, 0.0)


def confirm(s: Session, lot_id: str) -> None:
    """Renew this process's lease of the lot now; LeaseLost if another controller took it."""
    started = time.monotonic()
    epoch = HELD.get(lot_id)
    if epoch is None:
        return
    kept = s.execute(
        update(Lot)
        .where(col(Lot.id) == lot_id, col(Lot.owner) == ME, col(Lot.lease_epoch) == epoch)
        .values(lease_expires=db_now(s) + TTL)
        .returning(col(Lot.id))
    ).first()
    if kept is None:
        _drop(lot_id)
        raise LeaseLost(
            f"lot {lot_id} was taken over while this process was not renewing its lease"
            f" (lease {epoch}): nothing sent to a tool, this process stops driving it"
        )
    FRESH_UNTIL[lot_id] = started + SAFE * TTL.total_seconds()


def fence(lot: Lot) -> None:
    """Refuse to write a lot this process took whose lease another controller holds now."""
    epoch = HELD.get(lot.id)
    if epoch is None or (lot.owner == ME and lot.lease_epoch == epoch):
        return
    _drop(lot.id)
    raise LeaseLost(
        f"lot {lot.id} was taken over by controller {lot.owner} of station {lot.station}"
        f" (lease {lot.lease_epoch}, this process held lease {epoch}): nothing written,"
        " this process stops driving it"
    )


store.on_lot_locked(fence)


def give_up(lot: Lot) -> None:
    """End this process's lease of a lot read `for_update` in this transaction (handed over)."""
    _drop(lot.id)
    lot.owner, lot.lease_expires = None, None


def give_back(s: Session, lot_id: str) -> None:
    """End this process's lease of a lot (a lease taken over meanwhile is left alone)."""
    epoch = HELD.get(lot_id)
    _drop(lot_id)
    lot = store.get_lot(s, lot_id, for_update=True)  # not fenced any more: never refused
    if lot.owner == ME and (epoch is None or lot.lease_epoch == epoch):
        lot.owner, lot.lease_expires = None, None
        lot.updated_at = utcnow()


def forget(lot_ids: set[str]) -> None:
    """Stop counting these leases as this process's without telling the database (it cannot
    be reached): they run out by its clock, and whoever takes the lots next, this process
    included, takes them at a new epoch."""
    for lot_id in lot_ids:
        _drop(lot_id)


def renew(s: Session) -> set[str]:
    """Extend every lease this process holds; the ids of those it lost (taken over). Reads
    the database's clock even when none is held, so a station learns it lost the database."""
    started = time.monotonic()
    now = db_now(s)
    if not HELD:
        return set()
    kept = s.execute(
        update(Lot)
        .where(col(Lot.owner) == ME, col(Lot.id).in_(list(HELD)))
        .values(lease_expires=now + TTL)
        .returning(col(Lot.id), col(Lot.lease_epoch))
    ).all()
    still = {lot_id for lot_id, epoch in kept if HELD.get(lot_id) == epoch}
    lost = set(HELD) - still
    for lot_id in lost:
        _drop(lot_id)
    for lot_id in still:
        FRESH_UNTIL[lot_id] = started + SAFE * TTL.total_seconds()
    return lost


# -- named leases: one process of the line at a time ---------------------------------------------


@dataclass
class NamedLease:
    """A lease on one thing the line's processes do one at a time: serving an area
    (`area:<name>`: driving its tools) or relaying the outbox (`relay`). The holder renews it
    (`keep`, every few seconds); another process gets it once it ran out by the database's
    clock, the holder having been killed, paused, or cut off from the database. A holder that
    finds it taken has lost it (`held` turns False) and must stop. A `standby` does not take a
    lease nobody holds until it has waited one lease itself, so the active process wins when
    both start together. Two processes creating the row at once: one transaction fails on the
    key and its process tries again at its next `keep`."""

    name: str
    station: str
    standby: bool = False
    epoch: int | None = None  # held at this epoch; None: not held
    since: datetime | None = None  # first look (a standby waits one lease from here)

    @property
    def held(self) -> bool:
        return self.epoch is not None

    def keep(self, s: Session) -> bool:
        """Renew the lease, or try to take it; whether this process holds it now."""
        now = db_now(s)
        if self.since is None:
            self.since = now
        row = s.get(Lease, self.name, with_for_update=True)
        if row is None:
            row = Lease(name=self.name, station=self.station)
            s.add(row)
        mine = row.holder == ME and row.epoch == self.epoch
        if not mine:
            self.epoch = None  # taken over (or never held)
            free = (
                row.holder is None
                or not alive(row.holder)  # gone from this host: no need to wait it out
                or row.expires is None
                or aware(row.expires) <= now
            )
            waiting = self.standby and row.holder is None and now - self.since < TTL
            if not free or waiting:
                return False
            row.holder, row.station, row.epoch = ME, self.station, (row.epoch or 0) + 1
            self.epoch = row.epoch
        row.expires = now + TTL
        return True

    def leave(self, s: Session) -> None:
        """Give the lease up (the process stops): another may take it at once."""
        row = s.get(Lease, self.name, with_for_update=True)
        if row is not None and row.holder == ME and row.epoch == self.epoch:
            row.holder, row.expires = None, None
        self.epoch = None
