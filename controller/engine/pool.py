"""Tools pooled by kind: a tool runs one job at a time; waiting lots get tools in order of
priority (higher first), then age (older first). An inhibited tool is held out: no lot gets
it until it is let in again (a job running on it finishes first). A taker may name the
exact tool (a job to re-attach to) or only prefer one (a piece's tool in slot order): a
preference gives way to any tool that fits while the preferred one is held out."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from drivers.base import ToolDriver
from drivers.errors import NoToolFits, ParameterError

Fits = Callable[[ToolDriver], bool]


@dataclass(order=True)
class _Waiter:
    key: tuple[int, float, int]
    tool_id: str | None = field(compare=False)
    fits: Fits | None = field(compare=False)
    future: asyncio.Future[ToolDriver] = field(compare=False)
    prefer: str | None = field(default=None, compare=False)

    def could_use(self, driver: ToolDriver) -> bool:
        """The tool is the one asked for (if any) and fits the step."""
        return (self.tool_id is None or driver.tool_id == self.tool_id) and (
            self.fits is None or self.fits(driver)
        )

    def wants(self, driver: ToolDriver, out: set[str]) -> bool:
        """It could use the tool, and the tool is the preferred one unless that is held out."""
        if self.prefer is not None and self.prefer not in out and driver.tool_id != self.prefer:
            return False
        return self.could_use(driver)


class ToolPool:
    def __init__(self, drivers: Iterable[ToolDriver]) -> None:
        self.drivers = {d.tool_id: d for d in drivers}
        self._free: dict[str, list[ToolDriver]] = {}
        for d in self.drivers.values():
            self._free.setdefault(d.kind, []).append(d)
        self._waiting: dict[str, list[_Waiter]] = {}
        self._order = itertools.count()
        self._out: set[str] = set()  # inhibited: given to no lot

    def hold_out(self, tool_id: str) -> None:
        """Give the tool to no lot from now on (a job running on it is not stopped); those
        waiting for it by preference take any free tool that fits."""
        self._out.add(tool_id)
        free = self._free.get(self.drivers[tool_id].kind, [])
        for driver in list(free):
            if driver.tool_id not in self._out:
                free.remove(driver)
                self.give_back(driver)  # to a waiter who wants it now, else free again

    def let_in(self, tool_id: str) -> None:
        """The tool serves lots again: a waiting lot gets it at once if it is free."""
        if tool_id not in self._out:
            return
        self._out.discard(tool_id)
        driver = self.drivers[tool_id]
        free = self._free.get(driver.kind, [])
        if driver in free:
            free.remove(driver)
            self.give_back(driver)

    def held_out(self, tool_id: str) -> bool:
        return tool_id in self._out

    def kinds(self) -> set[str]:
        return {d.kind for d in self.drivers.values()}

    async def take(
        self,
        kind: str,
        *,
        priority: int = 0,
        since: float = 0.0,
        tool_id: str | None = None,
        fits: Fits | None = None,
        prefer: str | None = None,
    ) -> ToolDriver:
        """A free tool of `kind` (exactly `tool_id`, if given, held out or not; `prefer` while
        it is not held out; one that `fits`, if given), waiting in line for one; hand it back
        with `give_back`. NoToolFits if no tool of the line could ever serve."""
        driver = self.take_now(kind, tool_id=tool_id, fits=fits, prefer=prefer)
        if driver is not None:
            return driver
        loop = asyncio.get_running_loop()
        key = (-priority, since, next(self._order))
        waiter = _Waiter(key, tool_id, fits, loop.create_future(), prefer)
        heapq.heappush(self._waiting.setdefault(kind, []), waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.give_back(waiter.future.result())
            else:
                self._waiting[kind].remove(waiter)
                heapq.heapify(self._waiting[kind])
            raise

    def take_now(
        self,
        kind: str,
        *,
        tool_id: str | None = None,
        fits: Fits | None = None,
        prefer: str | None = None,
    ) -> ToolDriver | None:
        """A free tool as `take` would give, or None rather than wait."""
        if tool_id is not None and tool_id not in self.drivers:
            raise ParameterError(f"the line has no tool {tool_id!r}")
        if kind not in self.kinds():
            raise NoToolFits(f"the line has no {kind} tool (tools: {', '.join(self.drivers)})")
        probe = _Waiter(
            (0, 0.0, 0), tool_id, fits, asyncio.get_running_loop().create_future(), prefer
        )
        if not any(probe.could_use(d) for d in self.drivers.values() if d.kind == kind):
            raise NoToolFits(f"no {kind} tool of the line is set up for this step")
        return self._take(kind, probe)

    def _take(self, kind: str, waiter: _Waiter) -> ToolDriver | None:
        free = self._free.get(kind, [])
        for i, d in enumerate(free):
            if self._may_serve(d, waiter) and waiter.wants(d, self._out):
                return free.pop(i)
        return None

    def _may_serve(self, driver: ToolDriver, waiter: _Waiter) -> bool:
        """A held-out tool serves only who asks for it by id: a job already on it is
        collected (re-attached after a restart); no new job starts there."""
        return driver.tool_id not in self._out or waiter.tool_id == driver.tool_id

    def give_back(self, driver: ToolDriver) -> None:
        waiters = self._waiting.get(driver.kind, [])
        for w in sorted(waiters):
            if w.future.done() or not self._may_serve(driver, w):
                continue
            if w.wants(driver, self._out):
                waiters.remove(w)
                heapq.heapify(waiters)
                w.future.set_result(driver)
                return
        self._free.setdefault(driver.kind, []).append(driver)
