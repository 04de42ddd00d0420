"""Simulated wafer plater (process-reference.md §2 PLAT).

Electroplating follows Faraday's law, t = η·J·time·M/(nFρ): per A/dm²·min Cu 0.221, Ni 0.205,
Au(I) 0.634 µm at η = 1. The tool turns the thickness target into a time with its calibrated
efficiency (Cu 0.975, Ni 0.95, Au 0.95; 5 µm Cu at 20 mA/cm² takes 11.6 min) while the real
efficiency sags as the bath ages. `current_density` is the density on the plated area, so
the rectifier current is I = J·A_wafer·open_area and the bath ampere-hours are I·t.

TSV fill: the via bottom is fed by diffusion down the via, so its limiting current is about
i_L/AR (i_L ≈ 160 mA/cm² for acid Cu). The fill voids when J > c·i_L/AR (c = 0.6, so AR 10
voids above ≈ 10 mA/cm², the top of the published TSV window); far beyond that (J > 2·i_L/AR)
the rectifier runs into compliance.

Electroless Ni(P) and Cu deposit at an Arrhenius rate R = R_ref·exp[−(Ea/R)(1/T − 1/T_ref)]
(EN-Ni 15 µm/h at 85 °C, Ea 60 kJ/mol), faster at higher pH and slower as the bath ages in
metal turnovers (MTO); the tool compensates the age trend it knows. Immersion Au is
self-limiting, t = 0.1 µm·(1 − e^(−time/τ)) with τ = 4 min at 80 °C. Zincate and Pd activation
cover the pad by first-order nucleation, θ = 1 − e^(−k·t/τ).

The numbers not in the reference (limiting currents of Ni and Au, EL-Cu kinetics, resistivities,
stress, bath volumes, zincate and Pd kinetics) are engineering estimates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.plating import (
    PH_WINDOW,
    PLATING,
    STANDARD_PH,
    STANDARD_TEMP,
    TANK_STANDARD,
    TEMP_WINDOW,
    TSV_FEATURES,
)
from simulators.physics import arrhenius, poisson
from simulators.tool import Plan, SimTool

# -- electroplating -----------------------------------------------------------------------------

# µm per (A/dm²)·min at 100 % efficiency: M/(nFρ)
FARADAY_UM = {"CU_ACID": 0.221, "NI_SULFAMATE": 0.205, "AU_ELECTROLYTIC": 0.634}
EFFICIENCY = {"CU_ACID": 0.975, "NI_SULFAMATE": 0.95, "AU_ELECTROLYTIC": 0.95}
EFFICIENCY_AGE_LOSS = 0.02  # fraction of η lost by the end of the bath's Ah life
LIMITING_CURRENT = {"CU_ACID": 160.0, "NI_SULFAMATE": 300.0, "AU_ELECTROLYTIC": 15.0}  # mA/cm²
VOID_C = 0.6  # TSV void heuristic: voids when J > c·i_L/AR
VOID_WIDTH = 0.05  # spread of the void onset around void_index = 1
COMPLIANCE_MARGIN = 2.0  # rectifier compliance when J > margin × (i_L/AR)
XRAY_SAMPLE_VIAS = 1000
RESISTIVITY = {"CU_ACID": 1.9, "NI_SULFAMATE": 8.5, "AU_ELECTROLYTIC": 2.4, "EL_CU": 2.2}  # µΩ·cm
STRESS = {"CU_ACID": (15.0, 0.4), "NI_SULFAMATE": (-10.0, 1.0),
          "AU_ELECTROLYTIC": (5.0, 2.0)}  # fmt: skip  # MPa at J = 0, MPa per mA/cm²
WIW_BASE = {"CU_ACID": 2.0, "NI_SULFAMATE": 2.5, "AU_ELECTROLYTIC": 3.0}  # %
WIW_FEATURE = {"BLANKET": 0.0, "RDL": 1.0, "BUMP": 1.5, "TSV": 0.5, "TSV_RDL": 1.0}  # %
ELECTROPLATE_OVERHEAD_S = 150.0  # pre-wet, rinse, spin-dry

# -- electroless --------------------------------------------------------------------------------

# chemistry -> (rate µm/h at T_ref, T_ref °C, Ea J/mol, relative rate change per pH unit)
ELECTROLESS_KINETICS = {"EN_NI": (15.0, 85.0, 60_000.0, 0.8), "EL_CU": (2.5, 55.0, 55_000.0, 0.5)}
ELECTROLESS_AGE_LOSS = {"EN_NI": 0.04, "EL_CU": 0.02}  # fraction of rate lost per MTO
# chemistry -> (metal in the tank per turnover g, deposit density g/cm³)
BATH_METAL = {"EN_NI": (6.0 * 60.0, 7.9), "EL_CU": (3.0 * 60.0, 8.8)}
ELECTROLESS_OVERHEAD_S = 240.0
PLATE_OUT_LIMIT = 1.0

# -- immersion Au, zincate, Pd ------------------------------------------------------------------

IMM_AU_MAX_UM = 0.1
IMM_AU_TAU_MIN = 4.0
IMM_AU_REF_C = 80.0
IMM_AU_EA = 40_000.0
# Ni dissolved per Au deposited: ½ Ni atom per Au atom × molar volume Ni / Au (6.59 / 10.21)
NI_PER_AU = 0.5 * (58.69 / 8.908) / (196.97 / 19.3)
ZINCATE_TAU_S = {1: 10.0, 2: 5.0}  # the second zincate nucleates finer and faster
ZINCATE_MAX = {1: 95.0, 2: 99.5}  # % coverage a pass can reach
ZINCATE_ZN_NM = {1: 80.0, 2: 35.0}
ZINCATE_EA = 40_000.0
ZINCATE_REF_C = 25.0
AL_ETCH_NM_S = 2.0
STRIP_S, STRIP_AL_NM = 20.0, 20.0  # HNO₃ strip between the zincate passes
RINSE_S = 30.0
PD_TAU_S, PD_MAX, PD_EA, PD_REF_C = 20.0, 99.5, 45_000.0, 30.0


def plated_area_cm2(wafer_diameter_mm: float, open_area_pct: float) -> float:
    r_cm = wafer_diameter_mm / 20.0
    return math.pi * r_cm * r_cm * open_area_pct / 100.0


def rectifier_current_a(j_ma_cm2: float, wafer_diameter_mm: float, open_area_pct: float) -> float:
    """I = J·A_wafer·open_area."""
    return j_ma_cm2 * plated_area_cm2(wafer_diameter_mm, open_area_pct) / 1000.0


def faraday_rate_um_per_min(
    chemistry: str, j_ma_cm2: float, efficiency: float | None = None
) -> float:
    """Plating rate at current density J (mA/cm²) and efficiency η (calibrated if None)."""
    eta = EFFICIENCY[chemistry] if efficiency is None else efficiency
    return FARADAY_UM[chemistry] * (j_ma_cm2 / 10.0) * eta


def plating_minutes(chemistry: str, thickness_um: float, j_ma_cm2: float) -> float:
    """The time the tool plates for a thickness target."""
    return thickness_um / faraday_rate_um_per_min(chemistry, j_ma_cm2)


def void_index(chemistry: str, j_ma_cm2: float, aspect_ratio: float) -> float:
    """J / (c·i_L/AR): the TSV void heuristic fires above 1."""
    return j_ma_cm2 * aspect_ratio / (VOID_C * LIMITING_CURRENT[chemistry])


def void_probability(index: float) -> float:
    """Fraction of vias that void, a steep logistic around void_index = 1."""
    if index <= 0:
        return 0.0
    z = (index - 1.0) / VOID_WIDTH
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def in_compliance(chemistry: str, j_ma_cm2: float, aspect_ratio: float) -> bool:
    """The rectifier cannot hold J when it exceeds the (via-bottom) limiting current widely."""
    limit = LIMITING_CURRENT[chemistry] / max(1.0, aspect_ratio)
    return j_ma_cm2 > COMPLIANCE_MARGIN * limit


def sheet_resistance_mohm_sq(resistivity_uohm_cm: float, thickness_um: float) -> float:
    """Rs = ρ/t in mΩ/sq (ρ in µΩ·cm, t in µm)."""
    return resistivity_uohm_cm * 10.0 / thickness_um


# -- electroless --------------------------------------------------------------------------------


def electroless_rate_um_per_h(
    temp_c: float, chemistry: str = "EN_NI", ph: float | None = None
) -> float:
    """Fresh-bath deposition rate (Arrhenius in T, linear in pH about the standard pH)."""
    rate_ref, t_ref, ea, per_ph = ELECTROLESS_KINETICS[chemistry]
    ph_factor = 1.0 if ph is None else max(0.2, 1.0 + per_ph * (ph - STANDARD_PH[chemistry]))
    return arrhenius(rate_ref, ea, temp_c, t_ref) * ph_factor


def electroless_age_factor(chemistry: str, mto: float) -> float:
    return max(0.5, 1.0 - ELECTROLESS_AGE_LOSS[chemistry] * mto)


def phosphorus_wt_pct(ph: float, mto: float) -> float:
    """Mid-phos EN-Ni: P falls with pH and rises as orthophosphite builds up."""
    return 8.0 - 2.5 * (ph - STANDARD_PH["EN_NI"]) + 0.3 * mto


def en_ni_resistivity(phosphorus_pct: float) -> float:
    """µΩ·cm of a Ni(P) deposit."""
    return 30.0 + 6.0 * phosphorus_pct


def turnover(chemistry: str, thickness_um: float, area_cm2: float, phosphorus_pct: float) -> float:
    """Metal turnovers used: metal deposited / metal content of the tank."""
    per_mto, density = BATH_METAL[chemistry]
    grams = density * area_cm2 * thickness_um * 1e-4 * (1.0 - phosphorus_pct / 100.0)
    return grams / per_mto


def plate_out_index(
    chemistry: str, temp_c: float, ph: float, mto: float, mto_limit: float
) -> float:
    """Bath instability: hot, high pH and aged (orthophosphite / formate) baths plate out.
    Reaches 1 only at the hot, high-pH corner of the window in a bath past half its life."""
    t_lo, t_hi = TEMP_WINDOW[chemistry]
    p_lo, p_hi = PH_WINDOW[chemistry]
    return (
        0.35 * (temp_c - t_lo) / (t_hi - t_lo)
        + 0.35 * (ph - p_lo) / (p_hi - p_lo)
        + 0.6 * mto / mto_limit
    )


# -- immersion Au, zincate, Pd ------------------------------------------------------------------


def immersion_au_um(minutes: float, temp_c: float = IMM_AU_REF_C) -> float:
    """t = 0.1 µm·(1 − e^(−time/τ)), τ = 4 min at 80 °C (shorter when hotter)."""
    tau = IMM_AU_TAU_MIN / arrhenius(1.0, IMM_AU_EA, temp_c, IMM_AU_REF_C)
    return IMM_AU_MAX_UM * (1.0 - math.exp(-minutes / tau))


def zincate_coverage_pct(passes: int, seconds: float, temp_c: float) -> float:
    k = arrhenius(1.0, ZINCATE_EA, temp_c, ZINCATE_REF_C)
    return ZINCATE_MAX[passes] * (1.0 - math.exp(-k * seconds / ZINCATE_TAU_S[passes]))


def pd_coverage_pct(seconds: float, temp_c: float) -> float:
    k = arrhenius(1.0, PD_EA, temp_c, PD_REF_C)
    return PD_MAX * (1.0 - math.exp(-k * seconds / PD_TAU_S))


def bath_temp(chemistry: str, value: float) -> float:
    """The temperature a job runs at: its own setpoint, or the tank's standard."""
    return STANDARD_TEMP[chemistry] if value == TANK_STANDARD else value


