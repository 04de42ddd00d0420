"""Published wire interfaces, one module per tool kind.

`interface_for(kind)` is the only lookup; modules load lazily so importing one kind never
drags in the others.
"""

from __future__ import annotations

import importlib

from drivers.errors import ParameterError
from drivers.interface import ToolInterface

# kind -> (module, attribute)
_KINDS: dict[str, tuple[str, str]] = {
    "sputter": ("drivers.interfaces.sputter", "SPUTTER"),
    "plating": ("drivers.interfaces.plating", "PLATING"),
    "bonder": ("drivers.interfaces.bonder", "BONDER"),
    "dicing": ("drivers.interfaces.dicing", "DICING"),
    "ball": ("drivers.interfaces.ball", "BALL"),
    "coater": ("drivers.interfaces.coater", "COATER"),
    "mold": ("drivers.interfaces.mold", "MOLD"),
    "grinder": ("drivers.interfaces.grinder", "GRINDER"),
    "litho": ("drivers.interfaces.litho", "LITHO"),
    "wirebonder": ("drivers.interfaces.wirebonder", "WIREBONDER"),
    "clean": ("drivers.interfaces.clean", "CLEAN"),
}

KINDS: tuple[str, ...] = tuple(_KINDS)


_LOADED: dict[str, ToolInterface] = {}


def interface_for(kind: str) -> ToolInterface:
    found = _LOADED.get(kind)
    if found is not None:
        return found
    try:
        module, attr = _KINDS[kind]
    except KeyError:
        raise ParameterError(f"unknown tool kind {kind!r} (kinds: {', '.join(KINDS)})") from None
    iface: ToolInterface = getattr(importlib.import_module(module), attr)
    _LOADED[kind] = iface
    return iface
