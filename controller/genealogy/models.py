"""The genealogy schema (SQLModel): lots, units, edges, step runs, the MES outbox.

Every traceable thing — wafer, panel, strip, stack, assembly, die, package, and consumable
lot — is a row of `unit`; `edge` links parent to child (merge, split, consume) and names the
step run that made it, so a backward or forward trace is one recursive query. Units are
processed lot by lot: a unit's step history is the step runs of its lot between the step that
created it (`created_step`) and the one that merged, split or consumed it (`ended_step`).
Schema changes go through the Alembic migrations in `migrations/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

# 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-numbered rowid
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

LOT_STATES = (
    "queued", "running", "paused", "waiting", "held", "completed", "aborted", "scrapped",
    "merged",
)  # fmt: skip
"""waiting: at an external step until its confirmation arrives (not a problem, not a hold);
merged: its units joined another lot (a lot operation)."""

STEP_STATES = ("started", "done", "alarm", "failed", "aborted", "lost", "waiting", "confirmed")
"""started: intent persisted (the job may or may not have reached the tool); lost: the tool
had no record of the job after a restart; waiting/confirmed: external steps."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class RecipeVersion(SQLModel, table=True):
    """The exact recipe a lot runs with, so a restart re-expands the same steps."""

    __tablename__ = "recipe_version"
    hash: str = Field(primary_key=True, max_length=32)
    recipe_id: str = Field(max_length=64, index=True)
    version: int
    status: str = Field(max_length=16)
    text: str
    stored_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Lot(SQLModel, table=True):
    __tablename__ = "lot"
    __table_args__ = (Index("ix_lot_area_state", "area", "state"),)
    id: str = Field(primary_key=True, max_length=64)
    recipe_id: str = Field(max_length=64)
    recipe_version: int
    recipe_hash: str = Field(foreign_key="recipe_version.hash", max_length=32)
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    state: str = Field(max_length=16, index=True)
    hold_reason: str | None = None
    hold_kind: str | None = Field(default=None, max_length=16)  # alarm, out_of_spec, operator...
    hold_code: str | None = Field(default=None, max_length=32)  # an operator's hold reason code
    priority: int = 0
    next_step: int = 0  # index of the next step of the expansion to run
    step_count: int = 0
    station: str = Field(default="", max_length=64)
    owner: str | None = Field(default=None, max_length=128)  # host:pid of the driving controller
    # the owner's lease (controller/lots/lease.py): raised at each take, expiry by the DB clock
    lease_epoch: int = 0
    lease_expires: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    area: str = Field(default="", max_length=32)  # the line area of its next step ("": any)
    request: str | None = Field(default=None, max_length=16)  # hold/pause/abort asked of the owner
    request_reason: str | None = None
    request_kind: str | None = Field(default=None, max_length=16)
    event_seq: int = 0  # last MES sequence number used for this lot
    # supply input -> the unit of its upstream lot (one unit, shared by every lot drawing on it)
    supplies: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Unit(SQLModel, table=True):
    __tablename__ = "unit"
    __table_args__ = (Index("ix_unit_lot_kind", "lot_id", "kind"),)
    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    name: str = Field(max_length=96, unique=True)
    kind: str = Field(max_length=16)
    lot_id: str | None = Field(default=None, foreign_key="lot.id", max_length=64)
    slot: int | None = None
    die_x: int | None = None  # position on its wafer or stack
    die_y: int | None = None
    unit_x: int | None = None  # position on its panel or strip
    unit_y: int | None = None
    bin: str | None = Field(default=None, max_length=16)  # good / reject
    bin_reason: str | None = None
    material: str | None = None
    state: str = Field(default="active", max_length=16)  # active, merged, split, consumed, scrapped
    created_step: int = -1  # step index that created it (-1: lot input or consumable lot)
    ended_step: int | None = None  # step index that merged, split or consumed it
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class Edge(SQLModel, table=True):
    __tablename__ = "edge"
    __table_args__ = (
        Index("ix_edge_child_parent", "child_id", "parent_id"),
        Index("ix_edge_parent_child", "parent_id", "child_id"),
    )
    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    parent_id: int = Field(sa_column=Column(BIG_ID, ForeignKey("unit.id"), nullable=False))
    child_id: int = Field(sa_column=Column(BIG_ID, ForeignKey("unit.id"), nullable=False))
    kind: str = Field(max_length=8)  # merge, split, consume
    step_run_id: int | None = Field(default=None, foreign_key="step_run.id")


