"""Simulated coater: spin, spray, dispense, stencil print and cure oven (process-reference.md
§2 COAT).

Spin: the as-coated (soft-baked) thickness is h = h_ref·(ω_ref/ω)^α·(t_ref/t)^β with h_ref at
ω_ref = 3000 rpm and t_ref = 30 s per material (POLYIMIDE α = 0.81 [PIspin]; PI-2611 class: 8 µm
as coated, ≈ 4.8 µm cured, at 3000 rpm) and a weak spin-time thinning β = 0.08. The soft bake
drives solvent out by diffusion: s = s₀·e^(−t/τ), τ = τ_ref·(h/10 µm)²·e^(E/R·(1/T − 1/T_ref)).

Spray: each pass lays down thickness/passes of dry film; a wet pass thicker than the drying
length w₀ (1.5 µm at a 60 °C chuck, longer when hotter) runs down the walls, so the sidewall
keeps 1/(1 + w/w₀) of it, divided by (1 + AR/3); bottoms see the spray through the opening,
1/(1 + (AR/1.5)²).

Dispense: viscosity μ(T) = μ₂₅·e^(E/R·(1/T − 1/298 K))·2^(age/pot life) (the pot life is the
time the viscosity takes to double). The needle (12.7 mm long, valve at 40 °C) passes
Q = πr⁴ΔP/(8μL) (Hagen–Poiseuille); the tool runs at half its 600 kPa limit unless a rate is
set. Capillary underfill crosses the die in t = 3μL²/(hγcosθ) (Washburn) at the substrate
temperature; if that is longer than the gel time there (the cure kinetics to α = 0.55) the front
stops at √(t_gel/t) of the way. Excess volume forms a 45° fillet round the die. Dots are
spherical caps and lines circular segments at the material's contact angle.

Print: transfer efficiency TE = 0.88·(1 − e^(−AR/0.25)) at 40 mm/s (≈0.82 at the IPC-7525 area
ratio 0.66), less at higher squeegee speed, on a worn stencil and with aged paste; the printed
height is stencil × TE.

Cure: dα/dt = A·e^(−Ea/RT)(1−α)ⁿ integrated over the oven profile (ramp 5 °C/min from 25 °C,
hold, cool at 5 °C/min to 60 °C). The rate constants are set so the bottom corner of each full
cure window gives: POLYIMIDE/PSPI 300 °C 60 min and LOW_T_PI 200 °C 60 min 95.5 %; epoxies,
ink, paste and adhesive 92 %; BCB 210 °C 40 min 75 % (the Cyclotene soft cure; 250 °C gives a
hard cure). The capillary underfill is a snap cure that gels in 15 min at 110 °C (1.6 min at
150 °C). Cured thickness h(1 − s·α), with shrink s polyimides 0.3–0.45, epoxies 0.02–0.05; Tg
by DiBenedetto.
In N₂ the oven purges, O₂(t) = 20.9 %·e^(−t/τ) + floor, until O₂ is under the job's limit;
it alarms when that takes longer than 60 min.

Numbers not in the reference (viscosities, surface tensions, contact angles, pot lives, Tg,
kinetics, drying and bead constants) are engineering estimates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.coater import (
    COATER,
    NEEDLE_ID_UM,
    PARTICLE_UM,
    POT_LIFE_H,
    SUPPLY,
    area_ratio,
    gap_volume_ul,
)
from simulators.physics import R_GAS
from simulators.tool import Plan, SimTool

# --- spin coating ---------------------------------------------------------------------------
SPIN_REF_RPM, SPIN_REF_S, SPIN_TIME_EXP = 3000.0, 30.0, 0.08
# material -> (h_ref µm at 3000 rpm / 30 s, α, uniformity 1σ % at 3000 rpm, edge-bead factor)
SPIN = {
    "POLYIMIDE": (8.0, 0.81, 1.0, 0.6),
    "LOW_T_PI": (8.0, 0.75, 1.0, 0.6),
    "PSPI": (10.0, 0.70, 1.2, 0.7),
    "BCB": (5.0, 0.60, 0.8, 0.4),
    "EPOXY": (10.0, 0.60, 1.5, 0.8),
    "DIELECTRIC": (7.0, 0.60, 1.2, 0.6),
    "PROTECTIVE": (15.0, 0.60, 1.5, 0.8),
    "PHOTO_INK": (20.0, 0.60, 2.0, 0.9),
    "SEAL_RESIN": (25.0, 0.60, 2.0, 1.0),
    "ADHESIVE": (12.0, 0.60, 1.5, 0.8),
    "PR_THIN": (1.6, 0.50, 0.5, 0.3),
    "PR_THICK": (20.0, 0.55, 1.5, 1.0),
}
EBR_LIP = 0.05  # edge-bead removal leaves a lip of this share of the bead
SOLVENT_START_PCT = 20.0  # solvent in the film when spinning ends
SOLVENT_TAU_S, SOLVENT_REF_UM, SOLVENT_REF_C, SOLVENT_EA = 30.0, 10.0, 110.0, 40_000.0
SOLVENT_WARN_PCT = 10.0
SPIN_DISPENSE_S, EBR_S, TRANSFER_S, COOL_PLATE_S = 5.0, 20.0, 15.0, 30.0

# --- spray coating --------------------------------------------------------------------------
SPRAY_DRY_UM, SPRAY_REF_C, SPRAY_TEMP_SCALE = 1.5, 60.0, 25.0
SIDEWALL_AR, BOTTOM_AR = 3.0, 1.5
SPRAY_SOLIDS, SPRAY_TRANSFER = 0.15, 0.5  # solids in the diluted material; share on the wafer
SPRAY_PASS_S = 40.0  # per pass over a 300 mm wafer
SPRAY_LOAD_S = 30.0

# --- material rheology ----------------------------------------------------------------------
# material -> (viscosity at 25 °C Pa·s, surface tension N/m, contact angle deg)
RHEOLOGY = {
    "POLYIMIDE": (5.0, 0.040, 20.0),
    "LOW_T_PI": (4.0, 0.040, 20.0),
    "PSPI": (6.0, 0.040, 20.0),
    "BCB": (0.5, 0.035, 15.0),
    "EPOXY": (30.0, 0.040, 35.0),
    "DIELECTRIC": (3.0, 0.035, 25.0),
    "PROTECTIVE": (20.0, 0.040, 30.0),
    "PHOTO_INK": (20.0, 0.035, 30.0),
    "SEAL_RESIN": (15.0, 0.040, 30.0),
    "UNDERFILL": (10.0, 0.030, 25.0),
    "TC_EPOXY": (60.0, 0.040, 60.0),
    "CONDUCTIVE_PASTE": (40.0, 0.040, 70.0),
    "PR_THIN": (0.03, 0.030, 10.0),
    "PR_THICK": (5.0, 0.030, 15.0),
    "ADHESIVE": (20.0, 0.040, 65.0),
    "NCP": (15.0, 0.035, 30.0),
    "ACP": (40.0, 0.040, 60.0),
}
VISCOSITY_EA = 50_000.0  # J/mol, flow activation energy
POT_WARN = 0.8

# --- dispensing -----------------------------------------------------------------------------
NEEDLE_LENGTH_M = 12.7e-3
NEEDLE_TEMP_C = 40.0
PRESSURE_LIMIT_KPA = 600.0
AUTO_PRESSURE_KPA = 300.0
PUMP_MAX_ML_MIN = 5.0
CLOG_PARTICLES = 4.0  # a needle narrower than this many particles clogs
PREHEAT_S, MOVE_S, PURGE_ML = 60.0, 0.3, 0.05
GEL_ALPHA = 0.55
CAPILLARY_VOIDS_PCT = 0.5
FILL_VOIDS_PCT = 1.0  # at 1 Pa·s, ∝ √μ

# --- stencil print --------------------------------------------------------------------------
TE_MAX, TE_AR, TE_REF_SPEED, TE_SPEED_LOSS = 0.88, 0.25, 40.0, 0.1  # per 110 mm/s faster
STENCIL_WEAR_LOSS, PASTE_AGE_LOSS = 0.05, 0.05
PRINT_WASTE = 0.05
PRINT_LOAD_S, PRINT_SEPARATE_S, PRINT_INSPECT_S, PRINT_OVERTRAVEL_MM = 30.0, 5.0, 20.0, 50.0

# --- cure -----------------------------------------------------------------------------------
RAMP_C_MIN, START_C, UNLOAD_C, RAMP_STEP_MIN = 5.0, 25.0, 60.0, 0.5
# material -> (n, Ea J/mol, k at T_ref 1/min, T_ref °C): k set so the bottom corner of the
# full-cure window gives the conversion in the module docstring
KINETICS = {
    "POLYIMIDE": (1.0, 100_000.0, 0.04430, 300.0),
    "PSPI": (1.0, 100_000.0, 0.04430, 300.0),
    "LOW_T_PI": (1.0, 90_000.0, 0.04586, 200.0),
    "BCB": (1.0, 150_000.0, 0.5364, 250.0),
    "EPOXY": (1.5, 75_000.0, 0.1361, 150.0),
    "PROTECTIVE": (1.5, 75_000.0, 0.1361, 150.0),
    "SEAL_RESIN": (1.5, 75_000.0, 0.1361, 150.0),
    "TC_EPOXY": (1.5, 75_000.0, 0.1361, 150.0),
    "DIELECTRIC": (1.5, 75_000.0, 0.1361, 150.0),
    "UNDERFILL": (1.5, 75_000.0, 0.06543, 110.0),  # snap cure: gels in 15 min at 110 °C
    "PHOTO_INK": (1.5, 75_000.0, 0.1373, 140.0),
    "ADHESIVE": (1.5, 70_000.0, 0.1376, 125.0),
    "CONDUCTIVE_PASTE": (1.5, 75_000.0, 0.2277, 150.0),
    "NCP": (1.5, 75_000.0, 0.06543, 110.0),  # snap cure like the capillary underfill
    "ACP": (1.5, 75_000.0, 0.2277, 150.0),
}
# material -> (shrink s, Tg0 °C, Tg∞ °C)
CURED = {
    "POLYIMIDE": (0.40, 80.0, 360.0),
    "PSPI": (0.45, 80.0, 320.0),
    "LOW_T_PI": (0.30, 60.0, 260.0),
    "BCB": (0.05, 60.0, 350.0),
    "EPOXY": (0.03, -20.0, 150.0),
    "PROTECTIVE": (0.03, -20.0, 150.0),
    "SEAL_RESIN": (0.03, -20.0, 160.0),
    "TC_EPOXY": (0.02, -20.0, 140.0),
    "DIELECTRIC": (0.08, 0.0, 180.0),
    "UNDERFILL": (0.02, -20.0, 140.0),
    "PHOTO_INK": (0.05, -10.0, 130.0),
    "ADHESIVE": (0.03, -20.0, 130.0),
    "CONDUCTIVE_PASTE": (0.05, 0.0, 120.0),
    "NCP": (0.02, -20.0, 140.0),
    "ACP": (0.03, 0.0, 140.0),
}
TG_LAMBDA = 0.4
INCOMPLETE_CURE = 0.90
OVEN_TEMP_SIGMA = 0.5
O2_AIR_PPM = 209_000.0
O2_FLOOR_PPM = 12.0  # N₂ purity plus door-seal leak
PURGE_TAU_MIN = 4.0
PURGE_TIMEOUT_MIN = 60.0


# --- the model, as pure functions -----------------------------------------------------------


def spin_thickness_um(material: str, rpm: float, seconds: float = SPIN_REF_S) -> float:
    """As-coated thickness h = h_ref·(ω_ref/ω)^α·(t_ref/t)^β."""
    h_ref, alpha, _, _ = SPIN[material]
    return (
        h_ref * math.pow(SPIN_REF_RPM / rpm, alpha) * math.pow(SPIN_REF_S / seconds, SPIN_TIME_EXP)
    )


def spin_uniformity_pct(material: str, rpm: float, seconds: float) -> float:
    """1σ non-uniformity: worse at low speed and short spins."""
    return SPIN[material][2] * math.sqrt(SPIN_REF_RPM / rpm) * math.pow(SPIN_REF_S / seconds, 0.3)


def edge_bead_um(material: str, thickness_um: float, rpm: float, ebr_width_mm: float) -> float:
    bead = thickness_um * SPIN[material][3] * math.sqrt(SPIN_REF_RPM / rpm)
    return bead * EBR_LIP if ebr_width_mm > 0 else bead


def residual_solvent_pct(thickness_um: float, bake_c: float, bake_s: float) -> float:
    """s₀·e^(−t/τ): diffusion out of the film, τ ∝ h² and Arrhenius in the bake temperature."""
    tau = (
        SOLVENT_TAU_S
        * (thickness_um / SOLVENT_REF_UM) ** 2
        / _arrhenius_factor(SOLVENT_EA, bake_c, SOLVENT_REF_C)
    )
    return SOLVENT_START_PCT * math.exp(-bake_s / tau)


def spin_seconds(spin_s: float, bake_s: float, ebr: bool) -> float:
    return SPIN_DISPENSE_S + spin_s + (EBR_S if ebr else 0.0) + TRANSFER_S + bake_s + COOL_PLATE_S


def spray_profile_um(
    thickness_um: float, passes: int, aspect_ratio: float, chuck_c: float
) -> tuple[float, float]:
    """(sidewall, bottom) thickness for a top thickness, from the per-pass wet film run-off
    and the line of sight into the features."""
    per_pass = thickness_um / passes
    dry = SPRAY_DRY_UM * math.exp((chuck_c - SPRAY_REF_C) / SPRAY_TEMP_SCALE)
    retention = 1.0 / (1.0 + per_pass / dry)
    sidewall = thickness_um * retention / (1.0 + aspect_ratio / SIDEWALL_AR)
    bottom = thickness_um / (1.0 + (aspect_ratio / BOTTOM_AR) ** 2)
    return sidewall, bottom


def wafer_area_cm2(diameter_mm: float) -> float:
    return math.pi * (diameter_mm / 20.0) ** 2


def spray_material_ml(thickness_um: float, diameter_mm: float) -> float:
    return wafer_area_cm2(diameter_mm) * thickness_um * 1e-4 / (SPRAY_SOLIDS * SPRAY_TRANSFER)


def spray_seconds(passes: int, diameter_mm: float, bake_s: float) -> float:
    return SPRAY_LOAD_S + passes * SPRAY_PASS_S * (diameter_mm / 300.0) ** 2 + bake_s + COOL_PLATE_S


def viscosity_pa_s(material: str, temp_c: float, pot_age_h: float = 0.0) -> float:
    """μ₂₅·e^(E/R·(1/T − 1/298 K)), doubling over each pot life of age."""
    mu25, pot_life = RHEOLOGY[material][0], POT_LIFE_H[material]
    return (
        mu25 / _arrhenius_factor(VISCOSITY_EA, temp_c, 25.0) * math.pow(2.0, pot_age_h / pot_life)
    )


def needle_pressure_kpa(needle: str, mu_pa_s: float, flow_ml_min: float) -> float:
    """Hagen–Poiseuille ΔP = 8μLQ/(πr⁴) through the needle."""
    r = NEEDLE_ID_UM[needle] * 1e-6 / 2.0
    q = flow_ml_min * 1e-6 / 60.0
    return 8.0 * mu_pa_s * NEEDLE_LENGTH_M * q / (math.pi * r**4) / 1000.0


def auto_flow_ml_min(needle: str, mu_pa_s: float) -> float:
    """The tool's own rate: half its pressure limit, at most the pump's 5 mL/min."""
    per_ml_min = needle_pressure_kpa(needle, mu_pa_s, 1.0)
    return min(PUMP_MAX_ML_MIN, AUTO_PRESSURE_KPA / per_ml_min)


def washburn_seconds(material: str, temp_c: float, flow_mm: float, gap_um: float,
                     pot_age_h: float = 0.0) -> float:  # fmt: skip
    """t = 3μL²/(hγcosθ) at the substrate temperature."""
    _, gamma, theta = RHEOLOGY[material]
    mu = viscosity_pa_s(material, temp_c, pot_age_h)
    length, gap = flow_mm * 1e-3, gap_um * 1e-6
    return 3.0 * mu * length**2 / (gap * gamma * math.cos(math.radians(theta)))


def gel_seconds(material: str, temp_c: float) -> float:
    """Isothermal time to the gel point α = 0.55 from the cure kinetics."""
    n, _, _, _ = KINETICS[material]
    k = cure_rate_per_min(material, temp_c)
    if n == 1.0:
        minutes = -math.log(1.0 - GEL_ALPHA) / k
    else:
        minutes = ((1.0 - GEL_ALPHA) ** (1.0 - n) - 1.0) / ((n - 1.0) * k)
    return minutes * 60.0


def fill_fraction(fill_s: float, gel_s: float) -> float:
    """Share of the gap reached: the Washburn front (x ∝ √t) stops at the gel point."""
    return 1.0 if fill_s <= gel_s else math.sqrt(gel_s / fill_s)


def fillet_um(excess_ul: float, flow_mm: float) -> float:
    """45° fillet round a square die of edge L: excess = 4L·w²/2."""
    return 1000.0 * math.sqrt(max(excess_ul, 0.0) / (2.0 * flow_mm))


def dot_diameter_um(material: str, volume_ul: float) -> float:
    """Base diameter of a spherical cap of the volume at the material's contact angle."""
    th = math.radians(RHEOLOGY[material][2])
    v = volume_ul * 1e9  # µm³
    a = 3.0 * v * math.sin(th) ** 3 / (math.pi * (2 + math.cos(th)) * (1 - math.cos(th)) ** 2)
    return 2.0 * math.cbrt(a)


