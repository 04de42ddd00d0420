"""Shared fixtures: one simulated line for the whole session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from drivers.line import Line
from simulators.line import SimLine, default_line
from tests.helpers import TEST_TIME_SCALE


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sim_line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=TEST_TIME_SCALE, seed=7) as line:
        yield line


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def line(sim_line: SimLine) -> Line:
    return sim_line.describe()
