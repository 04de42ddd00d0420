"""Each wire-test module talks to a simulated line of its own: the literal registers and
replies it checks assume fresh tools (consumables full, no job, no alarm, no fault), whatever
other tests did to the session's line before it (the suite runs in several processes, so
which tests share a line is not fixed). `sim_line` is that line, for faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from drivers.line import Line
from simulators.line import SimLine, default_line
from tests.helpers import TEST_TIME_SCALE


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sim_line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=TEST_TIME_SCALE, seed=7) as sim:
        yield sim


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def line(sim_line: SimLine) -> Line:
    return sim_line.describe()
