"""Which simulator class stands in for each tool kind, and which server fronts each protocol."""

from __future__ import annotations

import importlib

from drivers.interfaces import interface_for
from drivers.line import GemSettings
from simulators.gem_server import GemServer
from simulators.modbus_server import ModbusServer
from simulators.scpi_server import ScpiServer
from simulators.server import ToolServer
from simulators.tool import SimTool

_SIMS: dict[str, tuple[str, str]] = {
    "sputter": ("simulators.sputter", "SputterSim"),
    "plating": ("simulators.plating", "PlatingSim"),
    "bonder": ("simulators.bonder", "BonderSim"),
    "dicing": ("simulators.dicing", "DicingSim"),
    "ball": ("simulators.ball", "BallSim"),
    "coater": ("simulators.coater", "CoaterSim"),
    "mold": ("simulators.mold", "MoldSim"),
    "grinder": ("simulators.grinder", "GrinderSim"),
    "litho": ("simulators.litho", "LithoSim"),
    "wirebonder": ("simulators.wirebonder", "WirebonderSim"),
    "clean": ("simulators.clean", "CleanSim"),
}


def sim_class(kind: str) -> type[SimTool]:
    interface_for(kind)  # a clear error for an unknown kind
    module, attr = _SIMS[kind]
    cls: type[SimTool] = getattr(importlib.import_module(module), attr)
    return cls


def server_for(
    tool: SimTool, protocol: str | None = None, gem: GemSettings | None = None
) -> ToolServer:
    """The server for a tool: its kind's published protocol, or `protocol` (e.g. gem)."""
    if (protocol or tool.interface.protocol) == "gem":
        return GemServer(tool, gem)
    if tool.interface.protocol == "scpi":
        return ScpiServer(tool)
    return ModbusServer(tool)
