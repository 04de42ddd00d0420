"""Simulated dicing saw (process-reference.md §2 DICE).

Kerf = blade thickness + 2·runout. Chipping scales with the maximum undeformed chip thickness
h_m = [4·v_f/(v_s·C·r)·√(a/D)]^½ (taken relative to a calibrated reference cut) and with the
stack thickness, per material. Blade wear ΔD = w_mat·L_cut. The blade's exposure shrinks as it
wears; a cut deeper than the exposure alarms before the first pass.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.dicing import BLADE_THICKNESS_UM, DICING, die_positions
from simulators.tool import Plan, SimTool

BLADE_DIAMETER_MM = 56.0
# chipping at the reference cut (50 mm/s, 30 krpm, 100 µm deep, 100 µm stack), µm
CHIP_REF_UM = {"SI": 8.0, "SI_STACK": 12.0, "SUBSTRATE": 25.0, "MOLDED": 20.0, "GLASS": 15.0}
BACKSIDE_FACTOR = 1.3
STACK_BETA = 0.3
# blade radius lost per metre cut, µm/m
WEAR_UM_PER_M = {"SI": 0.5, "SI_STACK": 1.5, "SUBSTRATE": 4.0, "MOLDED": 3.0, "GLASS": 2.0}
# relative cutting force (spindle load) per material
HARDNESS = {"SI": 1.0, "SI_STACK": 1.4, "SUBSTRATE": 0.8, "MOLDED": 1.1, "GLASS": 2.0}
# blade exposure when new, µm: hub blades are short, resin/metal blades long
EXPOSURE_UM = {"HUB_20": 700.0, "HUB_30": 1000.0, "HUB_50": 1300.0, "RESIN_150": 3500.0,
               "METAL_200": 3500.0}  # fmt: skip
SPINDLE_IDLE_A = 1.2
SPINDLE_LIMIT_A = 6.0
INDEX_S = 0.4  # seconds per street for the index move
KERF_OFFSET_SIGMA_UM = 0.6
KERF_DRIFT_UM = 4.0  # systematic offset of a blade at its wear limit
KERF_OFFSET_LIMIT_UM = 5.0


def street_layout(
    shape: str, width_mm: float, length_mm: float, die_x: float, die_y: float
) -> tuple[int, float]:
    """(whole dies, total cut length in mm) for a round wafer or a rectangular panel."""
    dies = len(die_positions(shape, width_mm, length_mm, die_x, die_y))
    if shape == "RECT":
        nx, ny = int(width_mm // die_x), int(length_mm // die_y)
        return dies, (nx + 1) * length_mm + (ny + 1) * width_mm
    r = width_mm / 2.0
    cut = 0.0
    for pitch in (die_x, die_y):
        n = int(2 * r // pitch)
        for i in range(n + 1):
            x = -r + i * pitch
            if abs(x) < r:
                cut += 2 * math.sqrt(r * r - x * x)
    return dies, cut


class DicingSim(SimTool):
    interface = DICING

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        blade, material = str(values["blade"]), str(values["material"])
        stack, depth = float(values["stack_thickness"]), float(values["cut_depth"])
        feed, krpm = float(values["feed"]), float(values["spindle"])
        dies, cut_mm = street_layout(
            str(values["work_shape"]),
            float(values["work_width"]),
            float(values["work_length"]),
            float(values["die_x"]),
            float(values["die_y"]),
        )
        passes = 2 if values["mode"] == "STEP" else 1
        streets = cut_mm / max(float(values["work_width"]), 1.0)
        seconds = passes * (cut_mm / feed + streets * INDEX_S)

        v_s = math.pi * BLADE_DIAMETER_MM * krpm * 1000.0 / 60.0  # mm/s
        v_s_ref = math.pi * BLADE_DIAMETER_MM * 30_000.0 / 60.0
        h_rel = math.sqrt((feed / 50.0) / (v_s / v_s_ref) * math.sqrt(depth / 100.0))
        chip = CHIP_REF_UM[material] * h_rel * (stack / 100.0) ** STACK_BETA
        if values["mode"] == "STEP":
            chip *= 0.7  # the Z1 pass takes the brittle top layers gently
        wear = WEAR_UM_PER_M[material] * cut_mm / 1000.0 * (1.0 + depth / 1000.0)
        runout = rng.uniform(2.0, 5.0)
        worn = self.levels["blade_wear"]
        # a worn blade wanders: the systematic part grows with wear, the noise stays small
        drift = KERF_DRIFT_UM * worn / self.interface.consumables[0].limit
        offsets = [abs(drift + rng.gauss(0.0, KERF_OFFSET_SIGMA_UM)) for _ in range(8)]
        current = (
            SPINDLE_IDLE_A
            + 0.9
            * HARDNESS[material]
            * (feed / 50.0)
            * (depth / 300.0)
            * (BLADE_THICKNESS_UM[blade] / 30.0) ** 0.5
        )
        results = {
            "kerf_width": BLADE_THICKNESS_UM[blade] + 2 * runout + 0.01 * worn,
            "kerf_offset": max(offsets),
            "chipping_front": chip * rng.lognormvariate(0.0, 0.15),
            "chipping_back": chip * BACKSIDE_FACTOR * rng.lognormvariate(0.0, 0.15),
            "blade_wear": wear,
            "spindle_current": current * rng.gauss(1.0, 0.03),
            "die_count": float(dies),
            "cut_length": cut_mm * passes,
            "duration": seconds / 60.0,
        }
        plan = Plan(seconds, results, {"blade_wear": wear})
        if EXPOSURE_UM[blade] - worn < depth:
            plan.alarm = (405, 0.0)
        elif results["spindle_current"] > SPINDLE_LIMIT_A:
            plan.alarm = (402, 0.2)
        elif results["kerf_offset"] > KERF_OFFSET_LIMIT_UM:
            plan.alarm = (404, 0.5)
        return plan