def bath_ph(chemistry: str, value: float) -> float:
    return STANDARD_PH[chemistry] if value == TANK_STANDARD else value


# consumable -> (alarm when exhausted, warning): Ah- and wafer-counted baths end at BATH_LIFE,
# electroless baths at their metal-turnover life


class PlatingSim(SimTool):
    interface = PLATING

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        if op.name == "electroplate":
            return self._electroplate(values, rng)
        if op.name == "electroless":
            return self._electroless(values, rng)
        if op.name == "immersion":
            return self._immersion(values, rng)
        if op.name == "zincate":
            return self._zincate(values, rng)
        return self._activate(values, rng)

    def _electroplate(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        chem, feature = str(v["chemistry"]), str(v["feature"])
        goal, j = float(v["thickness"]), float(v["current_density"])
        ar = float(v["aspect_ratio"])
        temp = bath_temp(chem, float(v["bath_temp"]))
        minutes = plating_minutes(chem, goal, j)
        current = rectifier_current_a(j, float(v["wafer_diameter"]), float(v["open_area"]))
        charge = current * minutes / 60.0
        key = f"bath_{chem.lower()}"
        age = self._used(key)
        eta = EFFICIENCY[chem] * (1.0 - EFFICIENCY_AGE_LOSS * age) * rng.gauss(1.0, 0.003)
        eta = min(eta, 1.0)
        rate = faraday_rate_um_per_min(chem, j, eta)
        thickness = rate * minutes
        index = void_index(chem, j, ar) if feature in TSV_FEATURES else 0.0
        voids = 0
        if index > 0:
            voids = min(XRAY_SAMPLE_VIAS, poisson(rng, XRAY_SAMPLE_VIAS * void_probability(index)))
        stress0, per_j = STRESS[chem]
        results = {
            "thickness": thickness,
            "wiw": max(0.3, rng.gauss(WIW_BASE[chem] + 0.04 * j + WIW_FEATURE[feature], 0.15)),
            "sheet_resistance": sheet_resistance_mohm_sq(RESISTIVITY[chem], thickness)
            * rng.gauss(1.0, 0.01),
            "stress": stress0 + per_j * j + rng.gauss(0.0, 3.0),
            "rate": rate,
            "efficiency": 100.0 * eta,
            "current": current,
            "charge": charge,
            "void_index": index,
            "via_voids": float(voids),
            "bath_temp": temp + rng.gauss(0.0, 0.3),
            "duration": minutes,
        }
        plan = Plan(ELECTROPLATE_OVERHEAD_S + minutes * 60.0, results, {key: charge})
        if feature in TSV_FEATURES and in_compliance(chem, j, ar):
            plan.alarm = (203, 0.05)
        return plan

    def _electroless(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        chem, goal = str(v["chemistry"]), float(v["thickness"])
        temp = bath_temp(chem, float(v["bath_temp"]))
        ph = bath_ph(chem, float(v["ph"]))
        key = f"bath_{chem.lower()}"
        mto_now = self.levels[key]
        nominal = electroless_rate_um_per_h(temp, chem, ph) * electroless_age_factor(chem, mto_now)
        hours = goal / nominal  # the tool knows its bath age and compensates
        measured_temp = temp + rng.gauss(0.0, 0.3)
        rate = (
            electroless_rate_um_per_h(measured_temp, chem, ph)
            * electroless_age_factor(chem, mto_now)
            * rng.gauss(1.0, 0.01)
        )
        thickness = rate * hours
        if chem == "EN_NI":
            phosphorus = phosphorus_wt_pct(ph, mto_now) + rng.gauss(0.0, 0.15)
            rho = en_ni_resistivity(phosphorus)
        else:
            phosphorus, rho = 0.0, RESISTIVITY["EL_CU"]
        area = plated_area_cm2(float(v["wafer_diameter"]), float(v["open_area"]))
        used = turnover(chem, thickness, area, phosphorus)
        results = {
            "thickness": thickness,
            "wiw": max(0.3, rng.gauss(3.0, 0.3)),
            "rate": rate,
            "phosphorus": phosphorus,
            "sheet_resistance": sheet_resistance_mohm_sq(rho, thickness) * rng.gauss(1.0, 0.01),
            "turnover": used,
            "bath_temp": measured_temp,
            "ph": ph + rng.gauss(0.0, 0.02),
            "duration": hours * 60.0,
        }
        plan = Plan(ELECTROLESS_OVERHEAD_S + hours * 3600.0, results, {key: used})
        limit = next(c.limit for c in self.interface.consumables if c.name == key)
        if plate_out_index(chem, temp, ph, mto_now, limit) >= PLATE_OUT_LIMIT:
            plan.alarm = (208, 0.5)
        return plan

    def _immersion(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        minutes, temp = float(v["time"]), float(v["bath_temp"])
        thickness = immersion_au_um(minutes, temp) * rng.gauss(1.0, 0.02)
        results = {
            "thickness": thickness,
            "ni_dissolved": NI_PER_AU * thickness,
            "wiw": max(0.5, rng.gauss(5.0, 0.5)),
            "bath_temp": temp + rng.gauss(0.0, 0.3),
            "duration": minutes,
        }
        return Plan(minutes * 60.0 + 2 * RINSE_S, results, {"bath_imm_au": 1.0})

    def _zincate(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        passes, seconds, temp = int(v["passes"]), float(v["time"]), float(v["bath_temp"])
        coverage = zincate_coverage_pct(passes, seconds, temp)
        k = arrhenius(1.0, ZINCATE_EA, temp, ZINCATE_REF_C)
        total_s = passes * (seconds + RINSE_S) + (passes - 1) * (STRIP_S + RINSE_S)
        results = {
            "coverage": min(100.0, coverage + rng.gauss(0.0, 0.2)),
            "zn_thickness": ZINCATE_ZN_NM[passes] * coverage / 100.0 * rng.gauss(1.0, 0.05),
            "al_loss": (passes * AL_ETCH_NM_S * k * seconds + (passes - 1) * STRIP_AL_NM)
            * rng.gauss(1.0, 0.05),
            "bath_temp": temp + rng.gauss(0.0, 0.3),
            "duration": total_s / 60.0,
        }
        return Plan(total_s, results, {"bath_zincate": 1.0})

    def _activate(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        seconds, temp = float(v["time"]), float(v["bath_temp"])
        total_s = seconds + 2 * RINSE_S
        results = {
            "coverage": min(100.0, pd_coverage_pct(seconds, temp) + rng.gauss(0.0, 0.2)),
            "bath_temp": temp + rng.gauss(0.0, 0.3),
            "duration": total_s / 60.0,
        }
        return Plan(total_s, results, {"bath_pd_activator": 1.0})

    def _used(self, key: str) -> float:
        spec = next(c for c in self.interface.consumables if c.name == key)
        return min(1.0, self.levels[key] / spec.limit)
