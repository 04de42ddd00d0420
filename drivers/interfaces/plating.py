"""PLACEHOLDER for the plating interface: being written now; replace this whole file."""

from __future__ import annotations

from drivers.interface import Operation, Param, Result, ToolInterface

PLATING = ToolInterface(
    kind="plating",
    protocol="scpi",
    title="plating (placeholder)",
    vendor="FABLINE-SIM",
    model="PLACEHOLDER",
    operations=(Operation("noop", 1, "placeholder", (Param("x", "", 0, 1, default=0.0),), (Result("y"),)),),
    alarms=(),
    consumables=(),
)
