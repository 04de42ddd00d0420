"""Fixtures of the controller's unit layer: a migrated SQLite database per test, and no
network, subprocess or simulated line anywhere.

The schema is migrated once per session into a template file (Alembic costs ~20 ms a run)
and each test gets an in-memory database loaded from it with SQLite's backup API (~1 ms; a
file copy costs ~15 ms more on this machine's disk, which syncs when the database closes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.genealogy.db import Database
from controller.lots import lease
from tests.unit.controller.rows import database_from


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "fabline.db"
    template = Database(f"sqlite:///{path}")
    template.migrate()
    template.close()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def db(migrated: Path) -> Iterator[Database]:
    """A fresh migrated database for the test, in memory."""
    database = database_from(migrated)
    yield database
    database.close()


@pytest.fixture(autouse=True)
def no_leases() -> Iterator[None]:
    """Each test starts with this process holding no lease (lease.HELD is per process)."""
    lease.HELD.clear()
    yield
    lease.HELD.clear()
