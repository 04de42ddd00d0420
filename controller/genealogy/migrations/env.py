"""Alembic environment: run against the connection fabline hands over (Database.migrate),
or against FABLINE_DATABASE_URL when run with the alembic command."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import controller.genealogy.models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    from controller.genealogy.db import default_url, make_engine

    with make_engine(default_url()).begin() as conn:
        run(conn)
else:
    run(connection)
