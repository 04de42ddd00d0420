"""work pieces: a step run's pieces and each piece's results

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("step_run") as batch:
        batch.add_column(
            sa.Column("piece", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True)
        )
        batch.add_column(sa.Column("piece_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "run_piece",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("step_run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["step_run_id"], ["step_run.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run_piece") as batch:
        batch.create_index("ix_run_piece_run_unit", ["step_run_id", "unit_id"])


def downgrade() -> None:
    with op.batch_alter_table("run_piece") as batch:
        batch.drop_index("ix_run_piece_run_unit")
    op.drop_table("run_piece")
    with op.batch_alter_table("step_run") as batch:
        batch.drop_column("piece_count")
        batch.drop_column("piece")
