"""Faults a test or an engineer injects into a running simulated tool.

Alarm and consumable faults act on the process model (`SimTool`); link faults act on the
replies of whichever protocol server fronts the tool, so drop, garble, stall, slow and
offline behave the same for SCPI, Modbus and GEM tools (on GEM, garble is a well-framed
message with an unreadable body). local and remote turn a GEM tool's local/remote switch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum

FAULTS = (
    "alarm", "drop", "garble", "stall", "slow", "offline", "exhaust", "local", "remote", "clear",
    "slot_map",
)  # fmt: skip


class Reply(Enum):
    NORMAL = "normal"
    GARBLE = "garble"
    STALL = "stall"


@dataclass
class FaultPlan:
    pending_alarms: list[tuple[int, float]] = field(default_factory=list)
    garble: int = 0  # next N replies are garbage
    stall: int = 0  # next N requests get no reply
    slow_delay: float = 0.0  # seconds added to each of the next `slow_count` replies
    slow_count: int = 0
    offline_until: float = 0.0  # loop time until which connections are refused
    connections: set[asyncio.Transport] = field(default_factory=set)
    # link faults armed by the next job start, e.g. {"garble": 2}: the reply that confirms
    # the start and the next one are garbled (a start whose outcome the host cannot see)
    on_start: dict[str, int] = field(default_factory=dict)
    # what the next carrier read finds different from what the host expects: slot -> state
    # mapped there, and a carrier id read from the tag instead of the one expected
    slot_map: dict[int, int] = field(default_factory=dict)
    carrier_read: str | None = None

    def job_started(self) -> None:
        for fault, count in self.on_start.items():
            setattr(self, fault, count)
        self.on_start.clear()

    def next_reply(self) -> tuple[Reply, float]:
        """How to treat the next reply, and how long to delay it (real seconds)."""
        delay = 0.0
        if self.slow_count > 0:
            self.slow_count -= 1
            delay = self.slow_delay
        if self.stall > 0:
            self.stall -= 1
            return Reply.STALL, delay
        if self.garble > 0:
            self.garble -= 1
            return Reply.GARBLE, delay
        return Reply.NORMAL, delay

    def offline(self) -> bool:
        return asyncio.get_running_loop().time() < self.offline_until

    def drop_connections(self) -> int:
        n = len(self.connections)
        for t in list(self.connections):
            t.abort()
        self.connections.clear()
        return n

    def clear(self) -> None:
        self.pending_alarms.clear()
        self.garble = self.stall = self.slow_count = 0
        self.on_start.clear()
        self.slot_map.clear()
        self.carrier_read = None
        self.slow_delay = 0.0
        self.offline_until = 0.0


_ASCII = {"µ": "u", "μ": "u", "°": "deg", "²": "2", "σ": "sigma", "–": "-", "—": "-",
          "≤": "<=", "≥": ">=", "×": "x", "Ω": "ohm", "·": "*", "₂": "2"}  # fmt: skip


def wire_text(text: str) -> str:
    """Tool texts go on the wire as ASCII (SCPI is ASCII; Modbus strings are bytes)."""
    out = "".join(_ASCII.get(ch, ch) for ch in text)
    return out.encode("ascii", "replace").decode("ascii")
