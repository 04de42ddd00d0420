"""`fabline mes serve`: a station that takes MES commands, runs the lots dispatched to it on
its line, reports every event and tool state, and recovers its unfinished lots at start."""

from __future__ import annotations

import asyncio

import structlog

from controller.console import EXIT_OK, out
from controller.engine.engine import _alive
from controller.genealogy import store
from controller.mes.commands import CommandHandler
from controller.mes.service import _stop_on_signals, mes_hook
from controller.run_commands import Display, RunOptions, engine_for

log = structlog.get_logger("fabline.mes")


async def serve_command(opts: RunOptions) -> int:
    config = opts.mes
    stop = asyncio.Event()
    _stop_on_signals(stop)
    with Display(quiet=False) as display:
        async with engine_for(opts, display, with_hook=False) as (engine, line):
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
                unfinished = await engine.db.run(
                    lambda s: store.list_lots(s, ["queued", "running"])
                )
                for lot in unfinished:
                    if not (lot.owner and _alive(lot.owner)):
                        log.info("station.recover", lot_id=lot.id, state=lot.state)
                        start_lot(lot.id)
                where = config.broker.describe() if config.broker else f"spool {config.spool}"
                out.print(
                    f"station {config.station} serving line '{line.line}'"
                    f" ({len(line.tools)} tools); MES: {where};"
                    f" commands on {config.commands}"
                )
                out.file.flush()
                await stop.wait()
                monitor.cancel()
                for task in list(runners.values()):
                    task.cancel()  # a running job goes on on its tool; resume re-attaches
                await asyncio.gather(monitor, *runners.values(), return_exceptions=True)
    return EXIT_OK
