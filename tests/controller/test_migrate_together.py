"""Stations of a line started together on an empty PostgreSQL database: each migrates it at
start, and none fails on a table another has just created (controller/genealogy/db.py
MIGRATION_LOCK)."""

from __future__ import annotations

import threading

from sqlalchemy import text

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
