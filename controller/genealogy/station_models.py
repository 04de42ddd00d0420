"""The station's own tables: operators and their sessions, the audit trail, alarm
acknowledgements, and what technicians entered about their tools (E10 context, inhibits).

Registered with the genealogy schema (controller/genealogy/models.py imports this module);
created by migration 0003. The audit table is append-only: the migration adds triggers that
refuse UPDATE and DELETE on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer
from sqlmodel import Field, SQLModel

from controller.genealogy.models import utcnow

BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class Account(SQLModel, table=True):
    """A person who logs in to the station: a name, a role, an argon2 hash."""

    __tablename__ = "account"
    name: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    disabled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class WebSession(SQLModel, table=True):
    """A logged-in browser: only the SHA-256 of its cookie is stored, so a copy of the
    database opens no session; `csrf` is the token its unsafe requests must carry."""

    __tablename__ = "web_session"
    token_hash: str = Field(primary_key=True, max_length=64)
    account: str = Field(foreign_key="account.name", max_length=64, index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


class Audit(SQLModel, table=True):
    """One operator action: who, with which role, what, on what, why, and how it ended.
    Written in the transaction of its effect (a refused or denied action in its own)."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_target", "target", "id"),)
    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    actor: str = Field(max_length=128)
    role: str = Field(max_length=16)
    action: str = Field(max_length=32)
    target: str = Field(max_length=128)
    reason_code: str | None = Field(default=None, max_length=32)
    comment: str | None = None
    result: str = Field(max_length=8)  # ok, denied, refused
    message: str
    event_id: str | None = Field(default=None, max_length=36)  # its MES event


class AlarmAck(SQLModel, table=True):
    """An operator saw a tool alarm: which one (the outbox id of its alarm_set), who, when."""

    __tablename__ = "alarm_ack"
    id: int | None = Field(default=None, primary_key=True)
    alarm_event: int = Field(sa_column=Column(BIG_ID, nullable=False, unique=True))
    tool_id: str = Field(max_length=64)
    code: int
    by: str = Field(max_length=128)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    comment: str | None = None


class ToolContext(SQLModel, table=True):
    """What a technician entered about a tool's E10 state (PM, engineering, a repair...);
    `e10` None hands the state back to the tool's own (productive/standby/down)."""

    __tablename__ = "tool_context"
    id: int | None = Field(default=None, primary_key=True)
    tool_id: str = Field(max_length=64, index=True)
    e10: str | None = Field(default=None, max_length=24)
    substate: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=64)
    context: str | None = None
    by: str = Field(max_length=128)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ToolInhibit(SQLModel, table=True):
    """A tool that takes no new jobs until released (controller/equipment/inhibit.py)."""

    __tablename__ = "tool_inhibit"
    id: int | None = Field(default=None, primary_key=True)
    tool_id: str = Field(max_length=64, index=True)
    reason: str
    by: str = Field(max_length=128)
    source: str = Field(default="manual", max_length=8)  # manual, spc
    ref: str | None = Field(default=None, max_length=300)  # what raised it: the SPC chart key
    violation_id: int | None = None  # the SPC violation that raised it
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    released_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    released_by: str | None = Field(default=None, max_length=128)
    release_note: str | None = None
