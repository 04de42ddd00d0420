"""Which simulator class stands in for each tool kind (found by convention), and which server
fronts each protocol."""

from __future__ import annotations

import importlib

from drivers.interfaces import interface_for
from drivers.line import GemSettings
from simulators.gem_server import GemServer
from simulators.modbus_server import ModbusServer
from simulators.scpi_server import ScpiServer
from simulators.server import ToolServer
from simulators.tool import SimTool


def sim_class(kind: str) -> type[SimTool]:
    """The simulator of a kind: the `SimTool` class in `simulators/<kind>.py` whose
    interface is the kind's (adding a kind needs no line here)."""
    interface = interface_for(kind)  # a clear error for an unknown kind
    module = importlib.import_module(f"simulators.{kind}")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, SimTool)
            and getattr(value, "interface", None) is interface
        ):
            return value
    raise LookupError(f"simulators/{kind}.py has no SimTool for the {kind} interface")


def server_for(
    tool: SimTool, protocol: str | None = None, gem: GemSettings | None = None
) -> ToolServer:
    """The server for a tool: its kind's published protocol, or `protocol` (e.g. gem)."""
    if (protocol or tool.interface.protocol) == "gem":
        return GemServer(tool, gem)
    if tool.interface.protocol == "scpi":
        return ScpiServer(tool)
    return ModbusServer(tool)
