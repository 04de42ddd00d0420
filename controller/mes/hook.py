"""The MES hook of a running controller: publish the outbox (the relay, or the spool file
with no broker) and, in the station, take commands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from controller.genealogy.db import Database
from controller.mes.config import MesConfig
from controller.mes.relay import CommandSink, Relay, Spool, outbox_stats

log = structlog.get_logger("fabline.mes")


@dataclass
class Hook:
    """A running publisher: `wake()` after writing events; `relay` is None when spooling."""

    relay: Relay | None
    spool: Spool | None

    def wake(self) -> None:
        (self.relay or self.spool).wake()  # type: ignore[union-attr]


@asynccontextmanager
async def mes_hook(
    db: Database,
    config: MesConfig,
    commands: CommandSink | None = None,
    drain_timeout: float = 10.0,
) -> AsyncIterator[Hook]:
    """Publish while the block runs; on the way out, drain what this run wrote (within
    `drain_timeout`) — anything left stays in the outbox for the next start."""
    stop = asyncio.Event()
    if config.broker is None:
        hook = Hook(None, Spool(db, config.spool))
        task = asyncio.create_task(hook.spool.run(stop))  # type: ignore[union-attr]
    else:
        relay = Relay(db, config, commands=commands)
        hook = Hook(relay, None)
        task = asyncio.create_task(relay.run(stop))
    try:
        yield hook
    finally:
        if hook.relay is not None:
            deadline = time.monotonic() + drain_timeout
            while time.monotonic() < deadline:
                stats = await db.run(outbox_stats)
                if not stats["pending"]:
                    break
                hook.wake()
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        left = (await db.run(outbox_stats))["pending"]
        if hook.relay is not None and left:
            log.warning(
                "mes.pending_left",
                pending=left,
                hint="they are published at the next start (fabline mes relay)",
            )
