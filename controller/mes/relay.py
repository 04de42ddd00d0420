"""Publish the outbox to the MES broker; spool it to a file when no broker is configured.

The relay reads pending outbox rows in id order and publishes each at QoS 1 with up to
`window` publishes in flight (MQTT keeps them in order on one connection). A row is marked
sent only once the broker acknowledged it and every row before it: after a broken connection
the unacknowledged rest is published again, so the MES may see an event twice (it
de-duplicates by event id) but never loses one or sees one out of order. Current-state
topics (lot state, tool state, station status) are retained; events are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import aiomqtt
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy.db import Database
from controller.genealogy.models import Outbox, utcnow
from controller.mes.config import MesConfig

log = structlog.get_logger("fabline.mes")
# aiomqtt warns on every publish beyond 10 in flight; a window of them is the point here
_CLIENT_LOG = logging.getLogger("fabline.mes.mqtt")
_CLIENT_LOG.setLevel(logging.ERROR)

# the lot state an event leaves a lot in (published retained on lots/<lot>/state)
LOT_STATE_AFTER = {
    "lot_created": "queued",
    "track_in": "running",
    "hold": "held",
    "release": "queued",
    "abort": "aborted",
    "lot_completed": "completed",
    "external_waiting": "waiting",
    "external_confirmed": "queued",
}

CommandSink = Callable[[bytes], Awaitable[None]]


# -- outbox queries -------------------------------------------------------------------------


def pending(s: Session, limit: int, after_id: int = 0) -> list[tuple[int, dict[str, Any]]]:
    q = (
        select(col(Outbox.id), col(Outbox.payload))
        .where(col(Outbox.sent_at).is_(None), col(Outbox.id) > after_id)
        .order_by(col(Outbox.id))
        .limit(limit)
    )
    return [(i, dict(p)) for i, p in s.execute(q) if i is not None]


def mark_sent(s: Session, ids: Sequence[int]) -> None:
    for i in range(0, len(ids), 5000):
        s.execute(
            update(Outbox).where(col(Outbox.id).in_(ids[i : i + 5000])).values(sent_at=utcnow())
        )


def outbox_stats(s: Session) -> dict[str, Any]:
    pending_n, oldest = s.execute(
        select(func.count(), func.min(col(Outbox.created_at))).where(col(Outbox.sent_at).is_(None))
    ).one()
    sent_n = s.execute(select(func.count()).where(col(Outbox.sent_at).is_not(None))).scalar()
    return {"pending": pending_n, "sent": sent_n, "oldest_pending": oldest}


# -- topics ---------------------------------------------------------------------------------


def messages(config: MesConfig, event: dict[str, Any]) -> list[tuple[str, bytes, bool]]:
    """(topic, payload, retain) for one outbox event: the event, plus a retained current-state
    snapshot when it changes a lot's or a tool's state."""
    body = json.dumps(event, separators=(",", ":")).encode()
    lot, tool, kind = event.get("lot_id"), event.get("tool_id"), event["type"]
    if kind == "command_reply":
        return [(config.replies, body, False)]
    if lot:
        out = [(config.lot_events(lot), body, False)]
        if kind in LOT_STATE_AFTER:
            state = {
                "lot_id": lot,
                "state": LOT_STATE_AFTER[kind],
                "since": event["time"],
                "event_id": event["event_id"],
                "seq": event.get("seq"),
                "reason": event["data"].get("reason"),
            }
            out.append((config.lot_state(lot), json.dumps(state).encode(), True))
        return out
    if tool:
        out = [(config.tool_events(tool), body, False)]
        if kind == "tool_state":
            out.append((config.tool_state(tool), json.dumps(event["data"]).encode(), True))
        return out
    return [(config.station_events, body, False)]


# -- the relay ------------------------------------------------------------------------------


class Relay:
    def __init__(
        self,
        db: Database,
        config: MesConfig,
        *,
        window: int = 64,
        batch: int = 500,
        timeout: float = 5.0,
        commands: CommandSink | None = None,
    ) -> None:
        assert config.broker is not None, "no broker configured: use Spool"
        self.db = db
        self.config = config
        self.window = window
        self.batch = batch
        self.timeout = timeout
        self.commands = commands
        self.connected = False
        self.sent = 0
        self.last_error: str | None = None
        self.subscribed = asyncio.Event()  # set once commands can arrive
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New events are in the outbox (other processes' events are found by polling)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, publish and listen until `stop` is set; reconnect with backoff."""
        broker = self.config.broker
        assert broker is not None
        delay = 0.2
        while not stop.is_set():
            try:
                async with self._client() as client:
                    self.connected, self.last_error, delay = True, None, 0.2
                    log.info("mes.connected", broker=broker.describe())
                    await self._session(client, stop)
            except (aiomqtt.MqttError, TimeoutError, OSError) as e:
                self.last_error = str(e) or type(e).__name__
                log.warning("mes.disconnected", broker=broker.describe(), error=self.last_error)
            finally:
                self.connected = False
                self.subscribed.clear()
            if not stop.is_set():
                await _wait(stop, delay)
                delay = min(delay * 2, 10.0)

    def _client(self) -> aiomqtt.Client:
        b = self.config.broker
        assert b is not None
        offline = json.dumps({"state": "offline", "station": self.config.station})
        return aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=f"fabline-{self.config.site}-{self.config.station}",
            clean_session=False,  # the broker keeps our command subscription while we are away
            will=aiomqtt.Will(self.config.status, offline, qos=1, retain=True),
            tls_context=b.tls_context(),
            timeout=self.timeout,
            max_inflight_messages=self.window,
            logger=_CLIENT_LOG,
        )

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        online = json.dumps(
            {"state": "online", "station": self.config.station, "since": utcnow().isoformat()}
        )
        await client.publish(self.config.status, online, qos=1, retain=True, timeout=self.timeout)
        tasks = [asyncio.create_task(self._pump(client, stop))]
        if self.commands is not None:
            await client.subscribe(self.config.commands, qos=1, timeout=self.timeout)
            tasks.append(asyncio.create_task(self._listen(client)))
            self.subscribed.set()
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper:
                    t.result()  # surface the MqttError that ended the session
        finally:
            for t in [*tasks, stopper]:
                t.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
        if stop.is_set():  # a clean goodbye; the will covers unclean ones
            offline = json.dumps({"state": "offline", "station": self.config.station})
            await client.publish(self.config.status, offline, qos=1, retain=True, timeout=2)

    async def _pump(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            rows = await self.db.run(lambda s: pending(s, self.batch))
            if rows:
                await self._publish(client, rows)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.25)

    async def _publish(
        self, client: aiomqtt.Client, rows: list[tuple[int, dict[str, Any]]]
    ) -> None:
        gate = asyncio.Semaphore(self.window)

        async def one(event: dict[str, Any]) -> None:
            async with gate:
                for topic, body, retain in messages(self.config, event):
                    await client.publish(topic, body, qos=1, retain=retain, timeout=self.timeout)

        tasks = [asyncio.create_task(one(ev)) for _, ev in rows]
        acked: list[int] = []
        try:
            for (row_id, _), task in zip(rows, tasks, strict=True):
                await task  # in order: only a contiguous acknowledged prefix counts as sent
                acked.append(row_id)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if acked:
                await self.db.run(lambda s: mark_sent(s, acked))
                self.sent += len(acked)

    async def _listen(self, client: aiomqtt.Client) -> None:
        assert self.commands is not None
        async for message in client.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else str(payload or "").encode()
            await self.commands(raw)


