"""Async drivers for the packaging line's tools.

Kept import-light on purpose: simulators import `drivers.interface` and `drivers.interfaces`
for the published wire interfaces only, never the driver logic or transports.
"""