def line_width_um(material: str, volume_ul: float, length_mm: float) -> float:
    """Width of a bead with a circular-segment cross-section A = a²(θ − sinθcosθ)/sin²θ."""
    th = math.radians(RHEOLOGY[material][2])
    area = volume_ul * 1e9 / (length_mm * 1000.0)  # µm²
    a = math.sqrt(area * math.sin(th) ** 2 / (th - math.sin(th) * math.cos(th)))
    return 2.0 * a


def fill_voids_pct(material: str, temp_c: float, pot_age_h: float = 0.0) -> float:
    return FILL_VOIDS_PCT * math.sqrt(viscosity_pa_s(material, temp_c, pot_age_h))


def dispense_seconds(volume_ul: float, sites: int, flow_ml_min: float, fill_s: float) -> float:
    shot = volume_ul * 1e-3 / flow_ml_min * 60.0
    return PREHEAT_S + sites * (shot + MOVE_S) + fill_s


def transfer_efficiency(
    ratio: float, speed_mm_s: float, stencil_used: float = 0.0, age_share: float = 0.0
) -> float:
    """Printed / aperture volume, from the area ratio, squeegee speed, stencil wear and paste
    age (share of its pot life)."""
    speed = 1.0 - TE_SPEED_LOSS * (speed_mm_s - TE_REF_SPEED) / 110.0
    te = TE_MAX * (1.0 - math.exp(-ratio / TE_AR)) * speed
    return te * (1.0 - STENCIL_WEAR_LOSS * stencil_used) * (1.0 - PASTE_AGE_LOSS * age_share)


