"""Database access: one engine, one DB thread, migrations.

All genealogy work runs in a single dedicated thread with the sync SQLAlchemy engine: writes
are serialised (what SQLite wants anyway), the event loop never blocks on the database, and
a transaction costs one thread hop instead of one per statement (aiosqlite's model). The same
code runs on PostgreSQL through psycopg.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import DatabaseError as SaDatabaseError
from sqlalchemy.orm import Session, sessionmaker

from controller.settings import settings
from drivers.errors import DatabaseError, FablineError, UsageError, shown

T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")


# Stations of a line started together on an empty database would create its tables twice:
# the first to migrate holds this advisory lock (PostgreSQL) to its commit, the others then
# find the schema at head.
MIGRATION_LOCK = 0x0FAB_11E0
CONNECT_TIMEOUT = 5  # seconds: a PostgreSQL address that accepts TCP and never answers
IDLE_IN_TRANSACTION_MS = 5000  # a session left idle inside a transaction is ended (below)


def default_url() -> str:
    url = settings().database_url
    if url:
        return url
    home = settings().home
    home.mkdir(parents=True, exist_ok=True)  # only fabline's own home is created
    return f"sqlite:///{home / 'fabline.db'}"


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// mean psycopg 3; a bare path means an SQLite file."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    try:
        u = make_url(normalise_url(url))
        backend = u.get_backend_name()
    except (ArgumentError, ValueError):
        raise UsageError(f"database URL {shown(url)!r} is not a URL or an SQLite path") from None
    if backend not in ("sqlite", "postgresql"):
        raise UsageError(
            f"database URL {shown(url)!r}: fabline keeps its genealogy in SQLite (a path or"
            " sqlite:///path) or PostgreSQL (postgresql://user@host/db)"
        )
    if backend == "sqlite":
        if u.database and u.database != ":memory:":
            folder = Path(u.database).parent
            if not folder.is_dir():
                raise UsageError(f"database {u.database}: folder {folder} does not exist")
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
    # JIT compiles recursive trace queries whose row estimates are wildly high: all cost.
    # A process paused or hung inside a transaction must not keep its row locks: a standby
    # taking over its lots skips (or waits on) locked rows, so the server ends such a session
    # after IDLE_IN_TRANSACTION_MS (a fabline transaction never waits between statements).
    options = f"-c jit=off -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    try:
        return create_engine(
            u,
            pool_pre_ping=True,
            connect_args={"options": options, "connect_timeout": CONNECT_TIMEOUT},
        )
    except (ArgumentError, NoSuchModuleError) as e:
        raise UsageError(f"database URL {shown(url)!r}: {e}") from None


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
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, "head")
            except CommandError as e:  # e.g. a revision this version does not know
                raise DatabaseError(
                    f"database {self.describe()} cannot be migrated by this fabline"
                    f" ({str(e).splitlines()[0]}): was it written by a newer version?"
                ) from None

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
        except (OperationalError, InterfaceError) as e:
            raise DatabaseError(f"database {self.describe()}: {_one_line(e.orig)}") from None
        except SQLAlchemyError as e:
            if isinstance(e.__cause__, FablineError):
                raise e.__cause__ from None
            if type(e) is SaDatabaseError:  # e.g. "file is not a database"
                raise DatabaseError(f"database {self.describe()}: {_one_line(e.orig)}") from None
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def _one_line(e: object) -> str:
    return " ".join(str(e).split())
