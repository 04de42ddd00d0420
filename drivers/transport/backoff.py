"""Reconnect pacing shared by both transports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: initial, initial·factor, ... capped at maximum."""

    initial: float = 0.05
    maximum: float = 2.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.factor**attempt)


async def retry_until(
    attempt: Callable[[], Awaitable[T]],
    *,
    deadline: float,
    backoff: Backoff,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """Call `attempt` until it succeeds or `deadline` (time.monotonic) passes; the last
    error propagates. Sleeps between attempts follow `backoff` and never pass the deadline."""
    n = 0
    while True:
        try:
            return await attempt()
        except retry_on:
            pause = backoff.delay(n)
            n += 1
            if time.monotonic() + pause >= deadline:
                raise
            await asyncio.sleep(pause)