def print_uniformity_pct(ratio: float) -> float:
    return 2.0 + 1.5 / ratio


def print_seconds(diameter_mm: float, speed_mm_s: float) -> float:
    stroke = (diameter_mm + PRINT_OVERTRAVEL_MM) / speed_mm_s
    return PRINT_LOAD_S + stroke + PRINT_SEPARATE_S + PRINT_INSPECT_S


def cure_rate_per_min(material: str, temp_c: float) -> float:
    _, ea, k_ref, t_ref = KINETICS[material]
    return k_ref * _arrhenius_factor(ea, temp_c, t_ref)


def cure_profile(temp_c: float, hold_min: float) -> list[tuple[float, float]]:
    """Oven profile as (minutes, temperature) steps: ramp up, hold, cool to unload."""
    steps: list[tuple[float, float]] = []
    t = START_C
    while t < temp_c:
        nxt = min(temp_c, t + RAMP_C_MIN * RAMP_STEP_MIN)
        steps.append(((nxt - t) / RAMP_C_MIN, (t + nxt) / 2.0))
        t = nxt
    steps.append((hold_min, temp_c))
    t = temp_c
    while t > UNLOAD_C:
        nxt = max(UNLOAD_C, t - RAMP_C_MIN * RAMP_STEP_MIN)
        steps.append(((t - nxt) / RAMP_C_MIN, (t + nxt) / 2.0))
        t = nxt
    return steps


