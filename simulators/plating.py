"""PLACEHOLDER for the plating simulator: being written now; replace this whole file."""

from __future__ import annotations

import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.plating import PLATING
from simulators.tool import Plan, SimTool


class PlatingSim(SimTool):
    interface = PLATING

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        return Plan(1.0, {"y": 0.0})
