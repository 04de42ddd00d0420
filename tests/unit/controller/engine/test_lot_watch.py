"""The one reader of a lot's row that every job of its runner shares while it looks for a
request: one read a poll however many wait, a wake-up reads at once, nobody waiting means no
reads, and a failed read reaches every waiter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from controller.engine.lot_watch import LotWatch
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot
from tests.unit.controller.rows import new_lot

POLL_S = 0.05


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The lots `store.get_lot` read, in order."""
    seen: list[str] = []
    real = store.get_lot

    def counted(s: Session, lot_id: str, *, for_update: bool = False) -> Lot:
        seen.append(lot_id)
        return real(s, lot_id, for_update=for_update)

    monkeypatch.setattr(store, "get_lot", counted)
    yield seen


async def test_many_waiters_share_one_read_a_poll(db: Database, reads: list[str]) -> None:
    new_lot(db, "L1", "running")
    watch = LotWatch(db, "L1", asyncio.Event(), POLL_S)
    lots = await asyncio.gather(*(watch.next_read() for _ in range(25)))
    assert reads == ["L1"]
    assert {lot.id for lot in lots} == {"L1"}
    lots = await asyncio.gather(*(watch.next_read() for _ in range(25)))
    assert reads == ["L1", "L1"]


async def test_a_wake_up_reads_at_once_and_sees_the_request(db: Database, reads: list[str]) -> None:
    new_lot(db, "L1", "running")
    wake = asyncio.Event()
    watch = LotWatch(db, "L1", wake, poll_s=3600.0)  # only a wake-up reads in this test
    waiters = [asyncio.create_task(watch.next_read()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)

    def ask(s: Session) -> None:
        store.get_lot(s, "L1", for_update=True).request = "hold"

    await db.run(ask)
    wake.set()
    lots = await asyncio.wait_for(asyncio.gather(*waiters), timeout=10)
    assert [lot.request for lot in lots] == ["hold"] * 3
    assert reads == ["L1", "L1"]  # the request's own read, then the watch's one


async def test_nobody_waiting_means_no_reads(db: Database, reads: list[str]) -> None:
    new_lot(db, "L1", "running")
    watch = LotWatch(db, "L1", asyncio.Event(), POLL_S)
    waiter = asyncio.create_task(watch.next_read())
    await asyncio.sleep(0)
    waiter.cancel()  # the job got its tool before the first poll
    await asyncio.gather(waiter, return_exceptions=True)
    await asyncio.sleep(4 * POLL_S)
    assert reads == []


async def test_a_failed_read_reaches_every_waiter(db: Database) -> None:
    watch = LotWatch(db, "NO-SUCH-LOT", asyncio.Event(), POLL_S)
    outcomes = await asyncio.gather(*(watch.next_read() for _ in range(3)), return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["LotNotFound"] * 3
    with pytest.raises(Exception, match="NO-SUCH-LOT"):  # the next poll reads again
        await watch.next_read()