def degree_of_cure(material: str, temp_c: float, hold_min: float) -> float:
    """α after the oven profile, integrating dα/dt = k(T)(1−α)ⁿ exactly over each step."""
    n = KINETICS[material][0]
    left = 1.0  # 1 − α
    for minutes, temp in cure_profile(temp_c, hold_min):
        k = cure_rate_per_min(material, temp)
        if n == 1.0:
            left *= math.exp(-k * minutes)
        else:
            left = (left ** (1.0 - n) + (n - 1.0) * k * minutes) ** (1.0 / (1.0 - n))
    return 1.0 - left


def glass_transition_c(material: str, alpha: float) -> float:
    """DiBenedetto: Tg = Tg0 + (Tg∞ − Tg0)·λα/(1 − (1 − λ)α)."""
    _, tg0, tg_inf = CURED[material]
    return tg0 + (tg_inf - tg0) * TG_LAMBDA * alpha / (1.0 - (1.0 - TG_LAMBDA) * alpha)


def purge_minutes(o2_limit_ppm: float) -> float:
    """Time for O₂ = 20.9 %·e^(−t/τ) + floor to fall below the limit (inf if it never does)."""
    if o2_limit_ppm <= O2_FLOOR_PPM:
        return math.inf
    return PURGE_TAU_MIN * math.log((O2_AIR_PPM - O2_FLOOR_PPM) / (o2_limit_ppm - O2_FLOOR_PPM))


