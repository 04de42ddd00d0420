"""Shared fixtures: one simulated line for the whole session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from drivers.line import Line
from simulators.line import SimLine, default_line
from tests.helpers import TEST_TIME_SCALE
from tests.services import fresh_postgres


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sim_line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=TEST_TIME_SCALE, seed=7) as line:
        yield line


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def line(sim_line: SimLine) -> Line:
    return sim_line.describe()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh genealogy database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'fabline.db'}"
    else:
        with fresh_postgres() as url:
            yield url