class LotLink(SQLModel, table=True):
    """A lot operation between lots, for genealogy: a split (parent -> its child lot), a
    merge (each lot merged -> the lot kept) or a rework loop (the lot -> itself, from step
    `step_index` back to `to_step`). `units` are the ids of the units that moved: a trace
    reads a moved unit's earlier steps from the lot it came from, up to `step_index`."""

    __tablename__ = "lot_link"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8)  # split, merge, rework
    parent_lot: str = Field(foreign_key="lot.id", max_length=64, index=True)
    child_lot: str = Field(foreign_key="lot.id", max_length=64, index=True)
    step_index: int  # the lots' next step when it happened (rework: the step it left)
    to_step: int | None = None  # rework: the step it re-entered at
    units: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class StepRun(SQLModel, table=True):
    __tablename__ = "step_run"
    __table_args__ = (UniqueConstraint("lot_id", "step_index", "attempt"),)
    id: int | None = Field(default=None, primary_key=True)
    lot_id: str = Field(foreign_key="lot.id", max_length=64, index=True)
    step_index: int
    step_id: str = Field(max_length=96)
    attempt: int = 1
    kind: str = Field(max_length=8)  # tool, external
    tool_id: str | None = Field(default=None, max_length=64)
    tool_kind: str | None = Field(default=None, max_length=16)
    operation: str | None = Field(default=None, max_length=32)
    job_id: str | None = Field(default=None, max_length=32, unique=True)
    recipe_id: str = Field(max_length=64)
    recipe_hash: str = Field(max_length=32)
    state: str = Field(max_length=16)
    setpoints: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    results: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    message: str | None = None
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # the job's work pieces (controller/engine/pieces.py): 0 for a job on the whole lot;
    # `piece` names its first piece (a wafer, strip, or the first unit of a boat). `attempt`
    # numbers the step's runs, whatever piece each ran
    piece: str | None = Field(default=None, max_length=96)
    piece_count: int = 0


class RunPiece(SQLModel, table=True):
    """One work piece of a step run's job, with its own results: a wafer's, a strip's, a
    unit's at its boat position (`position`, 1.. in load order)."""

    __tablename__ = "run_piece"
    __table_args__ = (Index("ix_run_piece_run_unit", "step_run_id", "unit_id"),)
    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    step_run_id: int = Field(foreign_key="step_run.id")
    unit_id: int = Field(sa_column=Column(BIG_ID, ForeignKey("unit.id"), nullable=False))
    position: int = 1
    results: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class ConsumableLoad(SQLModel, table=True):
    """Which consumable lot (a unit of kind `consumable`) is loaded on which tool."""

    __tablename__ = "consumable_load"
    id: int | None = Field(default=None, primary_key=True)
    tool_id: str = Field(max_length=64, index=True)
    consumable: str = Field(max_length=32)
    unit_id: int = Field(sa_column=Column(BIG_ID, ForeignKey("unit.id"), nullable=False))
    loaded_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    unloaded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Outbox(SQLModel, table=True):
    """MES events, written in the same transaction as what they report; the MES relay
    publishes them in id order and marks them sent once the broker acknowledged."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_type_id", "type", "id"),)
    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    event_id: str = Field(max_length=36, unique=True)
    lot_id: str | None = Field(default=None, max_length=64, index=True)
    seq: int | None = None
    type: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    sent_at: datetime | None = Field(default=None, index=True, sa_type=DateTime(timezone=True))


class MesCommand(SQLModel, table=True):
    """Every MES command received, with the reply it got: a repeated command id is
    answered again from here instead of being executed twice."""

    __tablename__ = "mes_command"
    command_id: str = Field(primary_key=True, max_length=64)
    client: str | None = Field(default=None, max_length=64)
    command: str | None = Field(default=None, max_length=16)
    lot_id: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=16)  # accepted / rejected
    reason: str | None = None
    received_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Station(SQLModel, table=True):
    """A station process serving this database: who it is, which tools it drives, and when
    it last said it is alive. A terminal command for a lot of a live station hands the lot
    to it instead of starting a second controller on the same tools."""

    __tablename__ = "station"
    name: str = Field(primary_key=True, max_length=64)
    host: str = Field(max_length=255)
    pid: int
    tools: list[str] = Field(default_factory=list, sa_column=Column(JSON))  # id@address
    area: str = Field(default="", max_length=32)  # the line area it serves ("": its own lots)
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    seen_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class LineArea(SQLModel, table=True):
    """Which area of the line runs a tool kind (controller/lots/areas.py): the same for every
    station, recorded by the first one started with areas."""

    __tablename__ = "line_area"
    kind: str = Field(primary_key=True, max_length=32)
    area: str = Field(max_length=32)


class Lease(SQLModel, table=True):
    """A lease on something one process of the line does at a time (controller/lots/lease.py
    NamedLease): serving an area (`area:<name>`, so two stations never drive the same tools)
    or relaying the outbox to the broker (`relay`, so events go out once and in order)."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True, max_length=48)
    station: str = Field(max_length=64)
    holder: str | None = Field(default=None, max_length=128)  # host:pid
    epoch: int = 0
    expires: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


import controller.genealogy.spc_models  # noqa: E402  (registers the SPC tables)
import controller.genealogy.station_models  # noqa: E402, F401  (registers the station's tables)
