"""lot operations: links between lots for split, merge and rework loops

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 07:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lot_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("parent_lot", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("child_lot", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("to_step", sa.Integer(), nullable=True),
        sa.Column("units", sa.JSON(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["child_lot"], ["lot.id"]),
        sa.ForeignKeyConstraint(["parent_lot"], ["lot.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lot_link") as batch:
        batch.create_index(batch.f("ix_lot_link_child_lot"), ["child_lot"], unique=False)
        batch.create_index(batch.f("ix_lot_link_parent_lot"), ["parent_lot"], unique=False)


def downgrade() -> None:
    op.drop_table("lot_link")  # its indexes go with it
