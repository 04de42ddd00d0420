"""PLACEHOLDER for the ball simulator: being written now; replace this whole file."""

from __future__ import annotations

import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.ball import BALL
from simulators.tool import Plan, SimTool


class BallSim(SimTool):
    interface = BALL

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        return Plan(1.0, {"y": 0.0})
