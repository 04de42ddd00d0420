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
import dataclasses
import functools
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, NamedTuple

import aiomqtt
import structlog
from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy.db import Database
from controller.genealogy.models import Outbox, utcnow
from controller.lots import lease
from controller.mes.config import MesConfig

log = structlog.get_logger("fabline.mes")
# aiomqtt warns on every publish beyond 10 in flight; a window of them is the point here
_CLIENT_LOG = logging.getLogger("fabline.mes.mqtt")
_CLIENT_LOG.setLevel(logging.ERROR)

# the lot state an event leaves a lot in (published retained on lots/<lot>/state); None:
# the event's `data.state` says (a split child starts in its parent's state)
LOT_STATE_AFTER: dict[str, str | None] = {
    "lot_created": "queued",
    "track_in": "running",
    "hold": "held",
    "pause": "paused",
    "release": "queued",
    "abort": "aborted",
    "lot_completed": "completed",
    "external_waiting": "waiting",
    "external_confirmed": "queued",
    "lot_handed_over": "handed_over",  # the next station's topics say what follows
    "lot_split": None,
    "lot_merged_into": "merged",
    "lot_scrapped": "scrapped",
    "lot_reworked": "queued",
}

CommandSink = Callable[[bytes], Awaitable[None]]


# -- outbox queries -------------------------------------------------------------------------


class PendingRow(NamedTuple):
    id: int
    lot_id: str | None
    type: str
    payload: str  # the event's JSON text as stored: published as is
    station: str | None = None  # the station that wrote it: its topics


_STATION = col(Outbox.payload)["station"].as_string()


def pending_rows(s: Session, limit: int, after_id: int = 0) -> list[PendingRow]:
    q = (
        select(
            col(Outbox.id),
            col(Outbox.lot_id),
            col(Outbox.type),
            cast(Outbox.payload, Text),
            _STATION,
        )
        .where(col(Outbox.sent_at).is_(None), col(Outbox.id) > after_id)
        .order_by(col(Outbox.id))
        .limit(limit)
    )
    return [
        PendingRow(int(i or 0), lot, t, text, station) for i, lot, t, text, station in s.execute(q)
    ]


def mark_sent(s: Session, ids: Sequence[int]) -> None:
    """Mark exactly these rows sent. Runs of consecutive ids become one BETWEEN each (a
    batch is usually one run): far cheaper than an IN list of a thousand parameters."""
    runs = id_runs(sorted(ids))
    for i in range(0, len(runs), 200):
        where = or_(*(col(Outbox.id).between(a, b) for a, b in runs[i : i + 200]))
        s.execute(update(Outbox).where(where).values(sent_at=utcnow()))


