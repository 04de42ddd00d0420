"""Simulated DC magnetron sputter (process-reference.md §2 SPUT).

Rate R = k_m·P/(1 + p/p₀) with k_Cu ≈ 50 nm·min⁻¹·kW⁻¹ and p₀ = 20 mTorr; the tool turns the
thickness target into a time with this nominal rate, while the real rate sags as the target
erodes. Sheet resistance follows the Fuchs–Sondheimer size effect
Rs = ρ_b(1 + 0.375λ/t)/t. Target wear is cathode energy (kWh).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.sputter import SPUTTER
from simulators.physics import poisson
from simulators.tool import Plan, SimTool

K_CU = 50.0  # nm/min per kW
P0 = 20.0  # mTorr
YIELD = {"CU": 1.0, "AL": 0.6, "ALCU": 0.6, "ALSI": 0.6, "TI": 0.3, "TIW": 0.28, "NIV": 0.55,
         "AU": 1.4}  # fmt: skip
RHO_UOHM_CM = {"CU": 1.7, "AL": 2.7, "ALCU": 3.0, "ALSI": 3.1, "TI": 42.0, "TIW": 60.0,
               "NIV": 40.0, "AU": 2.2}  # fmt: skip
MFP_NM = {"CU": 39.0, "AL": 15.0, "ALCU": 15.0, "ALSI": 15.0, "TI": 10.0, "TIW": 10.0,
          "NIV": 10.0, "AU": 38.0}  # fmt: skip
STRESS_MPA = {"CU": 100.0, "AL": 60.0, "ALCU": 70.0, "ALSI": 70.0, "TI": -300.0, "TIW": -600.0,
              "NIV": 300.0, "AU": 20.0}  # fmt: skip
PUMP_DOWN_S = 120.0
WAFER_TEMP_LIMIT_C = 250.0
HEATING_C_PER_KW = 3.0
ARC_LIMIT = 40


def nominal_rate(target: str, power_kw: float, pressure_mtorr: float) -> float:
    """Calibrated deposition rate in nm/min."""
    return K_CU * YIELD[target] * power_kw / (1.0 + pressure_mtorr / P0)


def sheet_resistance(target: str, thickness_nm: float) -> float:
    """mΩ/sq: ρ[µΩ·cm]·1e4 / t[nm], with the thin-film size effect."""
    rho = RHO_UOHM_CM[target] * (1.0 + 0.375 * MFP_NM[target] / thickness_nm)
    return rho * 1e4 / thickness_nm


class SputterSim(SimTool):
    interface = SPUTTER

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        power, pressure = float(values["power"]), float(values["pressure"])
        films: list[tuple[str, float]] = []
        if op.name == "seed_stack":
            films.append((str(values["barrier"]), float(values["barrier_thickness"])))
            films.append(("CU", float(values["seed_thickness"])))
        else:
            films.append((str(values["target"]), float(values["thickness"])))

        minutes = 0.0
        wear: dict[str, float] = {}
        measured: list[dict[str, float]] = []
        arcs = 0
        for target, goal in films:
            rate = nominal_rate(target, power, pressure)
            t_min = goal / rate
            erosion = self._erosion(target)
            actual = rate * (1.0 - 0.08 * erosion) * rng.gauss(1.0, 0.01)
            thickness = actual * t_min
            energy = power * t_min / 60.0
            arcs += poisson(rng, 0.02 * power * t_min * (1.0 + 3.0 * erosion**2))
            key = f"target_{target.lower()}"
            wear[key] = wear.get(key, 0.0) + energy
            minutes += t_min
            measured.append(
                {
                    "thickness": thickness,
                    "wiw": max(0.3, rng.gauss(1.5 + 0.2 * pressure + 2.0 * erosion, 0.15)),
                    "sheet_resistance": sheet_resistance(target, thickness) * rng.gauss(1.0, 0.01),
                    "stress": STRESS_MPA[target] + 30.0 * (pressure - 4.0) + rng.gauss(0, 10),
                    "rate": actual,
                }
            )
        film = measured[-1]
        results = {
            **film,
            "arc_count": float(arcs),
            "energy": sum(wear.values()),
            "duration": minutes,
        }
        if op.name == "seed_stack":
            results["barrier_measured"] = measured[0]["thickness"]
        plan = Plan(PUMP_DOWN_S + minutes * 60.0, results, wear)
        wafer_temp = float(values["chuck_temp"]) + HEATING_C_PER_KW * power
        if wafer_temp > WAFER_TEMP_LIMIT_C:
            plan.alarm = (106, 0.3)
        elif arcs > ARC_LIMIT:
            plan.alarm = (103, 0.8)
        return plan

    def _erosion(self, target: str) -> float:
        key = f"target_{target.lower()}"
        spec = next(c for c in self.interface.consumables if c.name == key)
        return min(1.0, self.levels[key] / spec.limit)
