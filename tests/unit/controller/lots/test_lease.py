"""Who drives a lot: the holder of its lease. An owner `host:pid` on this host is alive while
its process runs; a lease held by another live process counts until it runs out by the
database's clock; this process's leases are fenced by their epoch.

A dead process is pid 2**22 + 1: Linux hands out pids below `pid_max`, which is at most
2**22 (PID_MAX_LIMIT on 64-bit kernels), so that pid never names a process — no child needs
to be started and reaped to find one (the unit layer starts no subprocess)."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot
from controller.lots import lease
from controller.lots.lease import ME, alive, driven_elsewhere, holds
from drivers.errors import LeaseLost, LotBusy
from tests.unit.controller.rows import get_lot, new_lot

HOST = socket.gethostname()
NEVER = 2**22 + 1
DEAD = f"{HOST}:{NEVER}"
OTHER_LIVE = f"{HOST}:{os.getppid()}"  # pytest's parent process: alive, and not this one
REMOTE = "another-host.example:1234"


def test_the_dead_pid_is_beyond_what_this_kernel_hands_out() -> None:
    assert int(Path("/proc/sys/kernel/pid_max").read_text()) < NEVER


def test_this_process_is_the_owner_it_writes() -> None:
    assert f"{HOST}:{os.getpid()}" == ME


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        (ME, True),
        (OTHER_LIVE, True),
        (f"{HOST}:1", True),  # init: alive, though not ours to signal (EPERM) unless root
        (DEAD, False),
        (f"{HOST}:not-a-pid", False),
        (f"{HOST}:", False),
        (REMOTE, True),  # cannot be signalled: its lease tells (holds())
    ],
    ids=["me", "other-live", "init", "dead", "garbled-pid", "no-pid", "other-host"],
)
def test_alive(owner: str, expected: bool) -> None:
    assert alive(owner) is expected


NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _lot(owner: str | None, expires: datetime | None = None) -> Lot:
    return Lot(id="L1", recipe_id="r", recipe_version=1, recipe_hash="h", state="running",
               owner=owner, lease_expires=expires)  # fmt: skip


LATER = NOW + timedelta(seconds=5)
EARLIER = NOW - timedelta(seconds=5)


@pytest.mark.parametrize(
    ("owner", "expires", "held", "elsewhere"),
    [
        (None, None, False, False),
        ("", LATER, False, False),
        (ME, LATER, True, False),  # created here, not claimed by a runner yet
        (ME, EARLIER, False, False),  # no runner here (forgotten): its lease tells
        (OTHER_LIVE, LATER, True, True),
        (OTHER_LIVE, EARLIER, False, False),  # alive, but its lease ran out: take-over
        (OTHER_LIVE, None, False, False),  # never leased (a row from before leases)
        (REMOTE, LATER, True, True),
        (REMOTE, EARLIER, False, False),
        (DEAD, LATER, False, False),  # gone from this host: no need to wait out the lease
    ],
    ids=["nobody", "empty", "me-unclaimed", "me-forgotten", "other-live", "other-expired",
         "other-unleased", "other-host", "other-host-expired", "dead"],
)  # fmt: skip
def test_holds_and_driven_elsewhere(
    owner: str | None, expires: datetime | None, held: bool, elsewhere: bool
) -> None:
    lot = _lot(owner, expires)
    assert holds(lot, NOW) is held
    assert driven_elsewhere(lot, NOW) is elsewhere


def test_a_lot_a_runner_of_this_process_drives_is_held_whatever_its_expiry_says() -> None:
    lease.HELD["L1"] = 1
    assert holds(_lot(ME, EARLIER), NOW) and holds(_lot(ME), NOW)
    assert not driven_elsewhere(_lot(ME, EARLIER), NOW)


def test_forgotten_leases_are_no_longer_this_process_s() -> None:
    lease.HELD.update({"L1": 3, "L2": 1})
    lease.forget({"L1", "L3"})
    assert lease.HELD == {"L2": 1}
    assert not holds(_lot(ME, EARLIER), NOW)  # L1: free for the next pickup, at a new epoch


def test_a_naive_expiry_from_sqlite_is_read_as_utc() -> None:
    assert holds(_lot(OTHER_LIVE, LATER.replace(tzinfo=None)), NOW)


# -- on a database ---------------------------------------------------------------------------------


def _take(db: Database) -> int:
    def tx(s: Session) -> int:
        return lease.take(s, store.get_lot(s, "L1", for_update=True), "station-2")

    return db.run_sync(tx)


def test_take_raises_the_epoch_and_sets_the_expiry_by_the_database_clock(db: Database) -> None:
    new_lot(db, "L1", "queued", lease_epoch=4)
    before = datetime.now(UTC)
    assert _take(db) == 5 and lease.HELD == {"L1": 5}
    lot = get_lot(db, "L1")
    assert (lot.owner, lot.station, lot.lease_epoch) == (ME, "station-2", 5)
    assert lot.lease_expires is not None
    expires = lot.lease_expires.replace(tzinfo=UTC)
    assert before + lease.TTL <= expires <= datetime.now(UTC) + lease.TTL


def test_take_is_refused_while_another_live_controller_holds_the_lease(db: Database) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=30)
    new_lot(db, "L1", "running", owner=OTHER_LIVE, station="station-1", lease_epoch=2,
            lease_expires=expires)  # fmt: skip
    with pytest.raises(LotBusy, match=rf"lot L1 is being driven by controller {OTHER_LIVE} of"
                       r" station station-1 \(its lease runs (29|30) s more\)"):  # fmt: skip
        _take(db)
    assert (get_lot(db, "L1").owner, lease.HELD) == (OTHER_LIVE, {})


def test_a_lease_that_ran_out_is_taken_over(db: Database) -> None:
    expired = datetime.now(UTC) - timedelta(seconds=1)
    new_lot(db, "L1", "running", owner=OTHER_LIVE, lease_epoch=2, lease_expires=expired)
    assert _take(db) == 3 and get_lot(db, "L1").owner == ME


def _taken_over(db: Database) -> None:
    """Another station takes the lot (as its `take` would, from another process)."""

    def tx(s: Session) -> None:
        lot = s.get(Lot, "L1")
        assert lot is not None
        lot.owner, lot.lease_epoch, lot.station = REMOTE, lot.lease_epoch + 1, "standby"

    db.run_sync(tx)


def test_a_write_after_a_take_over_is_refused_and_changes_nothing(db: Database) -> None:
    new_lot(db, "L1", "running")
    _take(db)
    _taken_over(db)

    def step(s: Session) -> None:
        lot = store.get_lot(s, "L1", for_update=True)  # the first statement of a step's write
        store.set_lot(lot, next_step=7)

    with pytest.raises(LeaseLost) as lost:
        db.run_sync(step)
    assert str(lost.value) == (
        f"lot L1 was taken over by controller {REMOTE} of station standby (lease 2, this"
        " process held lease 1): nothing written, this process stops driving it"
    )
    assert (get_lot(db, "L1").next_step, lease.HELD) == (0, {})


def test_reading_without_a_lock_is_never_fenced(db: Database) -> None:
    new_lot(db, "L1", "running")
    _take(db)
    _taken_over(db)
    assert get_lot(db, "L1").owner == REMOTE and lease.HELD == {"L1": 1}


def test_renew_extends_the_leases_held_and_reports_the_lost(db: Database) -> None:
    new_lot(db, "L1", "running")
    new_lot(db, "L2", "running")
    _take(db)
    db.run_sync(lambda s: lease.take(s, store.get_lot(s, "L2", for_update=True), "station-2"))
    old = get_lot(db, "L2").lease_expires
    _taken_over(db)
    assert db.run_sync(lease.renew) == {"L1"}
    assert lease.HELD == {"L2": 1}
    renewed = get_lot(db, "L2").lease_expires
    assert old is not None and renewed is not None and renewed >= old
    assert db.run_sync(lease.renew) == set()


def test_give_back_leaves_a_taken_over_lease_alone(db: Database) -> None:
    new_lot(db, "L1", "running")
    _take(db)
    _taken_over(db)
    db.run_sync(lambda s: lease.give_back(s, "L1"))  # not refused: it writes nothing of ours
    assert (get_lot(db, "L1").owner, lease.HELD) == (REMOTE, {})


def test_give_back_ends_this_process_s_lease(db: Database) -> None:
    new_lot(db, "L1", "running")
    _take(db)
    db.run_sync(lambda s: lease.give_back(s, "L1"))
    lot = get_lot(db, "L1")
    assert (lot.owner, lot.lease_expires, lot.lease_epoch, lease.HELD) == (None, None, 1, {})


def test_a_lease_is_fresh_for_part_of_its_ttl_then_confirmed_before_a_send(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing goes to a tool on a lease this process may have lost: fresh for SAFE × TTL of
    this host's clock after a take or renewal; past it (paused), `confirm` renews it, or
    finds the lot taken over and refuses."""
    new_lot(db, "L1", "running")
    clock = [1000.0]
    monkeypatch.setattr(lease.time, "monotonic", lambda: clock[0])
    _take(db)
    ttl = lease.TTL.total_seconds()
    assert lease.fresh("L1")
    clock[0] += lease.SAFE * ttl + 0.1  # paused past the safe part of the lease
    assert not lease.fresh("L1")
    db.run_sync(lambda s: lease.confirm(s, "L1"))  # still ours: renewed
    assert lease.fresh("L1")
    clock[0] += ttl
    _taken_over(db)
    with pytest.raises(LeaseLost, match="nothing sent to a tool"):
        db.run_sync(lambda s: lease.confirm(s, "L1"))
    assert "L1" not in lease.HELD and lease.fresh("L1")  # not ours: the commit fences it
    assert lease.fresh("NOT-HELD")
