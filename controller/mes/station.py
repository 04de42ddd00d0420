"""`fabline mes serve`: a station that takes MES commands, runs the lots dispatched to it on
its line, reports every event and tool state, and recovers its unfinished lots at start.

It registers in the database (one live process per station name), beats every few seconds,
and picks up the lots of its station that nobody drives: lots released or confirmed from a
terminal, lots handed to it by `fabline run`/`resume`, lots whose controller died.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from sqlalchemy.orm import Session

from controller.console import EXIT_OK, out
from controller.engine.engine import ME, _alive
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.mes.command_handler import CommandHandler
from controller.mes.service import _stop_on_signals, mes_hook
from controller.run_commands import Display, RunOptions, engine_for
from controller.station import registry

log = structlog.get_logger("fabline.mes")

PICKUP_INTERVAL = 0.5  # seconds between looks for lots nobody drives


async def serve_command(opts: RunOptions) -> int:
    config = opts.mes
    stop = asyncio.Event()
    _stop_on_signals(stop)
    with Display(quiet=False) as display:
        async with engine_for(opts, display, with_hook=False) as (engine, line):
            db = engine.db
            tools = registry.tool_addresses(line)
            await db.run(lambda s: registry.register(s, config.station, tools))
            runners: dict[str, asyncio.Task[object]] = {}

            def start_lot(lot_id: str) -> None:
                if lot_id in runners:
                    return
                task: asyncio.Task[object] = asyncio.create_task(engine.run_lot(lot_id))
                runners[lot_id] = task
                task.add_done_callback(lambda _t: runners.pop(lot_id, None))

            handler = CommandHandler(engine.db, config, engine, start_lot)
            async with mes_hook(engine.db, config, commands=handler) as hook:
                handler.wake = hook.wake
                monitor = asyncio.create_task(engine.monitor_tools(stop))
                keeper = asyncio.create_task(_keep(db, config.station, start_lot, runners, stop))
                where = config.broker.describe() if config.broker else f"spool {config.spool}"
                out.print(
                    f"station {config.station} serving line '{line.line}'"
                    f" ({len(line.tools)} tools); MES: {where};"
                    f" commands on {config.commands}"
                )
                out.file.flush()
                await stop.wait()
                for task in (monitor, keeper, *runners.values()):
                    task.cancel()  # a running job goes on on its tool; the next start re-attaches
                await asyncio.gather(monitor, keeper, *runners.values(), return_exceptions=True)
            await db.run(lambda s: registry.sign_off(s, config.station))
    return EXIT_OK


async def _keep(
    db: Database,
    station: str,
    start_lot: Callable[[str], None],
    runners: dict[str, asyncio.Task[object]],
    stop: asyncio.Event,
) -> None:
    """Beat, and start a runner for every lot of the station that nobody drives."""

    def orphans(s: Session) -> list[str]:
        return [
            lot.id
            for lot in store.list_lots(s, ["queued", "running"])
            if lot.station == station
            and lot.id not in runners
            and not (lot.owner and (lot.owner == ME or _alive(lot.owner)))
        ]

    beat_every = max(1, round(registry.HEARTBEAT / PICKUP_INTERVAL))
    n = 0
    while not stop.is_set():
        try:
            if n % beat_every == 0:
                await db.run(lambda s: registry.beat(s, station))
            for lot_id in await db.run(orphans):
                log.info("station.pickup", lot_id=lot_id)
                start_lot(lot_id)
        except Exception:  # a database hiccup must not end the station's pickup
            log.exception("station.keep_failed")
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PICKUP_INTERVAL)