def id_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7, 8] -> [(1, 3), (7, 8)]"""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def outbox_stats(s: Session) -> dict[str, Any]:
    pending_n, oldest = s.execute(
        select(func.count(), func.min(col(Outbox.created_at))).where(col(Outbox.sent_at).is_(None))
    ).one()
    sent_n = s.execute(select(func.count()).where(col(Outbox.sent_at).is_not(None))).scalar()
    return {"pending": pending_n, "sent": sent_n, "oldest_pending": oldest}


# -- topics ---------------------------------------------------------------------------------


def messages(config: MesConfig, row: PendingRow) -> list[tuple[str, bytes, bool]]:
    """(topic, payload, retain) for one outbox row: the event as stored, plus a retained
    current-state snapshot when it changes a lot's or a tool's state. Only those few events
    are decoded; the rest go out as the stored text."""
    body = row.payload.encode()
    if row.type == "command_reply":
        return [(config.replies, body, False)]
    if row.lot_id:
        out = [(config.lot_events(row.lot_id), body, False)]
        if row.type in LOT_STATE_AFTER:
            event = json.loads(row.payload)
            state = {
                "lot_id": row.lot_id,
                "state": LOT_STATE_AFTER[row.type] or event["data"]["state"],
                "since": event["time"],
                "event_id": event["event_id"],
                "seq": event.get("seq"),
                "reason": event["data"].get("reason"),
                "kind": event["data"].get("kind"),
            }
            out.append((config.lot_state(row.lot_id), json.dumps(state).encode(), True))
        return out
    event = json.loads(row.payload)
    tool = event.get("tool_id")
    if tool:
        out = [(config.tool_events(tool), body, False)]
        if row.type == "tool_state":
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
        batch: int = 1000,
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
        # one relay of the database publishes at a time: each event once, in outbox order, to
        # the topics of the station that wrote it (a dead station's events too)
        self.lease = lease.NamedLease("relay", config.station)
        self._kept = -math.inf  # monotonic time of the last renewal
        self._configs: dict[str, MesConfig] = {config.station: config}

    def wake(self) -> None:
        """New events are in the outbox (other processes' events are found by polling)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, publish and listen until `stop` is set; reconnect with backoff."""
        try:
            await self._run(stop)
        finally:
            with contextlib.suppress(Exception):  # the lease runs out by itself otherwise
                await self.db.run(self.lease.leave)

    async def _run(self, stop: asyncio.Event) -> None:
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
            except Exception as e:  # a bug must not silence the station: log it, reconnect
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("mes.session_failed", broker=broker.describe())
            finally:
                self.connected = False
                self.subscribed.clear()
            if not stop.is_set():
                await _wait(stop, delay)
                delay = min(delay * 2, 10.0)

    def _client(self) -> aiomqtt.Client:
        """The station (the process that takes commands) has one persistent session, so
        the broker keeps its command subscription and queues commands while it is away,
        and it alone reports the station's status (its will says offline). Every other
        process publishing events (`fabline run`, `resume`, `mes relay`) gets a client id
        of its own and a clean session: sharing the station's id would take its session."""
        b = self.config.broker
        assert b is not None
        station = self.commands is not None
        offline = json.dumps({"state": "offline", "station": self.config.station})
        return aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=self.config.client_id(station=station),
            clean_session=not station,
            will=aiomqtt.Will(self.config.status, offline, qos=1, retain=True) if station else None,
            tls_context=b.tls_context(),
            timeout=self.timeout,
            max_inflight_messages=self.window,
            logger=_CLIENT_LOG,
        )

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._pump(client, stop))]
        if self.commands is not None:
            await client.subscribe(self.config.commands, qos=1, timeout=self.timeout)
            tasks.append(asyncio.create_task(self._listen(client)))
            online = json.dumps(
                {"state": "online", "station": self.config.station, "since": utcnow().isoformat()}
            )
            await client.publish(
                self.config.status, online, qos=1, retain=True, timeout=self.timeout
            )
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
        if stop.is_set() and self.commands is not None:  # the will covers unclean goodbyes
            offline = json.dumps({"state": "offline", "station": self.config.station})
            await client.publish(self.config.status, offline, qos=1, retain=True, timeout=2)

    async def _pump(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Publish pending rows as one continuous stream with up to `window` messages in
        flight: the next batch is read, and the acknowledged prefix marked sent, while
        messages are on the wire. A row counts as acknowledged once all its messages are and
        all rows before it are. When the outbox looks empty everything in flight is settled
        and the outbox is read again from the start: that also finds rows a slower
        transaction committed below the cursor (PostgreSQL hands out ids before commit)."""
        flight: deque[tuple[int | None, asyncio.Task[None]]] = deque()
        acked: list[int] = []
        marking: asyncio.Task[None] | None = None

        async def settle_oldest() -> None:
            row_id, task = flight.popleft()
            await task
            if row_id is not None:
                acked.append(row_id)

        async def mark(wait: bool) -> None:
            # one mark at a time; with wait=False only start one if the last has finished
            nonlocal marking
            if marking is not None and (wait or marking.done()):
                task, marking = marking, None
                await task
            if acked and marking is None:
                ids = acked[:]
                acked.clear()
                marking = asyncio.create_task(self._mark(ids))
                if wait:
                    await mark(True)

        def read(after: int) -> asyncio.Future[list[PendingRow]]:
            return asyncio.ensure_future(
                self.db.run(functools.partial(pending_rows, limit=self.batch, after_id=after))
            )

        after = 0
        fetch = read(after)
        try:
            while not stop.is_set():
                if not await self._relaying():
                    while flight:  # what is on the wire is settled; the holder sends the rest
                        await settle_oldest()
                    await mark(wait=True)
                    await _wait(stop, min(1.0, lease.TTL.total_seconds() / 3))
                    fetch.cancel()
                    after = 0
                    fetch = read(after)
                    continue
                rows = await fetch
                if not rows:
                    while flight:
                        await settle_oldest()
                    await mark(wait=True)  # the rescan must not see rows being marked
                    if after == 0:
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), 0.25)
                    after = 0
                    fetch = read(after)
                    continue
                after = rows[-1].id
                fetch = read(after)
                for row in rows:
                    msgs = messages(self._config_of(row.station), row)
                    for n, (topic, body, retain) in enumerate(msgs, 1):
                        if len(flight) >= self.window:
                            await settle_oldest()
                        publish = client.publish(
                            topic, body, qos=1, retain=retain, timeout=self.timeout
                        )
                        last = row.id if n == len(msgs) else None
                        flight.append((last, asyncio.create_task(publish)))
                await mark(wait=False)
        finally:
            # the prefix acknowledged so far is marked sent even when the session broke
            fetch.cancel()
            for _, t in flight:
                t.cancel()
            await asyncio.gather(fetch, *(t for _, t in flight), return_exceptions=True)
            await asyncio.shield(mark(wait=True))

    async def _relaying(self) -> bool:
        """Whether this relay holds the database's relay lease (renewed every third of it)."""
        now = time.monotonic()
        if self.lease.held and now - self._kept < lease.TTL.total_seconds() / 3:
            return True
        held = await self.db.run(self.lease.keep)
        if held:
            self._kept = now
        elif self._kept > -math.inf:
            log.info("mes.relay_standby", holder="another process")
            self._kept = -math.inf
        return held

    def _config_of(self, station: str | None) -> MesConfig:
        """The topics of the station that wrote an event."""
        if not station:
            return self.config
        config = self._configs.get(station)
        if config is None:
            config = self._configs[station] = dataclasses.replace(self.config, station=station)
        return config

    async def _mark(self, ids: list[int]) -> None:
        await self.db.run(functools.partial(mark_sent, ids=ids))
        self.sent += len(ids)

    async def _listen(self, client: aiomqtt.Client) -> None:
        assert self.commands is not None
        async for message in client.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else str(payload or "").encode()
            try:
                await self.commands(raw)
            except Exception:  # one bad payload must never end the session
                log.exception("mes.command_crashed", size=len(raw))


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
            rows = await self.db.run(functools.partial(pending_rows, limit=1000, after_id=last))
            if not rows:
                return total
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                for row in rows:
                    f.write(row.payload + "\n")
                f.flush()
                os.fsync(f.fileno())
            last = rows[-1].id
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
