"""Make the right driver for a tool entry of a line."""

from __future__ import annotations

from drivers.base import ToolDriver
from drivers.gem_driver import GemDriver
from drivers.interfaces import interface_for
from drivers.line import ToolEntry
from drivers.modbus_driver import ModbusDriver
from drivers.scpi_driver import ScpiDriver
from drivers.transport.scpi import socket_resource


def make_driver(entry: ToolEntry, **options: float) -> ToolDriver:
    """Driver for one tool; `options` are ToolDriver settings (timeout, poll_max, ...)."""
    iface = interface_for(entry.kind)
    if entry.protocol == "gem":
        return GemDriver(entry.id, iface, entry.host, entry.port, entry.gem, **options)
    if iface.protocol == "scpi":
        resource = entry.resource or socket_resource(entry.host, entry.port)
        return ScpiDriver(entry.id, iface, resource, **options)
    return ModbusDriver(entry.id, iface, entry.host, entry.port, **options)