class Spool:
    """No broker: append events to a JSON-lines file (once each; they stay pending in the
    outbox, so a broker configured later still receives them)."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path
        self.position = path.with_name(path.name + ".pos")
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def _last(self) -> int:
        try:
            return int(self.position.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    async def flush(self) -> int:
        """Append every event not yet spooled; return how many."""
        last = self._last()
        total = 0
        while True:
            rows = await self.db.run(functools.partial(pending, limit=1000, after_id=last))
            if not rows:
                return total
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                for _, ev in rows:
                    f.write(json.dumps(ev, separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
            last = rows[-1][0]
            tmp = self.position.with_suffix(".tmp")
            tmp.write_text(str(last))
            tmp.replace(self.position)
            total += len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.flush()
            self._wake.clear()
            await _wait(stop, 0.25, self._wake)
        await self.flush()


async def _wait(stop: asyncio.Event, seconds: float, also: asyncio.Event | None = None) -> None:
    waits = [asyncio.create_task(stop.wait())]
    if also is not None:
        waits.append(asyncio.create_task(also.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def age_seconds(oldest: Any) -> float | None:
    if oldest is None:
        return None
    if getattr(oldest, "tzinfo", "n/a") is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    ts = oldest.timestamp() if hasattr(oldest, "timestamp") else float(oldest)
    return max(0.0, time.time() - ts)
