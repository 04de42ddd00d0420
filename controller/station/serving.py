"""Which station serves an area: one at a time, by a lease on the area's row.

Two stations configured for one area (an active one and a standby) share its tools; only the
holder of the area's lease drives them. It takes the lease at start, renews it with every
heartbeat, and picks up the area's lots. A standby keeps trying: it gets the lease once the
holder's has run out (by the database's clock) — the holder was killed, paused, or cut off
from the database — and then takes over the lots whose leases ran out with it, re-attaching
to their jobs (controller/lots/lease.py). A holder that finds its lease taken stands down: it
stops its runners and becomes the standby.

A standby does not take an area nobody holds until it has waited one lease, so the active
station wins when both start together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from controller.genealogy.models import AreaLease
from controller.lots import lease
from controller.lots.lease import ME, aware, db_now


@dataclass
class Serving:
    """This station's view of its area's lease."""

    area: str
    station: str
    standby: bool = False
    epoch: int | None = None  # held at this epoch; None: not serving
    since: datetime | None = None  # first look (a standby waits one lease from here)

    @property
    def serving(self) -> bool:
        return self.epoch is not None

    def keep(self, s: Session) -> bool:
        """Renew the lease, or try to take it; whether this station serves the area now."""
        now = db_now(s)
        if self.since is None:
            self.since = now
        row = s.get(AreaLease, self.area, with_for_update=True)
        if row is None:
            row = AreaLease(area=self.area, station=self.station)
            s.add(row)
        mine = row.holder == ME and row.epoch == self.epoch
        free = row.holder is None or row.expires is None or aware(row.expires) <= now
        if not mine:
            self.epoch = None  # taken over (or never held)
            if not free or (self.standby and row.holder is None and now - self.since < lease.TTL):
                return False
            row.holder, row.station, row.epoch = ME, self.station, row.epoch + 1
            self.epoch = row.epoch
        row.expires = now + lease.TTL
        return True

    def leave(self, s: Session) -> None:
        """Give the area up (the station stops): a standby may take it at once."""
        row = s.get(AreaLease, self.area, with_for_update=True)
        if row is not None and row.holder == ME and row.epoch == self.epoch:
            row.holder, row.expires = None, None
        self.epoch = None
