"""Which simulator class stands in for each tool kind, and which server fronts each protocol."""

from __future__ import annotations

import importlib

from drivers.interfaces import interface_for
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


def server_for(tool: SimTool) -> ToolServer:
    if tool.interface.protocol == "scpi":
        return ScpiServer(tool)
    return ModbusServer(tool)
