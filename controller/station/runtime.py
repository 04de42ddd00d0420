"""The station: the one composition root that owns a line's tools, the database, the engine,
the lot service, the MES hook, the tool monitor and the lot runners.

Every front door is a thin layer over it: `fabline run`, `resume` and `demo` open a station
for the lots they run; `fabline station` (and its alias without HTTP, `fabline mes serve`) opens one
that serves (`serve=True`: registered in the database, MES commands taken, lots nobody drives
picked up; with `http`, the operator page and API of controller/station/web) until it is told
to stop. A running job goes on on its tool when the station stops; the next start re-attaches
to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import structlog
from sqlalchemy.orm import Session

from controller.access import HoldCodes, ScrapCodes
from controller.engine import Engine, EngineSettings, Notify, Outcome, quiet
from controller.genealogy.db import Database
from controller.lines import resolve_line
from controller.lots import LotService, areas, lease, stop_job_on
from controller.lots.areas import Areas
from controller.mes.command_handler import CommandHandler
from controller.mes.config import MesConfig, mes_config
from controller.mes.hook import Hook, mes_hook
from controller.recipes.cache import Expansions
from controller.station import pickup, registry
from controller.station.config import HttpSettings
from controller.station.spc_ops import SpcService
from controller.station.tool_monitor import ToolMonitor
from controller.station.tool_ops import ToolService
from drivers.errors import ParameterError
from drivers.line import Line
from drivers.registry import make_driver

log = structlog.get_logger("fabline.station")

PICKUP_INTERVAL = 0.5  # seconds between looks for lots nobody drives
PICKUP_BATCH = 20  # lots taken from the area's queue at one look


@dataclass(frozen=True)
class StationConfig:
    line: Path | None = None  # None: a simulated line embedded in this process
    database_url: str | None = None
    mes: MesConfig = field(default_factory=lambda: mes_config(None))
    time_scale: float = 2e4  # embedded line: simulated seconds per real second
    seed: int = 0  # embedded line: noise seed
    retry_budget: float = 30.0
    allow_draft: bool = False
    serve: bool = False  # register, take MES commands, pick up lots nobody drives
    http: HttpSettings | None = None  # serving: the operator page and API too
    holds: HoldCodes = field(default_factory=HoldCodes)
    scrap_codes: ScrapCodes = field(default_factory=ScrapCodes)
    monitor_interval: float = 1.0  # seconds between two looks at each tool
    area: str | None = None  # the line area it serves (None: the lots given to this station)
    standby: bool = False  # serves its area only once the station serving it is gone
    areas: Areas = field(default_factory=Areas)  # the line's areas (recorded in the database)
    lease_ttl: float = 15.0  # seconds a lot's or the area's lease lasts unrenewed


class Station:
    def __init__(self, config: StationConfig, notify: Notify = quiet) -> None:
        self.config = config
        self.notify = notify
        self.name = config.mes.station
        self.runners: dict[str, asyncio.Task[Outcome]] = {}
        self._stack = AsyncExitStack()
        self._hook: Hook | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._routing: set[asyncio.Task[None]] = set()
        self._pick_up_now = asyncio.Event()  # a front door made a lot runnable: look at once
        self.http_url: str | None = None  # where the page is served, once it is

    # -- lifetime -----------------------------------------------------------------------

    async def __aenter__(self) -> Station:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for task in [*self._tasks, *self.runners.values()]:
            task.cancel()  # a running job goes on on its tool; the next start re-attaches
        await asyncio.gather(*self._tasks, *self.runners.values(), return_exceptions=True)
        await self._stack.aclose()

    async def _open(self) -> None:
        cfg, stack = self.config, self._stack
        lease.configure(cfg.lease_ttl)
        self.embedded = cfg.line is None
        self.line = await self._line()
        self.db = Database(cfg.database_url)
        stack.callback(self.db.close)
        await asyncio.get_running_loop().run_in_executor(None, self.db.migrate)
        if cfg.areas or cfg.area is not None:
            if self.db.dialect == "sqlite":
                raise ParameterError(
                    "areas and standby stations make a line of several stations, which needs"
                    " PostgreSQL (database_url postgresql://...); SQLite serves one station"
                )
            await self.db.run(lambda s: areas.publish(s, cfg.areas))
        line_areas = await self.db.run(areas.load)  # as every station of the line has them
        if cfg.serve:  # before touching a tool: one live process per station
            tools = registry.tool_addresses(self.line)
            area = cfg.area or ""
            await self.db.run(lambda s: registry.register(s, self.name, tools, area))
            stack.push_async_callback(self._sign_off)
        expansions = Expansions()
        self.engine = Engine(
            self.db,
            [make_driver(t) for t in self.line.tools],
            EngineSettings(
                station=self.name,
                retry_budget=cfg.retry_budget,
                auto_confirm=self.embedded,
                areas=line_areas,
            ),
            notify=self.notify,
            expansions=expansions,
        )
        stack.push_async_callback(self.engine.close)
        await self.engine.connect()
        self.lots = LotService(
            self.db,
            station=self.name,
            stop_job=self._stop_job,
            expansions=expansions,
            allow_draft=cfg.allow_draft,
            wake=self.engine.wake,
            holds=cfg.holds,
            scrap_codes=cfg.scrap_codes,
        )
        commands = (
            CommandHandler(self.lots, cfg.mes, self.take_up, wake=self.wake_outbox)
            if cfg.serve
            else None
        )
        self._hook = await stack.enter_async_context(mes_hook(self.db, cfg.mes, commands))
        self.monitor = ToolMonitor(
            self.db,
            self.engine.pool.drivers.values(),
            self.name,
            interval=cfg.monitor_interval,
            wake_outbox=self.wake_outbox,
        )
        self._tasks.append(asyncio.create_task(self.monitor.run(self._stop)))
        self.tools = ToolService(self.db, self.name, self.engine.pool, self.monitor)
        self.engine.on_spc = self.tools.spc_acted
        self.spc = SpcService(self.db, self.name, released=self.tools.sync)
        stack.push_async_callback(self.tools.close)
        await self.tools.start()
        self._tasks.append(asyncio.create_task(self._renew_leases()))
        if cfg.serve:
            self._tasks.append(asyncio.create_task(self._keep()))

    async def _line(self) -> Line:
        if self.config.line is not None:
            return resolve_line(self.config.line)
        from simulators.line import SimLine  # only the embedded line imports simulators

        scale = self.config.time_scale
        sim = SimLine(time_scale=scale if math.isfinite(scale) else math.inf, seed=self.config.seed)
        await self._stack.enter_async_context(sim)
        return sim.describe()

    async def _sign_off(self) -> None:
        await self.db.run(lambda s: registry.sign_off(s, self.name))

    # -- lots -----------------------------------------------------------------------------

    def start_lot(self, lot_id: str) -> asyncio.Task[Outcome]:
        """Run a lot in the background (once: a lot already running keeps its runner)."""
        task = self.runners.get(lot_id)
        if task is None:
            task = asyncio.create_task(self.engine.run_lot(lot_id))
            self.runners[lot_id] = task
            task.add_done_callback(lambda t: self._runner_done(lot_id, t))
        return task

    def _runner_done(self, lot_id: str, task: asyncio.Task[Outcome]) -> None:
        self.runners.pop(lot_id, None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # e.g. the database went away mid-step: nothing was committed
            log.error("station.runner_failed", lot_id=lot_id, error=str(error) or repr(error),
                      then="its lease runs out and the lot is picked up again")  # fmt: skip

    def take_up(self, lot_id: str) -> None:
        """A front door made a lot runnable (dispatched, released, confirmed): run it here,
        or, on a line of areas, leave it to the station serving the area of its next step
        (this one included: its pickup takes it at once)."""
        if self.config.area is None and not self.engine.settings.areas:
            self.start_lot(lot_id)
            return
        task = asyncio.create_task(self.db.run(lambda s: lease.give_back(s, lot_id)))
        self._routing.add(task)  # a lot created here was leased to this process: let it go
        task.add_done_callback(self._routing.discard)
        self._pick_up_now.set()

    async def run_lot(self, lot_id: str) -> Outcome:
        return await self.start_lot(lot_id)

    async def run_lots(self, lot_ids: list[str]) -> list[Outcome]:
        return list(await asyncio.gather(*(self.start_lot(i) for i in lot_ids)))

    async def _stop_job(self, tool_id: str, job_id: str) -> str:
        driver = self.engine.pool.drivers.get(tool_id)
        if driver is None:
            return f"tool {tool_id} is not on this station's line: job {job_id} not stopped"
        return await stop_job_on(driver, job_id)

    def wake_outbox(self) -> None:
        if self._hook is not None:
            self._hook.wake()

    async def _renew_leases(self) -> None:
        """Keep the leases of the lots this station drives (controller/lots/lease.py). A lot
        taken over by another station loses its runner here; so does every lot when the
        database cannot be reached for a whole lease: another station may own them by now,
        so this one stops driving rather than guess (a job keeps running on its tool; the
        next owner re-attaches to it)."""
        every = lease.TTL.total_seconds() / 3
        last_ok = time.monotonic()
        seen_stray: set[str] = set()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every)
            # a lease no runner of this station drives, twice in a row (its runner failed before
            # it could give it back; once may be a pickup about to start one), is given up, so
            # it runs out and the lot is picked up again
            now_stray = set(lease.HELD) - set(self.runners)
            if stray := now_stray & seen_stray:
                log.warning("station.stray_leases", lots=sorted(stray))
                lease.forget(stray)
            seen_stray = now_stray - stray
            try:
                lost = await self.db.run(lease.renew)
                last_ok = time.monotonic()
            except Exception as e:  # the database is unreachable or failing
                if time.monotonic() - last_ok < lease.TTL.total_seconds():
                    continue
                lost = set(self.runners) | set(lease.HELD)
                lease.forget(lost)  # they run out meanwhile: whoever is up takes them next
                log.error("station.database_lost", error=str(e), stopping=sorted(lost))
            for lot_id in lost:
                task = self.runners.get(lot_id)
                if task is not None:
                    log.warning("station.lease_lost", lot_id=lot_id)
                    task.cancel()

    # -- serving --------------------------------------------------------------------------

    @property
    def hook(self) -> Hook | None:
        return self._hook

    async def serve(self, stop: asyncio.Event, ready: Callable[[], None] = lambda: None) -> None:
        """Run until `stop` is set (SIGTERM, SIGINT); with `http` configured, serve the
        operator page and API meanwhile. `ready` is called once everything listens."""
        if self.config.http is None:
            ready()
            await stop.wait()
            return
        from controller.station.web.server import serve_http  # fastapi only where it serves

        await serve_http(self, self.config.http, stop, ready)

    async def _keep(self) -> None:
        """Beat; serve the station's area if it has one (the area's lease: one station drives
        its tools at a time); and start a runner for each lot to pick up
        (controller/station/pickup.py)."""
        cfg = self.config
        serving = (
            lease.NamedLease(f"area:{cfg.area}", self.name, cfg.standby)
            if cfg.area is not None
            else None
        )
        # beat, and renew the area's lease, at least three times a lease
        beat = min(registry.HEARTBEAT, lease.TTL.total_seconds() / 3)
        beat_every = max(1, round(beat / PICKUP_INTERVAL))
        n = 0
        while not self._stop.is_set():
            try:
                if n % beat_every == 0:
                    await self.db.run(lambda s: registry.beat(s, self.name))
                    if serving is not None:
                        await self._serve_area(serving)
                for lot_id in await self.db.run(lambda s: self._to_pick_up(s, serving)):
                    log.info("station.pickup", lot_id=lot_id, area=cfg.area)
                    self.start_lot(lot_id)
            except Exception:  # a database hiccup must not end the station's pickup
                log.exception("station.keep_failed")
            n += 1
            self._pick_up_now.clear()
            stopped = asyncio.ensure_future(self._stop.wait())
            poked = asyncio.ensure_future(self._pick_up_now.wait())
            await asyncio.wait([stopped, poked], timeout=PICKUP_INTERVAL,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            stopped.cancel()
            poked.cancel()
        if serving is not None and serving.held:
            with contextlib.suppress(Exception):
                await self.db.run(serving.leave)

    def _to_pick_up(self, s: Session, serving: lease.NamedLease | None) -> list[str]:
        running = set(self.runners)
        if serving is None:
            return pickup.orphans(s, self.name, running)
        if not serving.held or self.config.area is None:
            return []  # a standby, or stood down: the area's station drives its tools
        return pickup.pull(s, self.config.area, self.name, running, PICKUP_BATCH)

    async def _serve_area(self, serving: lease.NamedLease) -> None:
        """Renew or take the area's lease; stand down (stop every runner) if it was taken."""
        was = serving.held
        now = await self.db.run(serving.keep)
        if now and not was:
            log.info("station.serving", area=self.config.area, epoch=serving.epoch)
        elif was and not now:
            log.warning("station.stood_down", area=self.config.area, stopping=sorted(self.runners))
            for task in list(self.runners.values()):
                task.cancel()  # their jobs run on; the area's new station re-attaches
