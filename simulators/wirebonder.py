"""Simulated wire bonder (NEW tool type: process-reference.md has no model for it).

Every constant is an engineering estimate (sources in `drivers/interfaces/wirebonder.py`:
Harman 2010, Chauhan et al. 2014, MIL-STD-883 TM 2011, JESD22-B116); calibrate before use.

Bond formation. Each bond gets an energy index relative to the standard settings,
E = (F/F_std)^0.4 · (P/P_std)^0.6 · (t/t_std)^0.25 · f_T · s · w, with the thermal factor
f_T = min(1.15, e^(−(Ea/R)(1/T − 1/T_nom))), the surface bondability s (pad metal or lead
finish; bare Cu without forming gas is oxidised) and the capillary wear w = 1 − k·u².
Bond-to-bond strength scatters lognormally (σ = 0.15) and a bond below E_crit = 0.45 does not
stick: p = Φ((ln E_crit − ln E)/σ) — 5e-8 per bond at the standard, so non-sticks come from
settings below their window, a cold heater, poor surfaces or a worn capillary, never by chance.
The bonded share of the contact is f_b = 1 − e^(−(E/0.659)²) (0.9 at the standard).

Damage. D = (F/F_std)^0.5 · (P/P_std)^0.8 · (t/t_std)^0.2; a bond with D above 2.5
(lognormal σ 0.12) craters the pad (first bond, D × pad hardness) or tears the tail (second
bond: short tail, the bonder stops). Over-deformed heels also weaken the wire: heel × D^−0.7.

Geometry. Mashed ball D_b = m·D_fab, m = max(1.05, 1.33·(F/F_std)^0.25·(P/P_std)^0.2);
ball height from volume, π·D_fab³/6 = π·D_b²·H/4. Wedges: width 1.4·d with the same
deformation law; thickness π·d²/(4·width). A ball-stitch loop cannot be lower than the ball
plus two wire diameters, a wedge loop than 1.5 wire diameters.

Pull (Schafft, hook at mid-span, equal bond heights): F = 2·T·sin θ, sin θ = h/√(h² + (s/2)²),
with the legs stretched by the wire's elongation at break before it fails, and T the weakest
link: the ball neck (heat-affected zone; cracked if the loop is lower than the HAZ, ≈ 5 × d for
Au), a heel, or a bond lifting (adhesion × f_b). Ball shear = τ × contact area × f_b.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from drivers.interface import Operation, Value
from drivers.interfaces.wirebonder import (
    FORMING_GAS_MIN_LMIN,
    STANDARD,
    WIREBONDER,
    settings,
    standard_settings,
    wire_diameter_um,
)
from simulators.physics import R_GAS, poisson
from simulators.tool import Plan, SimTool

GF_PER_N = 1.0 / 9.80665e-3

# --- bond formation ---
E_CRIT = 0.45  # energy index below which a bond does not stick
BOND_SIGMA = 0.15  # lognormal bond-to-bond scatter of the energy index
E_HALF = 0.659  # bonded share f_b = 1 − e^(−(E/E_HALF)²): 0.9 at E = 1
EXP_FORCE, EXP_POWER, EXP_TIME = 0.4, 0.6, 0.25
BOND_EA_J_MOL = {"AU": 10_000.0, "CU": 10_000.0, "AL": 2_000.0}  # Al wedge bonds cold
THERMAL_CAP = 1.15  # heat helps, up to this factor
PAD_BOND = {
    "AU": {"AL": 1.0, "NIAU": 1.1, "CU": 0.95},
    "CU": {"AL": 1.0, "NIAU": 1.05, "CU": 0.95},
    "AL": {"AL": 1.05, "NIAU": 1.0, "CU": 0.85},
}
LEAD_BOND = {
    "AU": {"NIAU": 1.1, "NIPDAU": 1.0, "AG": 1.0, "CU": 0.95},
    "CU": {"NIAU": 1.0, "NIPDAU": 1.0, "AG": 0.9, "CU": 0.9},
    "AL": {"NIAU": 1.0, "NIPDAU": 0.9, "AG": 0.85, "CU": 0.85},
}
OXIDE_FACTOR = 0.75  # a bare Cu pad or lead bonded without forming gas
WEAR_FIRST, WEAR_SECOND = 0.15, 0.25  # E × (1 − k·u²), u = capillary used fraction

# --- damage ---
D_CRIT = 2.5
DAMAGE_SIGMA = 0.12
PAD_HARDNESS = {  # crater susceptibility of the pad under each wire
    "AU": {"AL": 1.0, "NIAU": 0.7, "CU": 0.8},
    "CU": {"AL": 1.2, "NIAU": 0.8, "CU": 0.9},
    "AL": {"AL": 0.8, "NIAU": 0.6, "CU": 0.7},
}
HEEL_EXPONENT = 0.7

# --- geometry ---
MASH_RATIO = 1.33  # mashed ball / free-air ball at the standard settings
MASH_MIN = 1.05
WEDGE_WIDTH_RATIO = 1.4  # first and second wedge width / wire diameter at the standard
STITCH_WIDTH_RATIO = 2.6  # ball-stitch crescent width / wire diameter (capillary face)
WEDGE_LENGTH_RATIO = 1.5  # wedge bond length / wire diameter
LOOP_SIGMA_UM = 1.5  # job mean of the measured loop height
EFO_MAX_FAB_UM = {"AU": 100.0, "CU": 90.0}  # largest ball the EFO melts in one spark
WEDGE_TAIL_DIAMETERS = 2.0  # wire torn off after each wedge stitch

# --- strength ---
UTS_MPA = {"AU": 200.0, "CU": 250.0, "AL": 200.0}  # 25 µm: Au ≈ 10 gf, Cu ≈ 12.5 gf
ELONGATION = {"AU": 0.04, "CU": 0.10, "AL": 0.02}
NECK = {"AU": 0.85, "CU": 0.85}  # ball neck (HAZ) strength / wire breaking load
HAZ_DIAMETERS = {"AU": 5.0, "CU": 4.0}  # heat-affected zone above the ball
HEEL = 0.9
BALL_ADHESION, WEDGE_ADHESION = 1.5, 1.2  # bond lift force / breaking load at f_b = 1
SHEAR_MPA = {"AU": 120.0, "CU": 150.0, "AL": 60.0}

# --- time and wear ---
SETUP_S = 30.0  # load the strip or wafer, preheat, check the taught pattern
UNIT_S = 0.4  # index and pattern recognition per unit
WIRE_MOTION_S = 0.035  # xyz motion, EFO and looping per wire
SPAN_S_PER_MM = 0.008
WEDGE_ROTATE_S = 0.05  # the wedge head turns to each wire's direction
ASSIST_S = 15.0  # operator assist per non-stick
TOUCHDOWN_WEAR = {"AU": 1.0, "CU": 3.0, "AL": 1.0}  # capillary count per touchdown
HEATER_OVERSHOOT = 0.03  # of (T − 25 °C) while the heater settles
TEMP_SIGMA_C = 0.8


# --- the model, as pure functions ---------------------------------------------------------


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def thermal_factor(wire: str, bond_type: str, temp_c: float) -> float:
    t_nom = STANDARD[(wire, bond_type)].temp
    k = -BOND_EA_J_MOL[wire] / R_GAS * (1.0 / (temp_c + 273.15) - 1.0 / (t_nom + 273.15))
    return min(THERMAL_CAP, math.exp(k))


def bond_energy(
    force_ratio: float, power_ratio: float, time_ratio: float, factor: float = 1.0
) -> float:
    """Energy index E of a bond; `factor` = thermal × surface × wear."""
    return float(force_ratio**EXP_FORCE * power_ratio**EXP_POWER * time_ratio**EXP_TIME) * factor


def nonstick_rate(energy: float) -> float:
    """Share of bonds that do not stick."""
    if energy <= 0:
        return 1.0
    return _phi((math.log(E_CRIT) - math.log(energy)) / BOND_SIGMA)


def bonded_fraction(energy: float) -> float:
    return 1.0 - math.exp(-((energy / E_HALF) ** 2))


def damage_index(force_ratio: float, power_ratio: float, time_ratio: float) -> float:
    return float(force_ratio**0.5 * power_ratio**0.8 * time_ratio**0.2)


def damage_rate(index: float) -> float:
    """Share of bonds over-deformed: cratered pad (1st bond) or torn tail (2nd bond)."""
    return _phi((math.log(index) - math.log(D_CRIT)) / DAMAGE_SIGMA)


def surface_factor(wire: str, surface: str, table: str, forming_gas: float) -> float:
    base = (PAD_BOND if table == "pad" else LEAD_BOND)[wire][surface]
    if surface == "CU" and forming_gas < FORMING_GAS_MIN_LMIN:
        base *= OXIDE_FACTOR
    return base


def wear_factor(used: float, k: float) -> float:
    u = min(max(used, 0.0), 1.0)
    return 1.0 - k * u * u


def mashed_ball_um(fab_um: float, force_ratio: float, power_ratio: float) -> float:
    return fab_um * max(MASH_MIN, MASH_RATIO * float(force_ratio**0.25 * power_ratio**0.2))


def ball_height_um(fab_um: float, ball_um: float) -> float:
    """Volume kept: π·D_fab³/6 = π·D_b²·H/4."""
    return 2.0 * fab_um**3 / (3.0 * ball_um**2)


def wedge_width_um(d_um: float, force_ratio: float, power_ratio: float, ratio: float) -> float:
    return d_um * max(1.1, ratio * float(force_ratio**0.25 * power_ratio**0.2))


def wedge_thickness_um(d_um: float, width_um: float) -> float:
    return math.pi * d_um**2 / (4.0 * width_um)


def min_loop_um(bond_type: str, d_um: float, ball_height: float) -> float:
    return ball_height + 2.0 * d_um if bond_type == "BALL_STITCH" else 1.5 * d_um


def haz_um(wire: str, d_um: float) -> float:
    return HAZ_DIAMETERS.get(wire, 0.0) * d_um


def breaking_load_gf(wire: str, d_um: float) -> float:
    area_m2 = math.pi * (d_um * 1e-6) ** 2 / 4.0
    return UTS_MPA[wire] * 1e6 * area_m2 * GF_PER_N


def hook_factor(span_um: float, loop_um: float, elongation: float) -> float:
    """Pull / weakest-link load for a mid-span hook: 2·sin θ of the legs stretched by the
    elongation at break (at most 2: two vertical legs)."""
    half = span_um / 2.0
    leg = math.hypot(loop_um, half) * (1.0 + elongation)
    rise = math.sqrt(leg * leg - half * half)
    return min(2.0, 2.0 * rise / leg)


def neck_factor(wire: str, d_um: float, loop_um: float) -> float:
    """Ball neck strength / breaking load; a loop bent inside the HAZ cracks the neck."""
    haz = haz_um(wire, d_um)
    return NECK[wire] * (0.5 + 0.5 * min(1.0, loop_um / haz))


def heel_factor(damage: float) -> float:
    return HEEL * min(1.0, float(damage**-HEEL_EXPONENT))


def wire_length_mm(
    bond_type: str, span_mm: float, loop_um: float, d_um: float, fab: float
) -> float:
    """Wire per bond: up to the loop height, down to the lead, plus the ball (or wedge tail)."""
    loop_mm, d_mm = loop_um / 1000.0, d_um / 1000.0
    path = loop_mm + math.hypot(span_mm, loop_mm)
    if bond_type == "BALL_STITCH":
        return path + (2.0 / 3.0) * (fab / 1000.0) ** 3 / d_mm**2
    return path + WEDGE_TAIL_DIAMETERS * d_mm


def wire_seconds(bond_type: str, span_mm: float, bond_ms: float, stitch_ms: float) -> float:
    rotate = WEDGE_ROTATE_S if bond_type == "WEDGE" else 0.0
    return WIRE_MOTION_S + (bond_ms + stitch_ms) / 1000.0 + span_mm * SPAN_S_PER_MM + rotate


def job_seconds(units: int, wires: int, per_wire_s: float, nonsticks: int = 0) -> float:
    return SETUP_S + units * UNIT_S + wires * per_wire_s + nonsticks * ASSIST_S


def heater_peak_c(temp_c: float) -> float:
    return temp_c + HEATER_OVERSHOOT * (temp_c - 25.0)


@dataclass(frozen=True)
class Model:
    """Noise-free outcome of a wire_bond job (per-bond rates, job means)."""

    d: float  # wire diameter, µm
    fab: float  # free-air ball, µm (0 for WEDGE)
    energy_first: float
    energy_second: float
    damage_first: float  # incl. pad hardness
    damage_second: float
    nsop_rate: float
    nsol_rate: float
    crater_rate: float
    tail_rate: float
    ball_diameter: float
    ball_height: float
    stitch_width: float
    ball_shear: float
    loop_height: float
    wire_pull: float
    haz: float  # µm, 0 for WEDGE
    wire_mm: float  # per wire
    wire_s: float  # per wire


def model(values: Mapping[str, Value], capillary_used: float = 0.0) -> Model:
    """The job's physics from validated values and the capillary's used fraction."""
    wire, kind = str(values["wire"]), str(values["bond_type"])
    d = wire_diameter_um(values)
    s = settings(values)
    std = standard_settings(wire, kind, d)
    f1, p1, t1 = (s[k] / std[k] for k in ("bond_force", "bond_power", "bond_time"))
    f2, p2, t2 = (s[k] / std[k] for k in ("stitch_force", "stitch_power", "stitch_time"))
    gas = float(values["forming_gas"])
    f_t = thermal_factor(wire, kind, float(values["bond_temp"]))
    pad, lead = str(values["pad_metal"]), str(values["lead_finish"])
    e1 = bond_energy(f1, p1, t1, f_t * surface_factor(wire, pad, "pad", gas)
                     * wear_factor(capillary_used, WEAR_FIRST))  # fmt: skip
    e2 = bond_energy(f2, p2, t2, f_t * surface_factor(wire, lead, "lead", gas)
                     * wear_factor(capillary_used, WEAR_SECOND))  # fmt: skip
    dmg1, dmg2 = damage_index(f1, p1, t1), damage_index(f2, p2, t2)
    hard = PAD_HARDNESS[wire][pad]
    fab = s["fab_diameter"]
    tensile = breaking_load_gf(wire, d)
    if kind == "BALL_STITCH":
        ball = mashed_ball_um(fab, f1, p1)
        height = ball_height_um(fab, ball)
        area_m2 = math.pi * (ball * 1e-6) ** 2 / 4.0
        stitch = wedge_width_um(d, f2, p2, STITCH_WIDTH_RATIO)
    else:
        ball = wedge_width_um(d, f1, p1, WEDGE_WIDTH_RATIO)
        height = wedge_thickness_um(d, ball)
        area_m2 = ball * 1e-6 * WEDGE_LENGTH_RATIO * d * 1e-6
        stitch = wedge_width_um(d, f2, p2, WEDGE_WIDTH_RATIO)
    loop = max(float(values["loop_height"]), min_loop_um(kind, d, height))
    fb1, fb2 = bonded_fraction(e1), bonded_fraction(e2)
    if kind == "BALL_STITCH":
        first = min(neck_factor(wire, d, loop), BALL_ADHESION * fb1)
    else:
        first = min(heel_factor(dmg1), WEDGE_ADHESION * fb1)
    second = min(heel_factor(dmg2), WEDGE_ADHESION * fb2)
    span_mm = float(values["span"])
    pull = tensile * min(first, second) * hook_factor(1000.0 * span_mm, loop, ELONGATION[wire])
    return Model(
        d=d,
        fab=fab,
        energy_first=e1,
        energy_second=e2,
        damage_first=dmg1 * hard,
        damage_second=dmg2,
        nsop_rate=nonstick_rate(e1),
        nsol_rate=nonstick_rate(e2),
        crater_rate=damage_rate(dmg1 * hard),
        tail_rate=damage_rate(dmg2),
        ball_diameter=ball,
        ball_height=height,
        stitch_width=stitch,
        ball_shear=SHEAR_MPA[wire] * 1e6 * area_m2 * fb1 * GF_PER_N,
        loop_height=loop,
        wire_pull=pull,
        haz=haz_um(wire, d) if kind == "BALL_STITCH" else 0.0,
        wire_mm=wire_length_mm(kind, span_mm, loop, d, fab),
        wire_s=wire_seconds(kind, span_mm, s["bond_time"], s["stitch_time"]),
    )


# --- the tool --------------------------------------------------------------------------------


class WirebonderSim(SimTool):
    interface = WIREBONDER

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        capillary = next(c for c in self.interface.consumables if c.name == "capillary")
        m = model(values, self.used_fraction(capillary))
        wire, kind = str(values["wire"]), str(values["bond_type"])
        units = int(float(values["units"]))
        wires = units * int(float(values["wires_per_unit"]))
        limit = int(float(values["nonstick_limit"]))
        temp = float(values["bond_temp"])

        nsop = poisson(rng, wires * m.nsop_rate)
        nsol = poisson(rng, wires * m.nsol_rate)
        craters = poisson(rng, wires * m.crater_rate)
        tails = poisson(rng, wires * m.tail_rate)
        bonds = 2 * wires + nsop + nsol  # each non-stick is re-bonded by assist
        wire_m = wires * m.wire_mm / 1000.0
        total = job_seconds(units, wires, m.wire_s, nsop + nsol)
        ball = m.ball_diameter * rng.gauss(1.0, 0.015)
        results = {
            "ball_diameter": ball,
            "ball_height": (
                ball_height_um(m.fab, ball)
                if kind == "BALL_STITCH"
                else wedge_thickness_um(m.d, ball)
            ),
            "stitch_width": m.stitch_width * rng.gauss(1.0, 0.03),
            "ball_shear": m.ball_shear * rng.gauss(1.0, 0.05),
            "wire_pull": m.wire_pull * rng.gauss(1.0, 0.05),
            "loop_height": m.loop_height + rng.gauss(0.0, LOOP_SIGMA_UM),
            "nsop": float(nsop),
            "nsol": float(nsol),
            "craters": float(craters),
            "wires": float(wires),
            "bonds": float(bonds),
            "wire_used": wire_m,
            "temp_measured": temp + rng.gauss(0.0, TEMP_SIGMA_C),
            "duration": total / 60.0,
        }
        wear = {"capillary": bonds * TOUCHDOWN_WEAR[wire], "wire_spool": wire_m}

        # alarms: (fraction of the bonding phase, code); the earliest stops the job
        events: list[tuple[float, int]] = []
        if heater_peak_c(temp) > float(values["temp_limit"]):
            events.append((-0.5, 1005))  # while the heater settles, before the first bond
        if kind == "BALL_STITCH" and m.fab > EFO_MAX_FAB_UM[wire]:
            events.append((0.0, 1004))  # the first spark
        if nsop > limit:
            events.append(((limit + 1) / (nsop + 1), 1001))
        if nsol > limit:
            events.append(((limit + 1) / (nsol + 1), 1002))
        if tails > 0:
            events.append((1.0 / (tails + 1), 1003))
        alarm = None
        if events:
            at, code = min(events)
            start = SETUP_S * (1.0 if at >= 0 else 0.5)
            alarm = (code, (start + max(at, 0.0) * (total - SETUP_S)) / total)

        warnings = []
        if kind == "BALL_STITCH" and m.loop_height < m.haz:
            warnings.append(1080)
        if craters > 0:
            warnings.append(1081)
        if m.ball_diameter > float(values["pad_opening"]):
            warnings.append(1082)
        if nsop + nsol > 0:
            warnings.append(1083)
        return Plan(total, results, wear, alarm, warnings)
