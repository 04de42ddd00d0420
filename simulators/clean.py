"""Simulated clean station: plasma, flux clean, moisture bake (drivers/interfaces/clean.py).

Plasma: the organic film ablates at r = k_gas·(P/400 W)·(200 mTorr/p)^0.3 nm/min (O₂ 20,
CF₄/O₂ 35, Ar/H₂ 4, Ar 2.5) down to a re-adsorbed floor of 0.1 nm; the water contact angle
is θ = θ_clean + (75° − θ_clean)·(1 − e^(−residue/1 nm)). On Cu, O₂ grows oxide
parabolically, δ² = δ₀² + k·t (to ~6 nm in 2 min at 400 W), Ar/H₂ reduces it,
δ = δ₀·e^(−t/τ) (τ 60 s at 400 W), Ar sputters it slowly. O₂ etches polymer surfaces at
50 nm/min (EMC 20, organic substrate 40) at 400 W.

Flux clean: residue fraction e^(−t/τ), τ = τ_ref·e^(E/R·(1/T − 1/333 K))·√(300 kPa/P)·
(1 + (50 µm/standoff)²); τ_ref per flux and chemistry (a saponifier takes rosin in ~1 min at
60 °C; DI water leaves rosin and no-clean flux). Ionic residue = I₀·(residue) + 0.1 µg/cm².

Bake: Fickian desorption from a plate of thickness h through both faces, first three terms
of M/M₀ = Σ 8/((2n+1)²π²)·e^(−D(2n+1)²π²t/h²); D = D₁₂₅·e^(−Ea/R·(1/T − 1/398 K)), D₁₂₅
≈ 3e-11 m²/s for EMC and BT laminate (J-STD-033: a 1.4 mm package dries to ~10 % in ~4 h at
125 °C), Ea 40 kJ/mol. Constants are engineering estimates; calibrate before use.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from types import MappingProxyType

from drivers.interface import Operation, Value
from drivers.interfaces.clean import CLEAN, IONIC_LIMIT, MOISTURE_DRY_PCT
from simulators.physics import R_GAS
from simulators.tool import Plan, SimTool

# --- plasma ----------------------------------------------------------------------------------
ASH_NM_MIN: Mapping[str, float] = MappingProxyType(
    {"O2": 20.0, "CF4_O2": 35.0, "AR_H2": 4.0, "AR": 2.5}
)
RESIDUE_FLOOR_NM = 0.1
ANGLE_DIRTY_DEG = 75.0
ANGLE_CLEAN_DEG: Mapping[str, float] = MappingProxyType(
    {"CU": 10.0, "AL": 10.0, "NIAU": 15.0, "SOLDER": 20.0, "SI": 5.0, "POLYMER": 20.0,
     "EMC": 25.0, "ORGANIC": 30.0}
)  # fmt: skip
ANGLE_SCALE_NM = 1.0
OXIDE_GROWTH_NM2_S = 0.25  # O₂ plasma on Cu at 400 W: δ² grows by this per second
OXIDE_REDUCE_TAU_S = 60.0  # Ar/H₂ at 400 W
OXIDE_SPUTTER_NM_MIN = 0.5  # Ar at 400 W
POLYMER_ETCH_NM_MIN: Mapping[str, float] = MappingProxyType(
    {"POLYMER": 50.0, "EMC": 20.0, "ORGANIC": 40.0}
)
POLYMER_GAS: Mapping[str, float] = MappingProxyType(
    {"O2": 1.0, "CF4_O2": 1.8, "AR_H2": 0.05, "AR": 0.1}
)
PUMP_S, VENT_S = 60.0, 30.0
RESIDUE_WARN_NM, OXIDE_WARN_NM, POLYMER_WARN_NM = 1.0, 5.0, 500.0

# --- flux clean ------------------------------------------------------------------------------
TAU_REF_MIN: Mapping[tuple[str, str], float] = MappingProxyType(
    {
        ("WATER_SOLUBLE", "SAPONIFIER"): 0.5, ("WATER_SOLUBLE", "DI_WATER"): 0.8,
        ("WATER_SOLUBLE", "SOLVENT"): 3.0,
        ("ROSIN", "SAPONIFIER"): 1.0, ("ROSIN", "SOLVENT"): 1.5, ("ROSIN", "DI_WATER"): 200.0,
        ("NO_CLEAN", "SAPONIFIER"): 1.5, ("NO_CLEAN", "SOLVENT"): 2.0,
        ("NO_CLEAN", "DI_WATER"): 300.0,
    }
)  # fmt: skip
IONIC_0: Mapping[str, float] = MappingProxyType(
    {"WATER_SOLUBLE": 20.0, "ROSIN": 10.0, "NO_CLEAN": 4.0}
)
IONIC_FLOOR = 0.1
WASH_EA = 30_000.0
STANDOFF_REF_UM = 50.0
UNDER_WARN_PCT = 5.0
WASH_L_PER_MIN = 0.05  # make-up of the recirculated wash
WASH_DRAGOUT_L = 0.02  # carried out on each work piece
WASH_LOAD_S, RINSE_DRY_S = 60.0, 180.0

# --- bake ------------------------------------------------------------------------------------
D125_M2_S: Mapping[str, float] = MappingProxyType(
    {"ORGANIC": 3e-11, "EMC": 3e-11, "POLYIMIDE": 1e-11, "SI": 0.0}
)
BAKE_EA = 40_000.0
OVEN_RAMP_C_MIN = 5.0


def plasma_residue_nm(gas: str, power_w: float, pressure_mtorr: float, seconds: float,
                      start_nm: float) -> float:  # fmt: skip
    rate = ASH_NM_MIN[gas] * (power_w / 400.0) * math.pow(200.0 / pressure_mtorr, 0.3)
    return max(min(start_nm, RESIDUE_FLOOR_NM), start_nm - rate * seconds / 60.0)


def contact_angle_deg(surface: str, residue_nm: float) -> float:
    clean = ANGLE_CLEAN_DEG[surface]
    return clean + (ANGLE_DIRTY_DEG - clean) * (1.0 - math.exp(-residue_nm / ANGLE_SCALE_NM))


def cu_oxide_nm(gas: str, power_w: float, seconds: float, oxide_in: float) -> float:
    scale = power_w / 400.0
    if gas in ("O2", "CF4_O2"):
        return math.sqrt(oxide_in**2 + OXIDE_GROWTH_NM2_S * scale * seconds)
    if gas == "AR_H2":
        return oxide_in * math.exp(-seconds * scale / OXIDE_REDUCE_TAU_S)
    return max(0.0, oxide_in - OXIDE_SPUTTER_NM_MIN * scale * seconds / 60.0)


def polymer_loss_nm(gas: str, surface: str, power_w: float, seconds: float) -> float:
    rate = POLYMER_ETCH_NM_MIN.get(surface, 0.0) * POLYMER_GAS[gas] * power_w / 400.0
    return rate * seconds / 60.0


def flux_tau_min(flux: str, chemistry: str, temp_c: float, spray_kpa: float,
                 standoff_um: float) -> float:  # fmt: skip
    arr = math.exp(WASH_EA / R_GAS * (1.0 / (temp_c + 273.15) - 1.0 / 333.15))
    return (
        TAU_REF_MIN[(flux, chemistry)]
        * arr
        * math.sqrt(300.0 / spray_kpa)
        * (1.0 + (STANDOFF_REF_UM / standoff_um) ** 2)
    )


def diffusivity_m2_s(material: str, temp_c: float) -> float:
    return D125_M2_S[material] * math.exp(
        -BAKE_EA / R_GAS * (1.0 / (temp_c + 273.15) - 1.0 / 398.15)
    )


def remaining_fraction(d_m2_s: float, seconds: float, thickness_um: float) -> float:
    """M/M₀ of a plate drying through both faces (first three terms of the series)."""
    h = thickness_um * 1e-6
    return sum(
        8.0
        / ((2 * n + 1) ** 2 * math.pi**2)
        * math.exp(-d_m2_s * (2 * n + 1) ** 2 * math.pi**2 * seconds / h**2)
        for n in range(3)
    ) / (sum(8.0 / ((2 * n + 1) ** 2 * math.pi**2) for n in range(3)))


class CleanSim(SimTool):
    interface = CLEAN

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        if op.name == "plasma":
            return self._plasma(values, rng)
        if op.name == "flux_clean":
            return self._flux_clean(values, rng)
        return self._bake(values, rng)

    def _plasma(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        gas, surface = str(v["gas"]), str(v["surface"])
        power, seconds = float(v["power"]), float(v["time"])
        residue = plasma_residue_nm(
            gas, power, float(v["pressure"]), seconds, float(v["contamination"])
        ) * rng.lognormvariate(0.0, 0.1)
        oxide = (
            cu_oxide_nm(gas, power, seconds, float(v["oxide_in"])) * rng.lognormvariate(0.0, 0.05)
            if surface == "CU"
            else 0.0
        )
        loss = polymer_loss_nm(gas, surface, power, seconds) * rng.gauss(1.0, 0.03)
        total = PUMP_S + seconds + VENT_S
        results = {
            "residue": residue,
            "contact_angle": contact_angle_deg(surface, residue) + rng.gauss(0.0, 1.0),
            "oxide": oxide,
            "polymer_loss": loss,
            "duration": total / 60.0,
        }
        plan = Plan(total, results, {"electrode_hours": seconds / 3600.0})
        if residue > RESIDUE_WARN_NM:
            plan.warnings.append(1180)
        if oxide > OXIDE_WARN_NM:
            plan.warnings.append(1181)
        if loss > POLYMER_WARN_NM:
            plan.warnings.append(1182)
        return plan

    def _flux_clean(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        flux, chem = str(v["flux"]), str(v["chemistry"])
        minutes, pieces = float(v["time"]), int(float(v["work_pieces"]))
        tau = flux_tau_min(
            flux, chem, float(v["temp"]), float(v["spray_pressure"]), float(v["standoff"])
        )
        open_tau = flux_tau_min(flux, chem, float(v["temp"]), float(v["spray_pressure"]), 1e6)
        under = math.exp(-minutes / tau)
        ionic = (IONIC_0[flux] * math.exp(-minutes / open_tau) * 0.5 + IONIC_0[flux] * under * 0.5
                 + IONIC_FLOOR) * rng.lognormvariate(0.0, 0.1)  # fmt: skip
        used = WASH_L_PER_MIN * minutes + WASH_DRAGOUT_L * pieces
        total = WASH_LOAD_S + minutes * 60.0 + RINSE_DRY_S
        results = {
            "ionic": ionic,
            "residue_under": 100.0 * under,
            "chemistry_used": used,
            "duration": total / 60.0,
        }
        plan = Plan(total, results, {"wash_chemistry": used})
        if ionic > IONIC_LIMIT:
            plan.warnings.append(1183)
        if 100.0 * under > UNDER_WARN_PCT:
            plan.warnings.append(1184)
        return plan

    def _bake(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material, temp = str(v["material"]), float(v["temp"])
        hours, start = float(v["time"]), float(v["moisture_in"])
        measured = temp + rng.gauss(0.0, 0.5)
        d = diffusivity_m2_s(material, measured)
        left = start * remaining_fraction(d, hours * 3600.0, float(v["thickness"])) if d else start
        total = 2.0 * (temp - 25.0) / OVEN_RAMP_C_MIN * 60.0 + hours * 3600.0
        results = {
            "moisture": left,
            "desorbed": 100.0 * (1.0 - left / start) if start > 0 else 100.0,
            "temp_measured": measured,
            "duration": total / 60.0,
        }
        plan = Plan(total, results)
        if left > MOISTURE_DRY_PCT:
            plan.warnings.append(1185)
        return plan
