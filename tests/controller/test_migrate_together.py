"""Migrations: stations of a line started together on an empty PostgreSQL database each
migrate it at start, and none fails on a table another has just created (controller/genealogy/
db.py MIGRATION_LOCK); every revision goes down and up again on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from controller.genealogy.db import Database
from tests.services import fresh_postgres

STATIONS = 4


def test_stations_migrating_one_empty_database_at_once_all_start() -> None:
    with fresh_postgres() as url:
        dbs = [Database(url) for _ in range(STATIONS)]
        go = threading.Barrier(STATIONS)
        failed: list[BaseException] = []

        def start(db: Database) -> None:
            go.wait()
            try:
                db.migrate()
            except BaseException as e:  # collected for the assertion below
                failed.append(e)

        threads = [threading.Thread(target=start, args=(db,)) for db in dbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        try:
            assert failed == []
            with dbs[0].engine.connect() as c:
                heads = c.execute(text("SELECT version_num FROM alembic_version")).all()
            assert len(heads) == 1
        finally:
            for db in dbs:
                db.engine.dispose()


def _alembic(db: Database, action: str, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    from controller.genealogy.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, target)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_migration_goes_down_to_nothing_and_up_again(backend: str, tmp_path: Path) -> None:
    """An operator rolling fabline back runs `alembic downgrade`: every revision must undo
    itself on both databases, and the schema must come back whole."""
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'm.db'}"
            if backend == "sqlite"
            else stack.enter_context(fresh_postgres())
        )
        db = Database(url)
        stack.callback(db.engine.dispose)
        db.migrate()
        tables = set(inspect(db.engine).get_table_names())
        _alembic(db, "downgrade", "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        _alembic(db, "upgrade", "head")
        assert set(inspect(db.engine).get_table_names()) == tables
