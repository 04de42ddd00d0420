"""One reader of a lot's row for every job of its runner that looks for a request.

A step of 25 pieces has up to 25 jobs waiting for a tool or running, and each looks for a
hold, pause or abort request (`lifecycle.requested`) while it waits. Each reading the lot
row on its own made 25 reads a poll, all through the one database thread. They share this
reader instead: while anyone waits it reads the row once a poll, or at once when this
process writes a request (`Engine.wake`), and hands every waiter the same read.
"""

from __future__ import annotations

import asyncio
import contextlib

from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot


class LotWatch:
    def __init__(self, db: Database, lot_id: str, wake: asyncio.Event, poll_s: float) -> None:
        self._db = db
        self._lot_id = lot_id
        self._wake = wake
        self._poll_s = poll_s
        self._readers = 0
        self._next: asyncio.Future[Lot] | None = None  # the read the waiters wait for
        self._task: asyncio.Task[None] | None = None

    async def next_read(self) -> Lot:
        """The lot as the next poll (or wake-up) reads it."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        read = self._next
        self._readers += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name=f"watch {self._lot_id}")
        try:
            return await asyncio.shield(read)
        finally:
            self._readers -= 1
            if self._readers == 0 and self._task is not None:
                self._task.cancel()  # nobody waits: no reads until somebody does
                self._task = None

    async def _poll(self) -> None:
        lot_id = self._lot_id
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            self._wake.clear()
            read, self._next = self._next, None
            if read is None:
                continue
            try:
                lot = await self._db.run(lambda s: store.get_lot(s, lot_id))
            except Exception as e:  # every waiter gets it (the database is gone, say)
                read.set_exception(e)
                return
            read.set_result(lot)
