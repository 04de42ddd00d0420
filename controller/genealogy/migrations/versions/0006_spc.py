"""SPC: charts, frozen limits, points, violations; what raised a tool inhibit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "spc_chart",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipe_id", S(length=64), nullable=False),
        sa.Column("step_id", S(length=64), nullable=False),
        sa.Column("result", S(length=64), nullable=False),
        sa.Column("tool_id", S(length=64), nullable=False),
        sa.Column("chart_type", S(length=8), nullable=False),
        sa.Column("subgroup_size", sa.Integer(), nullable=False),
        sa.Column("rule_set", S(length=24), nullable=False),
        sa.Column("action", S(length=8), nullable=False),
        sa.Column("baseline_points", sa.Integer(), nullable=False),
        sa.Column("check_spread", sa.Boolean(), nullable=False),
        sa.Column("unit", S(length=16), nullable=False),
        sa.Column("phase_start", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recipe_id", "step_id", "result", "tool_id"),
    )
    op.create_index("ix_spc_chart_tool_id", "spc_chart", ["tool_id"])
    op.create_table(
        "spc_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chart_id", sa.Integer(), nullable=False),
        sa.Column("center", sa.Float(), nullable=False),
        sa.Column("sigma", sa.Float(), nullable=False),
        sa.Column("source", S(length=16), nullable=False),
        sa.Column("basis", sa.Integer(), nullable=False),
        sa.Column("since", sa.Integer(), nullable=False),
        sa.Column("frozen_at", WHEN, nullable=False),
        sa.Column("frozen_by", S(length=128), nullable=False),
        sa.Column("superseded_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["chart_id"], ["spc_chart.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    # one current set of limits per chart
    op.create_index(
        "ux_spc_limits_current",
        "spc_limits",
        ["chart_id"],
        unique=True,
        sqlite_where=sa.text("superseded_at IS NULL"),
        postgresql_where=sa.text("superseded_at IS NULL"),
    )
    op.create_table(
        "spc_point",
        sa.Column("chart_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("limits_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("spread", sa.Float(), nullable=True),
        sa.Column("site_values", sa.JSON(), nullable=True),
        sa.Column("lot_id", S(length=64), nullable=True),
        sa.Column("step_run_id", sa.Integer(), nullable=True),
        sa.Column("job_id", S(length=32), nullable=True),
        sa.Column("measured_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["chart_id"], ["spc_chart.id"]),
        sa.ForeignKeyConstraint(["limits_id"], ["spc_limits.id"]),
        sa.PrimaryKeyConstraint("chart_id", "idx"),
    )
    op.create_table(
        "spc_violation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chart_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("rule", S(length=8), nullable=False),
        sa.Column("first_idx", sa.Integer(), nullable=False),
        sa.Column("text", S(), nullable=False),
        sa.Column("action", S(length=8), nullable=False),
        sa.Column("lot_id", S(length=64), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("acknowledged_at", WHEN, nullable=True),
        sa.Column("acknowledged_by", S(length=128), nullable=True),
        sa.Column("note", S(), nullable=True),
        sa.ForeignKeyConstraint(["chart_id"], ["spc_chart.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_spc_violation_chart", "spc_violation", ["chart_id", "idx"])
    with op.batch_alter_table("tool_inhibit") as batch:
        batch.add_column(sa.Column("ref", S(length=300), nullable=True))
        batch.add_column(sa.Column("violation_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tool_inhibit") as batch:
        batch.drop_column("violation_id")
        batch.drop_column("ref")
    op.drop_index("ix_spc_violation_chart", table_name="spc_violation")
    op.drop_table("spc_violation")
    op.drop_table("spc_point")
    op.drop_index("ux_spc_limits_current", table_name="spc_limits")
    op.drop_table("spc_limits")
    op.drop_index("ix_spc_chart_tool_id", table_name="spc_chart")
    op.drop_table("spc_chart")