def cure_minutes(temp_c: float, hold_min: float, purge_min: float = 0.0) -> float:
    return sum(m for m, _ in cure_profile(temp_c, hold_min)) + purge_min


def _arrhenius_factor(ea: float, temp_c: float, ref_c: float) -> float:
    """k(T)/k(T_ref) = e^(−Ea/R·(1/T − 1/T_ref))."""
    return math.exp(-ea / R_GAS * (1.0 / (temp_c + 273.15) - 1.0 / (ref_c + 273.15)))


# --- the tool -------------------------------------------------------------------------------


class CoaterSim(SimTool):
    interface = COATER

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        if op.name == "spin_coat":
            return self._spin(values, rng)
        if op.name == "spray_coat":
            return self._spray(values, rng)
        if op.name == "dispense":
            return self._dispense(values, rng)
        if op.name == "print":
            return self._print(values, rng)
        return self._cure(values, rng)

    def _spin(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material = str(v["material"])
        rpm, spin_s = float(v["spin_speed"]), float(v["spin_time"])
        bake_c, bake_s = float(v["softbake_temp"]), float(v["softbake_time"])
        ebr, used = float(v["ebr_width"]), float(v["dispense_volume"])
        thickness = spin_thickness_um(material, rpm, spin_s) * rng.gauss(1.0, 0.01)
        solvent = residual_solvent_pct(thickness, bake_c, bake_s)
        seconds = spin_seconds(spin_s, bake_s, ebr > 0)
        results = {
            "thickness": thickness,
            "uniformity": spin_uniformity_pct(material, rpm, spin_s) * rng.lognormvariate(0, 0.1),
            "edge_bead": edge_bead_um(material, thickness, rpm, ebr) * rng.lognormvariate(0, 0.1),
            "residual_solvent": solvent,
            "speed_measured": rpm * rng.gauss(1.0, 0.0005),
            "material_used": used,
            "duration": seconds / 60.0,
        }
        plan = Plan(seconds, results, {SUPPLY[material]: used})
        if solvent > SOLVENT_WARN_PCT:
            plan.warnings.append(695)
        return plan

    def _spray(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material, goal = str(v["material"]), float(v["thickness"])
        passes, ar = int(float(v["passes"])), float(v["aspect_ratio"])
        chuck_c, diameter = float(v["chuck_temp"]), float(v["wafer_diameter"])
        bake_c, bake_s = float(v["softbake_temp"]), float(v["softbake_time"])
        top = goal * rng.gauss(1.0, 0.01)
        sidewall, bottom = spray_profile_um(top, passes, ar, chuck_c)
        used = spray_material_ml(goal, diameter)
        solvent = residual_solvent_pct(top, bake_c, bake_s)
        seconds = spray_seconds(passes, diameter, bake_s)
        results = {
            "top_thickness": top,
            "sidewall_thickness": sidewall,
            "bottom_thickness": bottom,
            "step_coverage": 100.0 * sidewall / top,
            "uniformity": (1.5 + 3.0 / math.sqrt(passes)) * rng.lognormvariate(0, 0.1),
            "residual_solvent": solvent,
            "material_used": used,
            "duration": seconds / 60.0,
        }
        plan = Plan(seconds, results, {SUPPLY[material]: used})
        if solvent > SOLVENT_WARN_PCT:
            plan.warnings.append(695)
        return plan

    def _dispense(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material, pattern = str(v["material"]), str(v["pattern"])
        volume, sites = float(v["volume"]), int(float(v["sites"]))
        temp, needle, age = float(v["substrate_temp"]), str(v["needle"]), float(v["pot_age"])
        mu_needle = viscosity_pa_s(material, NEEDLE_TEMP_C, age)
        flow = float(v["flow_rate"]) or auto_flow_ml_min(needle, mu_needle)
        pressure = needle_pressure_kpa(needle, mu_needle, flow)
        dispensed = volume * rng.gauss(1.0, 0.005)

        fill_s, reached, voids, fillet, footprint = 0.0, 1.0, 0.0, 0.0, 0.0
        if pattern == "CAPILLARY":
            gap, length = float(v["gap"]), float(v["flow_length"])
            fill_s = washburn_seconds(material, temp, length, gap, age)
            gel_s = gel_seconds(material, temp)
            reached = fill_fraction(fill_s, gel_s)
            voids = CAPILLARY_VOIDS_PCT * (1.0 + fill_s / gel_s) * rng.lognormvariate(0, 0.2)
            voids = min(100.0, voids + 100.0 * (1.0 - reached))
            fillet = fillet_um(dispensed - reached * gap_volume_ul(length, gap), length)
            fill_s = min(fill_s, gel_s)  # the front stops at the gel point
        elif pattern == "FILL":
            voids = fill_voids_pct(material, temp, age) * rng.lognormvariate(0, 0.2)
        elif pattern == "DOT":
            footprint = dot_diameter_um(material, dispensed)
        else:
            footprint = line_width_um(material, dispensed, float(v["line_length"]))
        used = volume * sites * 1e-3 + PURGE_ML
        seconds = dispense_seconds(volume, sites, flow, fill_s)
        results = {
            "dispensed": dispensed,
            "fill_time": fill_s,
            "fill_fraction": 100.0 * reached,
            "voids": voids,
            "fillet": fillet,
            "footprint": footprint,
            "viscosity": 1000.0 * viscosity_pa_s(material, temp, age),
            "flow_rate": flow,
            "pressure": pressure,
            "material_used": used,
            "duration": seconds / 60.0,
        }
        plan = Plan(seconds, results, {SUPPLY[material]: used})
        alarms: list[tuple[float, int]] = []  # (seconds into the job, code)
        if pressure > PRESSURE_LIMIT_KPA:
            alarms.append((PREHEAT_S, 602))  # the first shot
        needle_um, particle = NEEDLE_ID_UM[needle], PARTICLE_UM.get(material, 0.0)
        if needle_um < CLOG_PARTICLES * particle:
            share = (needle_um / (CLOG_PARTICLES * particle)) ** 2  # narrower clogs sooner
            alarms.append((PREHEAT_S + share * (seconds - PREHEAT_S - fill_s), 603))
        self._pot_life(plan, material, age, alarms)
        if reached < 1.0:
            plan.warnings.append(694)
        return plan

    def _print(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material, stencil = str(v["material"]), float(v["stencil_thickness"])
        speed, diameter = float(v["squeegee_speed"]), float(v["wafer_diameter"])
        age = float(v["pot_age"])
        ratio = area_ratio(float(v["aperture"]), stencil)
        used_share = self.used_fraction(
            next(c for c in self.interface.consumables if c.name == "stencil_cycles")
        )
        age_share = min(1.0, age / POT_LIFE_H[material])
        te = transfer_efficiency(ratio, speed, used_share, age_share) * rng.gauss(1.0, 0.01)
        printed = stencil * te
        used = (wafer_area_cm2(diameter) * float(v["open_area"]) / 100.0 * printed * 1e-4) * (
            1.0 + PRINT_WASTE
        )
        seconds = print_seconds(diameter, speed)
        results = {
            "printed_thickness": printed,
            "transfer_efficiency": 100.0 * te,
            "area_ratio": ratio,
            "uniformity": print_uniformity_pct(ratio) * rng.lognormvariate(0, 0.1),
            "material_used": used,
            "duration": seconds / 60.0,
        }
        plan = Plan(seconds, results, {SUPPLY[material]: used, "stencil_cycles": 1.0})
        self._pot_life(plan, material, age, [])
        return plan

    def _cure(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material, full = str(v["material"]), v["stage"] == "FULL"
        temp_set, hold = float(v["temp"]), float(v["time"])
        limit, thickness = float(v["o2"]), float(v["thickness"])
        n2 = v["atmosphere"] == "N2"
        purge = purge_minutes(limit) if n2 else 0.0
        alarm = None
        if purge > PURGE_TIMEOUT_MIN:
            purge = PURGE_TIMEOUT_MIN
            alarm = 606
        temp = temp_set + rng.gauss(0.0, OVEN_TEMP_SIGMA)
        alpha = degree_of_cure(material, temp, hold)
        shrink = CURED[material][0] * alpha
        minutes = cure_minutes(temp_set, hold, purge)
        o2 = min(0.95 * limit, O2_FLOOR_PPM * rng.lognormvariate(0, 0.1)) if n2 else O2_AIR_PPM
        results = {
            "degree_of_cure": 100.0 * alpha,
            "tg": glass_transition_c(material, alpha),
            "shrinkage": 100.0 * shrink,
            "cured_thickness": thickness * (1.0 - shrink),
            "temp_measured": temp,
            "o2_measured": o2,
            "duration": minutes,
        }
        plan = Plan(minutes * 60.0, results)
        if alarm is not None:
            plan.alarm = (alarm, PURGE_TIMEOUT_MIN / minutes)  # the purge gives up
        elif full and alpha < INCOMPLETE_CURE:
            plan.warnings.append(693)
        return plan

    def _pot_life(
        self, plan: Plan, material: str, age_h: float, alarms: list[tuple[float, int]]
    ) -> None:
        """Alarm where the material passes its pot life (at once if it already has), warn
        when the job ends past 80 % of it; the earliest alarm stops the job."""
        life, hours = POT_LIFE_H[material], plan.duration_s / 3600.0
        if age_h + hours >= life:
            alarms.append((max(0.0, life - age_h) * 3600.0, 604))
        elif age_h + hours >= POT_WARN * life:
            plan.warnings.append(692)
        if alarms:
            seconds, code = min(alarms)
            plan.alarm = (code, min(1.0, seconds / plan.duration_s))
