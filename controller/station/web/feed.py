"""The live feed behind every page's event stream: the outbox followed by id, and the tool
monitor's tiles.

Every lot, tool, alarm and operator event is in the outbox with an id, whichever process
wrote it (this station's engine, a terminal's `fabline hold`, another station on the same
database), so following the outbox by id is one mechanism for all of them, and the id is the
stream's event id: a page that reconnects with `Last-Event-ID` gets what it missed from the
database. Writes in this process wake the feed at once; others are found by polling
(`POLL`). Tool tiles (progress, consumable levels) are not events: they are pushed as they
change and a reconnecting page is sent the current ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy.db import Database
from controller.genealogy.models import Outbox
from controller.station.tool_monitor import Tile
from controller.station.web import reads

log = structlog.get_logger("fabline.station")

POLL = 0.1  # seconds: how soon an event another process wrote reaches the pages
BATCH = 500  # outbox rows read at once
REPLAY_MAX = 2000  # missed events replayed after a reconnect; more: the page reloads
QUEUE_MAX = 256  # batches a slow page may fall behind before it is told to reload


@dataclass(frozen=True)
class Change:
    """One outbox row (`id` set) or one tool tile that changed (`tile` set)."""

    id: int | None
    type: str
    lot_id: str | None = None
    tool_id: str | None = None
    payload: dict[str, Any] | None = None
    tile: Tile | None = None


@dataclass(frozen=True)
class Batch:
    changes: tuple[Change, ...]
    last_id: int | None  # the newest outbox id in it
    reload: bool = False  # the subscriber fell behind: start over


def rows_after(s: Session, after: int, limit: int) -> list[Change]:
    q = (
        select(col(Outbox.id), col(Outbox.type), col(Outbox.lot_id), col(Outbox.payload))
        .where(col(Outbox.id) > after)
        .order_by(col(Outbox.id))
        .limit(limit)
    )
    out = []
    for ident, kind, lot, payload in s.execute(q):
        out.append(Change(int(ident), kind, lot, payload.get("tool_id"), payload))
    return out


class Feed:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.last_id = 0
        self._subs: set[asyncio.Queue[Batch]] = set()
        self._wake = asyncio.Event()
        self.tiles: dict[str, Tile] = {}

    def wake(self) -> None:
        """Events were written in this process: look now."""
        self._wake.set()

    def tile_changed(self, tile: Tile) -> None:
        """A tool monitor listener: pass a tile on when what a page shows of it changed."""
        old = self.tiles.get(tile.tool_id)
        self.tiles[tile.tool_id] = tile
        if old is not None and _shown(old) == _shown(tile):
            return
        self._publish(Batch((Change(None, "tile", tool_id=tile.tool_id, tile=tile),), None))

    async def run(self, stop: asyncio.Event) -> None:
        self.last_id = await self.db.run(reads.last_event_id)
        while not stop.is_set():
            try:
                rows = await self.db.run(lambda s: rows_after(s, self.last_id, BATCH))
                if rows:
                    last = rows[-1].id
                    assert last is not None
                    self.last_id = last
                    self._publish(Batch(tuple(rows), last))
                    if len(rows) == BATCH:
                        continue  # more waiting
            except Exception:  # a database hiccup must not end the feed
                log.exception("station.feed_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL)

    def _publish(self, batch: Batch) -> None:
        for q in list(self._subs):
            try:
                q.put_nowait(batch)
            except asyncio.QueueFull:  # a page that stopped reading: it reloads when back
                q.get_nowait()
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(Batch((), None, reload=True))

    async def follow(self, since: int | None) -> AsyncIterator[Batch]:
        """Batches from now on; with `since` (a Last-Event-ID), the events after it first."""
        q: asyncio.Queue[Batch] = asyncio.Queue(QUEUE_MAX)
        self._subs.add(q)
        try:
            seen = self.last_id
            if since is not None and since < seen:
                missed = await self.db.run(lambda s: rows_after(s, since, REPLAY_MAX + 1))
                if len(missed) > REPLAY_MAX:
                    yield Batch((), None, reload=True)
                elif missed:
                    seen = max(seen, missed[-1].id or 0)
                    yield Batch(tuple(missed), missed[-1].id)
            while True:
                batch = await q.get()
                if batch.last_id is not None and batch.last_id <= seen:
                    continue  # replayed already
                if batch.last_id is not None and batch.changes[0].id is not None:
                    fresh = tuple(c for c in batch.changes if (c.id or 0) > seen)
                    batch = Batch(fresh, batch.last_id)
                yield batch
        finally:
            self._subs.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subs)


def _shown(t: Tile) -> tuple[Any, ...]:
    st = t.status
    return (
        t.data,
        t.lot_id,
        t.step_id,
        round(st.progress),
        tuple((c.name, round(c.used * 100)) for c in st.consumables),
        tuple(a.code for a in st.warnings),
        t.context,
    )
