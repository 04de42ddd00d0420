"""The engine: a line's tools pooled by kind, and the runners that take lots through them.

Lots are created by the lot service (controller/lots/service.py); the engine runs them:
`run_lot` drives one until it completes, holds, waits, pauses or aborts (runner.py). Many lots
run at once; a tool runs one job at a time (pool.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from controller.engine.pool import ToolPool
from controller.engine.progress import Notify, quiet
from controller.engine.runner import LotRunner
from controller.genealogy.db import Database
from controller.lots.areas import Areas
from controller.recipes.cache import Expansions
from drivers.base import ToolDriver
from drivers.errors import ToolError

log = structlog.get_logger("fabline.engine")


@dataclass
class Outcome:
    lot_id: str
    state: str
    hold_reason: str | None = None
    steps_run: int = 0
    units: dict[str, int] = field(default_factory=dict)
    hold_kind: str | None = None


@dataclass(frozen=True)
class EngineSettings:
    station: str = "station-1"
    retry_budget: float = 30.0  # seconds a tool may stay unreachable before the lot holds
    request_poll: float = 0.25  # how often a running lot looks for another process's request
    auto_confirm: bool = False  # confirm external steps at once with simulated data
    areas: Areas = field(default_factory=Areas)  # the line's areas: a lot leaves at a boundary


class Engine:
    def __init__(
        self,
        db: Database,
        drivers: Sequence[ToolDriver],
        settings: EngineSettings | None = None,
        notify: Notify = quiet,
        expansions: Expansions | None = None,
    ) -> None:
        self.db = db
        self.pool = ToolPool(drivers)
        self.settings = settings or EngineSettings()
        self.notify = notify
        self.expansions = expansions or Expansions()
        self._wakeups: dict[str, asyncio.Event] = {}
        # told after a step's SPC charts acted on a tool (an inhibit holds it out of the pool
        # first): the station refreshes what its tile shows
        self.on_spc: Callable[[str], None] = lambda _tool_id: None

    async def connect(self) -> dict[str, str | None]:
        """Connect every tool; a tool that is down now is retried when a step needs it."""

        async def one(d: ToolDriver) -> str | None:
            try:
                await d.connect()
                return None
            except ToolError as e:
                log.warning("engine.tool_unreachable", tool_id=d.tool_id, error=str(e))
                return str(e)

        drivers = list(self.pool.drivers.values())
        errors = await asyncio.gather(*(one(d) for d in drivers))
        return {d.tool_id: e for d, e in zip(drivers, errors, strict=True)}

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.pool.drivers.values()))

    def wakeup(self, lot_id: str) -> asyncio.Event:
        """Set when a request for the lot is written in this process: its runner looks at
        once instead of at its next poll."""
        return self._wakeups.setdefault(lot_id, asyncio.Event())

    def wake(self, lot_id: str) -> None:
        event = self._wakeups.get(lot_id)
        if event is not None:
            event.set()

    async def run_lot(self, lot_id: str) -> Outcome:
        """Drive a lot until it completes, holds, waits, pauses or aborts."""
        try:
            return await LotRunner(self, lot_id).run()
        finally:
            self._wakeups.pop(lot_id, None)

    async def run_lots(self, lot_ids: Sequence[str]) -> list[Outcome]:
        return list(await asyncio.gather(*(self.run_lot(i) for i in lot_ids)))
