"""One station process for the station's HTTP, browser and fuzz tests (each test makes its
own lots, so they share it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.web.station import Running, station


@pytest.fixture(scope="session")
def web_station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from station(tmp_path_factory.mktemp("station"))
