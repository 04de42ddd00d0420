"""operators, sessions, audit trail (append-only), alarm acknowledgements, tool context and
inhibits; the hold code on the lot

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
APPEND_ONLY = "audit rows are append-only"


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("name", S(length=64), nullable=False),
        sa.Column("role", S(length=16), nullable=False),
        sa.Column("password_hash", S(length=255), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("disabled_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "web_session",
        sa.Column("token_hash", S(length=64), nullable=False),
        sa.Column("account", S(length=64), nullable=False),
        sa.Column("csrf", S(length=64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_session_account", "web_session", ["account"])
    op.create_table(
        "audit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", S(length=128), nullable=False),
        sa.Column("role", S(length=16), nullable=False),
        sa.Column("action", S(length=32), nullable=False),
        sa.Column("target", S(length=128), nullable=False),
        sa.Column("reason_code", S(length=32), nullable=True),
        sa.Column("comment", S(), nullable=True),
        sa.Column("result", S(length=8), nullable=False),
        sa.Column("message", S(), nullable=False),
        sa.Column("event_id", S(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_target", "audit", ["target", "id"])
    op.create_table(
        "alarm_ack",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_event", BIG_ID, nullable=False),
        sa.Column("tool_id", S(length=64), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("by", S(length=128), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("comment", S(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alarm_event"),
    )
    op.create_table(
        "tool_context",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", S(length=64), nullable=False),
        sa.Column("e10", S(length=24), nullable=True),
        sa.Column("substate", S(length=32), nullable=True),
        sa.Column("reason", S(length=64), nullable=True),
        sa.Column("context", S(), nullable=True),
        sa.Column("by", S(length=128), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tool_context_tool_id", "tool_context", ["tool_id"])
    op.create_table(
        "tool_inhibit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", S(length=64), nullable=False),
        sa.Column("reason", S(), nullable=False),
        sa.Column("by", S(length=128), nullable=False),
        sa.Column("source", S(length=8), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("released_at", WHEN, nullable=True),
        sa.Column("released_by", S(length=128), nullable=True),
        sa.Column("release_note", S(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tool_inhibit_tool_id", "tool_inhibit", ["tool_id"])
    with op.batch_alter_table("lot") as batch:
        batch.add_column(sa.Column("hold_code", S(length=32), nullable=True))
    # the station finds each tool's last state and the alarm history by event type
    op.create_index("ix_outbox_type_id", "outbox", ["type", "id"])
    # the audit trail is append-only for everyone, fabline included
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
            " FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_no_{what.lower()} BEFORE {what} ON audit"
                f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_append_only ON audit")
        op.execute("DROP FUNCTION audit_append_only()")
    op.drop_index("ix_outbox_type_id", "outbox")
    with op.batch_alter_table("lot") as batch:
        batch.drop_column("hold_code")
    for table in ("tool_inhibit", "tool_context", "alarm_ack", "audit", "web_session", "account"):
        op.drop_table(table)
