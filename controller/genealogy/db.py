"""Database access: one engine, one DB thread, migrations.

All genealogy work runs in a single dedicated thread with the sync SQLAlchemy engine: writes
are serialised (what SQLite wants anyway), the event loop never blocks on the database, and
a transaction costs one thread hop instead of one per statement (aiosqlite's model). The same
code runs on PostgreSQL through psycopg.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller.lines import fabline_home
from drivers.errors import DatabaseError, FablineError

T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")


def default_url() -> str:
    return os.environ.get("FABLINE_DATABASE_URL") or f"sqlite:///{fabline_home() / 'fabline.db'}"


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// mean psycopg 3; a bare path means an SQLite file."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    u = make_url(normalise_url(url))
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # SQLite ignores FKs unless asked, per connection
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    # JIT compiles recursive trace queries whose row estimates are wildly high: all cost
    return create_engine(u, pool_pre_ping=True, connect_args={"options": "-c jit=off"})


class Database:
    """The genealogy database. `await db.run(fn)` runs `fn(session)` in one transaction in
    the DB thread; `db.run_sync(fn)` does the same from plain code."""

    def __init__(self, url: str | None = None) -> None:
        self.url = normalise_url(url or default_url())
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fabline-db")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration."""
        self.run_sync_raw(self._upgrade)

    def _upgrade(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    async def run(self, fn: Callable[[Session], T]) -> T:
        ctx = contextvars.copy_context()  # keep log context across the thread hop
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, ctx.run, self._transaction, fn)

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        return self._executor.submit(self._transaction, fn).result()

    def run_sync_raw(self, fn: Callable[[], T]) -> T:
        return self._executor.submit(self._guard, fn).result()

    def _transaction(self, fn: Callable[[Session], T]) -> T:
        def body() -> T:
            with self._sessions() as session, session.begin():
                return fn(session)

        return self._guard(body)

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except OperationalError as e:
            raise DatabaseError(f"database {self.describe()}: {e.orig}") from None
        except SQLAlchemyError as e:
            if isinstance(e.__cause__, FablineError):
                raise e.__cause__ from None
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
