"""PLACEHOLDER for the bonder interface: being written now; replace this whole file."""

from __future__ import annotations

from drivers.interface import Operation, Param, Result, ToolInterface

BONDER = ToolInterface(
    kind="bonder",
    protocol="modbus",
    title="bonder (placeholder)",
    vendor="FABLINE-SIM",
    model="PLACEHOLDER",
    operations=(Operation("noop", 1, "placeholder", (Param("x", "", 0, 1, default=0.0),), (Result("y"),)),),
    alarms=(),
    consumables=(),
)
