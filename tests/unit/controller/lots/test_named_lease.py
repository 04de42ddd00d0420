"""A named lease: one process at a time serves an area (or relays the outbox). The active one
takes the lease and renews it; a standby takes it only once it ran out; a holder whose lease
was taken has lost it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from controller.genealogy.db import Database
from controller.genealogy.models import Lease
from controller.lots.lease import ME, TTL, NamedLease

OTHER = "another-host:4242"


def _row(db: Database) -> Lease:
    row = db.run_sync(lambda s: s.get(Lease, "area:bumping"))
    assert row is not None
    return row


def _held_by_other(db: Database, expires: datetime) -> None:
    def tx(s: Session) -> None:
        row = s.get(Lease, "area:bumping") or Lease(name="area:bumping", station="st-a")
        row.holder, row.station, row.epoch, row.expires = OTHER, "st-a", row.epoch + 1, expires
        s.add(row)

    db.run_sync(tx)


def test_the_active_station_takes_a_free_area_and_renews_it(db: Database) -> None:
    me = NamedLease("area:bumping", "st-a")
    assert db.run_sync(me.keep) and me.epoch == 1
    first = _row(db).expires
    assert db.run_sync(me.keep) and me.epoch == 1
    row = _row(db)
    assert (row.holder, row.station) == (ME, "st-a")
    assert first is not None and row.expires is not None and row.expires >= first


def test_a_standby_waits_one_lease_before_taking_a_free_area(db: Database) -> None:
    standby = NamedLease("area:bumping", "st-b", standby=True)
    assert not db.run_sync(standby.keep)
    assert standby.since is not None
    standby.since -= TTL  # as if it had been looking for a whole lease
    assert db.run_sync(standby.keep) and standby.epoch == 1


def test_a_standby_takes_the_area_when_the_holder_s_lease_runs_out(db: Database) -> None:
    _held_by_other(db, datetime.now(UTC) + timedelta(minutes=1))
    standby = NamedLease("area:bumping", "st-b", standby=True)
    assert not db.run_sync(standby.keep) and not standby.held
    _held_by_other(db, datetime.now(UTC) - timedelta(seconds=1))  # epoch 2, ran out
    assert db.run_sync(standby.keep) and standby.epoch == 3
    assert (_row(db).holder, _row(db).station) == (ME, "st-b")


def test_a_holder_whose_area_was_taken_stands_down(db: Database) -> None:
    me = NamedLease("area:bumping", "st-a")
    db.run_sync(me.keep)
    _held_by_other(db, datetime.now(UTC) + timedelta(minutes=1))
    assert not db.run_sync(me.keep) and not me.held
    assert _row(db).holder == OTHER


def test_leaving_frees_the_area_for_the_standby_at_once(db: Database) -> None:
    me = NamedLease("area:bumping", "st-a")
    db.run_sync(me.keep)
    db.run_sync(me.leave)
    assert _row(db).holder is None and not me.held
    standby = NamedLease("area:bumping", "st-b", standby=True)
    standby.since = datetime.now(UTC) - TTL
    assert db.run_sync(standby.keep)
