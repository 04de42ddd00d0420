"""SPC tables: a chart per (recipe, step, result, tool), its frozen limits, its points and the
rule violations they raised (docs/spc.md). The chart logic is controller/spc (pure); these rows
are what it is fed from and what it decided. Created by migration 0006.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from controller.genealogy.models import utcnow


class SpcChart(SQLModel, table=True):
    """One chart: its key, and its definition as the recipe declared it when it was made.
    `phase_start` is the first point the next phase I counts from (a re-baseline moves it)."""

    __tablename__ = "spc_chart"
    __table_args__ = (UniqueConstraint("recipe_id", "step_id", "result", "tool_id"),)
    id: int | None = Field(default=None, primary_key=True)
    recipe_id: str = Field(max_length=64)
    step_id: str = Field(max_length=64)
    result: str = Field(max_length=64)
    tool_id: str = Field(max_length=64, index=True)
    chart_type: str = Field(default="i-mr", max_length=8)
    subgroup_size: int = 1
    rule_set: str = Field(default="nelson", max_length=24)
    action: str = Field(default="warn", max_length=8)
    baseline_points: int = 20
    check_spread: bool = True
    unit: str = Field(default="", max_length=16)
    phase_start: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SpcLimits(SQLModel, table=True):
    """Frozen control limits; at most one current (not superseded) per chart. `since` is
    the first point they judge; the points before it kept the limits they were judged by."""

    __tablename__ = "spc_limits"
    __table_args__ = (
        Index(
            "ux_spc_limits_current",
            "chart_id",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    chart_id: int = Field(sa_column=Column(Integer, ForeignKey("spc_chart.id"), nullable=False))
    center: float
    sigma: float
    source: str = Field(max_length=16)  # phase-i, engineer
    basis: int = 0
    since: int = 0
    frozen_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    frozen_by: str = Field(max_length=128)
    superseded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SpcPoint(SQLModel, table=True):
    """One piece's point on a chart: the plotted value, its spread, and the limits it was
    judged by (None while phase I collects the baseline)."""

    __tablename__ = "spc_point"
    chart_id: int = Field(
        sa_column=Column(Integer, ForeignKey("spc_chart.id"), primary_key=True, nullable=False)
    )
    idx: int = Field(sa_column=Column(Integer, primary_key=True, nullable=False))
    limits_id: int | None = Field(default=None, foreign_key="spc_limits.id")
    value: float
    spread: float | None = None
    site_values: list[float] | None = Field(default=None, sa_column=Column(JSON))
    lot_id: str | None = Field(default=None, max_length=64)
    step_run_id: int | None = None
    job_id: str | None = Field(default=None, max_length=32)
    measured_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SpcViolation(SQLModel, table=True):
    """A rule a point violated, the OCAP action it took, and its acknowledgement."""

    __tablename__ = "spc_violation"
    __table_args__ = (Index("ix_spc_violation_chart", "chart_id", "idx"),)
    id: int | None = Field(default=None, primary_key=True)
    chart_id: int = Field(sa_column=Column(Integer, ForeignKey("spc_chart.id"), nullable=False))
    idx: int
    rule: str = Field(max_length=8)
    first_idx: int
    text: str
    action: str = Field(max_length=8)
    lot_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    acknowledged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    acknowledged_by: str | None = Field(default=None, max_length=128)
    note: str | None = None
