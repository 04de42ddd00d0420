"""Equipment performance: SEMI E10 states, time in state and RAM/utilisation metrics per tool,
and tool inhibits. Pure: no database or engine imports. See docs/spc.md."""

from controller.equipment.e10 import (
    NOT_EQUIPMENT_DEPENDENT,
    SUBSTATES,
    E10Error,
    E10Metrics,
    E10State,
    Interrupt,
    Period,
    StateChange,
    StateTimes,
    SubState,
    metrics,
    time_in_states,
)
from controller.equipment.inhibit import Inhibit, InhibitSource, Release, active

__all__ = [
    "NOT_EQUIPMENT_DEPENDENT",
    "SUBSTATES",
    "E10Error",
    "E10Metrics",
    "E10State",
    "Inhibit",
    "InhibitSource",
    "Interrupt",
    "Period",
    "Release",
    "StateChange",
    "StateTimes",
    "SubState",
    "active",
    "metrics",
    "time_in_states",
]
