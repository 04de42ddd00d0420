"""PLACEHOLDER for the bonder simulator: being written now; replace this whole file."""

from __future__ import annotations

import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.bonder import BONDER
from simulators.tool import Plan, SimTool


class BonderSim(SimTool):
    interface = BONDER

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        return Plan(1.0, {"y": 0.0})
