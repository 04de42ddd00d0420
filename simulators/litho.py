"""Simulated patterning cell (process-reference.md §2 LITHO).

Expose + develop: the dose to clear a resist grows with its thickness, E_c = E_c0·e^(αt); the
dose that prints the mask size is E_size = 1.6·E_c, and the printed size follows
CD = CD_mask ± k·ln(E/E_size) with k = 0.3 µm + 0.08·t (openings grow with dose, islands
shrink). Narrow openings in thick resist need more dose to clear, E_c·(1 + 0.25·(AR/AR_max)²);
an opening stays closed where the local dose (1σ 2 % across the wafer) is below the local
dose to clear (resist thickness 1σ 3 %), so unopened = Φ(ln(E_c,eff/E)/σ). The lamp loses
30 % of its output over its rated hours; the integrator holds the dose by exposing longer.
Overlay = √(ol_aligner² + (0.004·warpage)²) (in-plane distortion of a bowed wafer).

Etch: ER = ER₀/(1 + AR/AR₀) with AR = depth / opening growing as the hole deepens, so the
time to etch from depth s to s + D is [(s+D) − s + ((s+D)² − s²)/(2·w·AR₀)]/ER₀ (w the
opening). ER₀ per film and method (DRIE Si 12 µm/min, Cu seed 300 nm/min, Ti 50 nm/min, ...)
falls with the exposed area (loading) and as a plasma chamber gets dirty (−10 % at its clean
interval). A STOP_LAYER etch sees its endpoint when the slow 2σ tail of the wafer has cleared,
t_ep = t̄·(1 + 2σ) for an etch-rate spread σ (the uniformity), and adds over_etch; residue is
the share of the wafer still uncleared, Φ(−((1 + 2σ)(1 + OE) − 1)/σ). Undercut is
(1 − anisotropy)·ER₀·t; the resist mask erodes at ER₀/selectivity.

Laser via: depth per pulse δ = α⁻¹·ln(F/F_th); the tool fires ⌈depth·(1 + extra)/δ⌉ pulses.
The side wall tapers by tan θ = k_θ/ln(F/F_th), so near threshold deep vias close before the
pad. Average power F·A_spot·f must stay within the laser's reach, which falls 25 % over its
rated hours.

Strip: resist removal at a rate per resist and method; residue Φ((1 − ρ(1 + over))/σ).
O₂ plasma grows Cu oxide as 2.5 nm·√(minutes).

All rates, thresholds and spreads not in the reference are engineering estimates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.litho import (
    ASPEC,
    AUTO_DOSE,
    AUTO_FLUENCE,
    DRY,
    ENDPOINT_MIN_AREA_PCT,
    LITHO,
    OVERLAY_SPEC_UM,
    RESIST_AR_MAX,
    STANDARD_FLUENCE,
    WARP_LIMIT_UM,
)
from simulators.tool import Plan, SimTool

# -- expose + develop ---------------------------------------------------------------------------

# resist -> (E_c0 mJ/cm², α 1/µm): dose to clear E_c = E_c0·e^(αt); dose-to-size stays inside
# the published dose window over the resist's thickness range
CLEAR_DOSE = {"THIN_PR": (63.5, 0.065), "THICK_PR": (138.0, 0.037), "PSPI": (92.5, 0.039),
              "PHOTO_INK": (177.0, 0.024), "DRY_FILM": (31.6, 0.017)}  # fmt: skip
SIZE_TO_CLEAR = 1.6  # E_size / E_c
AR_PENALTY = 0.25  # extra clearing dose at the resist's aspect-ratio limit
CD_K0_UM, CD_K1 = 0.3, 0.08  # k = k0 + k1·t, µm of CD per unit ln(E/E_size)
DOSE_SIGMA = 0.01  # integrator, job to job
DOSE_UNIFORMITY = 0.02  # across the wafer, 1σ
THICKNESS_SPREAD = 0.03  # resist thickness across the wafer, 1σ
DARK_LOSS = {"THIN_PR": 0.03, "THICK_PR": 0.03, "PSPI": 0.10, "PHOTO_INK": 0.02,
             "DRY_FILM": 0.0}  # fmt: skip  # film lost in the developer
LAMP_INTENSITY = {"STEPPER": 1500.0, "ALIGNER": 40.0}  # mW/cm² at the wafer, new lamp
LAMP_DECAY = 0.3  # output lost at the lamp's rated hours
FIELD_MM = 44.0  # 1X stepper field (square)
FIELD_FILL = 1.15  # partial edge fields
EXPOSE_LOAD_S = 30.0
ALIGN_S = {"STEPPER": 20.0, "ALIGNER": 30.0}
STEP_S = 0.5  # stepper move, settle and level per field
DEVELOP_S, DEVELOP_S_PER_UM = 45.0, 6.0
RINSE_DRY_S = 30.0
OVERLAY_BASE_UM = {"STEPPER": 0.45, "ALIGNER": 2.5}  # |mean| + 3σ on a flat wafer
OVERLAY_WARP = 0.004  # µm of overlay per µm of warpage
OVERLAY_NOISE = 0.03
DEVELOPER_L, DEVELOPER_L_PER_UM = 0.04, 0.002
UNOPENED_WARN_PCT = 0.1

# -- etch ---------------------------------------------------------------------------------------

# (target, method) -> ER₀ µm/min, AR₀, anisotropy, resist selectivity, loading coefficient
ETCH = {
    ("SI", "DRIE"): (12.0, 10.0, 0.99, 80.0, 0.5),
    ("SI", "RIE"): (1.0, 3.0, 0.85, 3.0, 0.3),
    ("POLYMER", "DRIE"): (1.5, 5.0, 0.95, 1.0, 0.3),
    ("POLYMER", "RIE"): (1.0, 4.0, 0.85, 1.0, 0.3),
    ("DIELECTRIC", "RIE"): (0.8, 4.0, 0.85, 1.0, 0.3),
    ("OXIDE", "RIE"): (0.3, 5.0, 0.9, 3.0, 0.2),
    ("CU_SEED", "WET"): (0.3, 2.0, 0.0, math.inf, 0.0),
    ("TI_SEED", "WET"): (0.05, 2.0, 0.0, math.inf, 0.0),
    ("TI_SEED", "RIE"): (0.03, 4.0, 0.8, 2.0, 0.2),
}
UNIFORMITY_PCT = {"DRIE": 3.0, "RIE": 4.0, "WET": 5.0}
CHAMBER_AGE_UNIFORMITY = 2.0  # % added at the chamber's clean interval
CHAMBER_AGE_LOSS = 0.10  # rate lost at the chamber's clean interval (the tool knows it)
ETCH_RATE_SIGMA = 0.02
ENDPOINT_SIGMAS = 2.0  # the endpoint fires when the wafer has cleared to its 2σ slow tail
DRY_LOAD_S, DRY_UNLOAD_S = 90.0, 30.0  # load, pump, He, strike / vent
WET_LOAD_S, WET_RINSE_DRY_S = 30.0, 60.0
WET_DISPENSE_L = 0.05
# seed metal -> (etchant supply, g/cm³, g of metal a litre of etchant takes up)
SEED_METAL = {"CU_SEED": ("cu_etchant", 8.96, 30.0), "TI_SEED": ("ti_etchant", 4.51, 5.0)}
CHAMBER = {"DRIE": "drie_chamber", "RIE": "rie_chamber"}
RESIDUE_WARN_PCT = 0.1

# -- laser vias ---------------------------------------------------------------------------------

# material -> (α⁻¹ µm, F_th J/cm², taper constant k_θ)
ABLATION = {"POLYIMIDE": (0.25, 0.12, 0.2), "EPOXY": (0.4, 0.5, 0.2), "BCB": (0.3, 0.3, 0.2),
            "MOLD_COMPOUND": (0.5, 1.0, 0.25), "SI": (0.6, 2.5, 0.08)}  # fmt: skip
HAZ_GAIN = 0.03  # top diameter grows by this × ln(F/F_th)
LASER_POWER_MAX_W = 30.0
LASER_DECAY = 0.25  # power lost at the laser's rated hours
FLUENCE_SIGMA = 0.02  # pulse to pulse
FLUENCE_JOB_SIGMA = 0.005  # job mean
LAYER_SPREAD = 0.03  # layer thickness across the wafer, 1σ
VIA_MOVE_S = 0.0015
LASER_LOAD_S = 45.0

# -- strip --------------------------------------------------------------------------------------

STRIP_RATE = {("WET", "THIN_PR"): 2.0, ("WET", "THICK_PR"): 4.0, ("WET", "DRY_FILM"): 15.0,
              ("PLASMA", "THIN_PR"): 0.8, ("PLASMA", "THICK_PR"): 0.8,
              ("PLASMA", "DRY_FILM"): 0.6}  # fmt: skip  # µm/min
STRIP_SPREAD = {"WET": 0.08, "PLASMA": 0.05}  # local time-to-clear spread, 1σ
STRIP_RATE_SIGMA = 0.03
CU_OXIDE_NM_PER_SQRT_MIN = 2.5  # O₂ plasma
NATIVE_OXIDE_NM = 0.8
STRIPPER_L, STRIPPER_L_PER_UM = 0.1, 0.002
STRIP_LOAD_S = {"WET": 30.0, "PLASMA": 60.0}
STRIP_UNLOAD_S = {"WET": 60.0, "PLASMA": 30.0}


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def wafer_area_cm2(diameter_mm: float) -> float:
    return math.pi * (diameter_mm / 20.0) ** 2


# -- expose model -------------------------------------------------------------------------------


def dose_to_clear(resist: str, thickness_um: float) -> float:
    """E_c = E_c0·e^(αt), mJ/cm², for large openings."""
    e_c0, alpha = CLEAR_DOSE[resist]
    return e_c0 * math.exp(alpha * thickness_um)


def dose_to_size(resist: str, thickness_um: float) -> float:
    """The dose that prints CD = CD_mask (what dose 0 exposes at)."""
    return SIZE_TO_CLEAR * dose_to_clear(resist, thickness_um)


def clearing_dose(resist: str, thickness_um: float, mask_cd_um: float) -> float:
    """Dose to clear an opening of mask_cd: narrow, deep openings need more."""
    ar = thickness_um / mask_cd_um / RESIST_AR_MAX[resist]
    return dose_to_clear(resist, thickness_um) * (1.0 + AR_PENALTY * ar * ar)


def cd_slope_um(thickness_um: float) -> float:
    """k in CD = CD_mask ± k·ln(E/E_size)."""
    return CD_K0_UM + CD_K1 * thickness_um


def printed_cd_um(
    resist: str, thickness_um: float, mask_cd_um: float, dose: float, feature: str = "OPENING"
) -> float:
    """CD = CD_mask + k·ln(E/E_size) for openings, − for islands (never below 0)."""
    shift = cd_slope_um(thickness_um) * math.log(dose / dose_to_size(resist, thickness_um))
    return max(0.0, mask_cd_um + (shift if feature == "OPENING" else -shift))


def unopened_fraction(resist: str, thickness_um: float, mask_cd_um: float, dose: float) -> float:
    """Share of openings where the local dose stays below the local dose to clear."""
    _, alpha = CLEAR_DOSE[resist]
    sigma = math.hypot(alpha * thickness_um * THICKNESS_SPREAD, DOSE_UNIFORMITY)
    return _phi(math.log(clearing_dose(resist, thickness_um, mask_cd_um) / dose) / sigma)


def overlay_um(aligner: str, warpage_um: float) -> float:
    """Expected overlay (|mean| + 3σ): aligner capability and a bowed wafer's distortion."""
    return math.hypot(OVERLAY_BASE_UM[aligner], OVERLAY_WARP * warpage_um)


def shot_count(aligner: str, wafer_diameter_mm: float) -> int:
    if aligner == "ALIGNER":
        return 1  # full-field
    return math.ceil(FIELD_FILL * math.pi * (wafer_diameter_mm / 2.0) ** 2 / FIELD_MM**2)


def lamp_intensity(aligner: str, lamp_used: float) -> float:
    """mW/cm² at the wafer: the lamp loses 30 % over its rated hours."""
    return LAMP_INTENSITY[aligner] * (1.0 - LAMP_DECAY * min(max(lamp_used, 0.0), 1.0))


def exposure_seconds(
    aligner: str, dose: float, wafer_diameter_mm: float, lamp_used: float
) -> float:
    """Lamp-on time of the exposure unit: load, alignment, every shot (dose / intensity)."""
    shot = dose / lamp_intensity(aligner, lamp_used)
    step = STEP_S if aligner == "STEPPER" else 0.0
    return EXPOSE_LOAD_S + ALIGN_S[aligner] + shot_count(aligner, wafer_diameter_mm) * (step + shot)


def develop_seconds(thickness_um: float) -> float:
    return DEVELOP_S + DEVELOP_S_PER_UM * thickness_um + RINSE_DRY_S


def developer_litres(thickness_um: float, wafer_diameter_mm: float) -> float:
    return (DEVELOPER_L + DEVELOPER_L_PER_UM * thickness_um) * (wafer_diameter_mm / 300.0) ** 2


# -- etch model ---------------------------------------------------------------------------------


def etch_rate0(target: str, method: str, open_area_pct: float, chamber_used: float = 0.0) -> float:
    """ER₀ (AR 0) in µm/min after loading and chamber ageing."""
    er0, _, _, _, loading = ETCH[(target, method)]
    return er0 / (1.0 + loading * open_area_pct / 100.0) * (1.0 - CHAMBER_AGE_LOSS * chamber_used)


def _arde_integral(x: float, opening: float, ar0: float) -> float:
    return x + x * x / (2.0 * opening * ar0)


def etch_minutes(
    depth: float, rate0: float, opening: float, ar0: float, start_depth: float = 0.0
) -> float:
    """Time to etch from start_depth to start_depth + depth with ER = ER₀/(1 + x/(w·AR₀))."""
    if opening <= 0:
        return depth / rate0
    end = _arde_integral(start_depth + depth, opening, ar0)
    return (end - _arde_integral(start_depth, opening, ar0)) / rate0


def etched_depth(
    minutes: float, rate0: float, opening: float, ar0: float, start_depth: float = 0.0
) -> float:
    """Depth etched in `minutes` (the inverse of etch_minutes)."""
    if opening <= 0:
        return rate0 * minutes
    w = opening * ar0
    total = _arde_integral(start_depth, opening, ar0) + rate0 * minutes
    return w * (math.sqrt(1.0 + 2.0 * total / w) - 1.0) - start_depth


def endpoint_factor(uniformity_pct: float) -> float:
    """Endpoint time / mean time to clear: the clear signal flattens once the slow 2σ tail
    of the wafer has cleared."""
    return 1.0 + ENDPOINT_SIGMAS * uniformity_pct / 100.0


def residue_fraction(over_etch_pct: float, uniformity_pct: float) -> float:
    """Share of the wafer still uncleared when the etch stops at endpoint + over-etch."""
    sigma = uniformity_pct / 100.0
    stop = endpoint_factor(uniformity_pct) * (1.0 + over_etch_pct / 100.0)
    return _phi(-(stop - 1.0) / sigma)


def undercut_um(target: str, method: str, rate0: float, minutes: float) -> float:
    """Lateral etch under the mask edge: (1 − anisotropy)·ER₀·t."""
    return (1.0 - ETCH[(target, method)][2]) * rate0 * minutes


def mask_loss_um(target: str, method: str, rate0: float, minutes: float) -> float:
    return rate0 * minutes / ETCH[(target, method)][3]


def etchant_litres(target: str, depth_um: float, open_area_pct: float, diameter_mm: float) -> float:
    """Spray dispense plus the etchant that takes up the dissolved metal."""
    _, density, capacity = SEED_METAL[target]
    grams = wafer_area_cm2(diameter_mm) * open_area_pct / 100.0 * depth_um * 1e-4 * density
    return WET_DISPENSE_L + grams / capacity


# -- laser model --------------------------------------------------------------------------------


def fluence_for(material: str, fluence: float) -> float:
    return STANDARD_FLUENCE[material] if fluence == AUTO_FLUENCE else fluence


def depth_per_pulse_um(material: str, fluence: float) -> float:
    """α⁻¹·ln(F/F_th)."""
    alpha_inv, f_th, _ = ABLATION[material]
    return alpha_inv * math.log(fluence / f_th)


def pulses_per_via(depth_um: float, per_pulse_um: float, extra_pct: float) -> int:
    return math.ceil(depth_um * (1.0 + extra_pct / 100.0) / per_pulse_um - 1e-9)


def via_taper_deg(material: str, fluence: float) -> float:
    """Side wall from vertical: tan θ = k_θ / ln(F/F_th)."""
    _, f_th, k_taper = ABLATION[material]
    return math.degrees(math.atan(k_taper / math.log(fluence / f_th)))


def via_diameters_um(
    material: str, diameter_um: float, depth_um: float, fluence: float
) -> tuple[float, float]:
    """(top, bottom): the top grows with fluence (heat-affected rim); the wall tapers."""
    _, f_th, _ = ABLATION[material]
    top = diameter_um * (1.0 + HAZ_GAIN * math.log(fluence / f_th))
    bottom = top - 2.0 * depth_um * math.tan(math.radians(via_taper_deg(material, fluence)))
    return top, max(0.0, bottom)


def laser_power_w(fluence: float, diameter_um: float, rep_rate_khz: float) -> float:
    """Average power F·A_spot·f."""
    area_cm2 = math.pi * (diameter_um * 1e-4 / 2.0) ** 2
    return fluence * area_cm2 * rep_rate_khz * 1e3


def laser_power_available_w(laser_used: float) -> float:
    return LASER_POWER_MAX_W * (1.0 - LASER_DECAY * min(max(laser_used, 0.0), 1.0))


def via_unopened_fraction(
    material: str, depth_um: float, pulses: int, fluence: float, bottom_um: float
) -> float:
    """Closed cones never open; otherwise the vias where the layer is thicker than drilled."""
    if bottom_um <= 0:
        return 1.0
    _, f_th, _ = ABLATION[material]
    drilled = pulses * depth_per_pulse_um(material, fluence)
    sigma = math.hypot(LAYER_SPREAD, FLUENCE_SIGMA / math.log(fluence / f_th))
    return _phi((1.0 - drilled / depth_um) / sigma)


def drill_seconds(via_count: int, pulses: int, rep_rate_khz: float) -> float:
    return via_count * (pulses / (rep_rate_khz * 1e3) + VIA_MOVE_S)


# -- strip model --------------------------------------------------------------------------------


def strip_minutes(method: str, resist: str, thickness_um: float, over_strip_pct: float) -> float:
    return thickness_um / STRIP_RATE[(method, resist)] * (1.0 + over_strip_pct / 100.0)


def strip_residue_fraction(method: str, over_strip_pct: float, rate_ratio: float = 1.0) -> float:
    """Share of the wafer whose local clear time exceeds the strip time (rate_ratio: actual /
    nominal strip rate)."""
    return _phi((1.0 - rate_ratio * (1.0 + over_strip_pct / 100.0)) / STRIP_SPREAD[method])


def cu_oxide_nm(method: str, minutes: float) -> float:
    if method == "PLASMA":
        return NATIVE_OXIDE_NM + CU_OXIDE_NM_PER_SQRT_MIN * math.sqrt(minutes)
    return NATIVE_OXIDE_NM


def stripper_litres(thickness_um: float, wafer_diameter_mm: float) -> float:
    return (STRIPPER_L + STRIPPER_L_PER_UM * thickness_um) * (wafer_diameter_mm / 300.0) ** 2


# -- the tool -----------------------------------------------------------------------------------


class LithoSim(SimTool):
    interface = LITHO

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        if op.name == "expose":
            return self._expose(values, rng)
        if op.name == "etch":
            return self._etch(values, rng)
        if op.name == "laser_via":
            return self._laser_via(values, rng)
        return self._strip(values, rng)

    def refuse_reason(self, op: Operation, values: Mapping[str, Value]) -> str | None:
        if op.name != "etch" or values["endpoint"] != "TIMED":
            return None
        minutes = etch_minutes(
            float(values["depth"]), self._nominal_rate0(values), float(values["opening"]),
            ETCH[(str(values["target"]), str(values["method"]))][1],
            float(values["start_depth"]),
        )  # fmt: skip
        limit = float(values["max_time"])
        if minutes > limit:
            return f"TIMED etch needs {minutes:.4g} min > max_time {limit:g} min"
        return None

    # -- expose ---------------------------------------------------------------------------------

    def _expose(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        resist, feature, aligner = str(v["resist"]), str(v["feature"]), str(v["aligner"])
        t, mask_cd = float(v["resist_thickness"]), float(v["mask_cd"])
        warp, diameter = float(v["warpage"]), float(v["wafer_diameter"])
        size = dose_to_size(resist, t)
        dose_set = size if float(v["dose"]) == AUTO_DOSE else float(v["dose"])
        lamp_used = self._used("lamp_hours")
        dose = dose_set * rng.gauss(1.0, DOSE_SIGMA)
        expose_s = exposure_seconds(aligner, dose_set, diameter, lamp_used)
        total = expose_s + develop_seconds(t)
        unopened = 100.0 * unopened_fraction(resist, t, mask_cd, dose)
        cd = printed_cd_um(resist, t, mask_cd, dose, feature) * rng.gauss(1.0, 0.003)
        overlay = overlay_um(aligner, warp) * rng.lognormvariate(0.0, OVERLAY_NOISE)
        developer = developer_litres(t, diameter)
        results = {
            "cd": cd,
            "cd_bias": cd - mask_cd,
            "overlay": overlay,
            "unopened": unopened,
            "resist_remaining": t * (1.0 - DARK_LOSS[resist]) * rng.gauss(1.0, 0.005),
            "dose_measured": dose,
            "dose_to_clear": clearing_dose(resist, t, mask_cd),
            "dose_to_size": size,
            "exposure_time": dose_set / lamp_intensity(aligner, lamp_used),
            "shots": float(shot_count(aligner, diameter)),
            "lamp_output": 100.0 * lamp_intensity(aligner, lamp_used) / LAMP_INTENSITY[aligner],
            "developer_used": developer,
            "duration": total / 60.0,
        }
        wear = {"lamp_hours": expose_s / 3600.0, "developer": developer}
        plan = Plan(total, results, wear)
        limit = float(v["overlay_limit"])
        limit = OVERLAY_SPEC_UM[aligner] if limit == ASPEC else limit
        if warp > WARP_LIMIT_UM[aligner]:
            plan.alarm = (904, 0.9 * EXPOSE_LOAD_S / total)  # wafer cannot be levelled
        elif overlay > limit:
            plan.alarm = (903, (EXPOSE_LOAD_S + ALIGN_S[aligner]) / total)
        if unopened > UNOPENED_WARN_PCT:
            plan.warnings.append(995)
        return plan

    # -- etch -----------------------------------------------------------------------------------

    def _nominal_rate0(self, v: Mapping[str, Value]) -> float:
        target, method = str(v["target"]), str(v["method"])
        return etch_rate0(target, method, float(v["open_area"]), self._chamber_used(method))

    def _chamber_used(self, method: str) -> float:
        return self._used(CHAMBER[method]) if method in DRY else 0.0

    def _etch(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        target, method = str(v["target"]), str(v["method"])
        depth, opening, start = float(v["depth"]), float(v["opening"]), float(v["start_depth"])
        open_area, over = float(v["open_area"]), float(v["over_etch"])
        timed = v["endpoint"] == "TIMED"
        _, ar0, _, _, _ = ETCH[(target, method)]
        dry = method in DRY
        used = self._chamber_used(method)
        nominal = self._nominal_rate0(v)
        rate0 = nominal * rng.gauss(1.0, ETCH_RATE_SIGMA)
        uniformity = max(
            0.5, rng.gauss(UNIFORMITY_PCT[method] + CHAMBER_AGE_UNIFORMITY * used, 0.2)
        )
        if timed:
            endpoint_min = 0.0
            etch_min = etch_minutes(depth, nominal, opening, ar0, start)
            reached = etched_depth(etch_min, rate0, opening, ar0, start)
            residue = 0.0
            rate = reached / etch_min
        else:
            clear_min = etch_minutes(depth, rate0, opening, ar0, start)  # wafer mean
            endpoint_min = clear_min * endpoint_factor(uniformity)
            etch_min = endpoint_min * (1.0 + over / 100.0)
            reached = depth * rng.gauss(1.0, 0.005)
            residue = 100.0 * residue_fraction(over, uniformity)
            rate = depth / clear_min
        mask = float(v["mask_thickness"])
        loss = mask_loss_um(target, method, rate0, etch_min)
        chemistry = (
            etchant_litres(target, depth, open_area, float(v["wafer_diameter"])) if not dry else 0.0
        )
        results = {
            "depth": reached,
            "rate": rate,
            "aspect_ratio": (start + depth) / opening if opening > 0 else 0.0,
            "uniformity": uniformity,
            "undercut": undercut_um(target, method, rate0, etch_min),
            "residue": residue,
            "mask_remaining": max(0.0, mask - loss),
            "endpoint_time": endpoint_min,
            "etch_time": etch_min,
            "chemistry_used": chemistry,
        }
        pre, post = (DRY_LOAD_S, DRY_UNLOAD_S) if dry else (WET_LOAD_S, WET_RINSE_DRY_S)
        no_endpoint = not timed and (
            open_area < ENDPOINT_MIN_AREA_PCT or endpoint_min > float(v["max_time"])
        )
        if no_endpoint:
            etch_min = float(v["max_time"])  # the tool gives up at its timeout
        total = pre + etch_min * 60.0 + post
        results["duration"] = total / 60.0
        wear = {CHAMBER[method]: etch_min / 60.0} if dry else {SEED_METAL[target][0]: chemistry}
        plan = Plan(total, results, wear)
        if dry and float(v["warpage"]) > WARP_LIMIT_UM["E_CHUCK"]:
            plan.alarm = (906, 0.8 * pre / total)  # He backside leak while chucking
        elif no_endpoint:
            plan.alarm = (907, (pre + etch_min * 60.0) / total)
        if mask > 0 and loss >= mask:
            plan.warnings.append(994)
        if residue > RESIDUE_WARN_PCT:
            plan.warnings.append(996)
        return plan

    # -- laser via ------------------------------------------------------------------------------

    def _laser_via(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material = str(v["material"])
        diameter, depth = float(v["diameter"]), float(v["depth"])
        vias, rep = int(float(v["via_count"])), float(v["rep_rate"])
        fluence_set = fluence_for(material, float(v["fluence"]))
        per_pulse = depth_per_pulse_um(material, fluence_set)
        pulses = pulses_per_via(depth, per_pulse, float(v["extra_pulses"]))
        fluence = fluence_set * rng.gauss(1.0, FLUENCE_JOB_SIGMA)
        top, bottom = via_diameters_um(material, diameter, depth, fluence)
        taper = via_taper_deg(material, fluence)
        unopened = 100.0 * via_unopened_fraction(material, depth, pulses, fluence, bottom)
        drilled = pulses * depth_per_pulse_um(material, fluence)
        if bottom <= 0:  # the cone closes at depth top / (2·tan θ)
            drilled = min(drilled, top / (2.0 * math.tan(math.radians(taper))))
        drill_s = drill_seconds(vias, pulses, rep)
        power = laser_power_w(fluence_set, diameter, rep)
        total = LASER_LOAD_S + drill_s
        results = {
            "depth": min(depth, drilled),
            "depth_per_pulse": depth_per_pulse_um(material, fluence),
            "pulses": float(pulses),
            "top_diameter": top,
            "bottom_diameter": bottom,
            "taper": taper,
            "unopened": unopened,
            "fluence_measured": fluence,
            "laser_power": power,
            "drill_time": drill_s / 60.0,
            "duration": total / 60.0,
        }
        plan = Plan(total, results, {"laser_hours": drill_s / 3600.0})
        if float(v["warpage"]) > WARP_LIMIT_UM["LASER"]:
            plan.alarm = (904, 0.5 * LASER_LOAD_S / total)
        elif power > laser_power_available_w(self._used("laser_hours")):
            plan.alarm = (908, LASER_LOAD_S / total)  # at the first via
        if unopened > UNOPENED_WARN_PCT:
            plan.warnings.append(995)
        return plan

    # -- strip ----------------------------------------------------------------------------------

    def _strip(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        method, resist = str(v["method"]), str(v["resist"])
        t, over, diameter = (
            float(v[k]) for k in ("resist_thickness", "over_strip", "wafer_diameter")
        )
        minutes = strip_minutes(method, resist, t, over)
        ratio = rng.gauss(1.0, STRIP_RATE_SIGMA)
        residue = 100.0 * strip_residue_fraction(method, over, ratio)
        stripper = stripper_litres(t, diameter) if method == "WET" else 0.0
        total = STRIP_LOAD_S[method] + minutes * 60.0 + STRIP_UNLOAD_S[method]
        results = {
            "strip_rate": STRIP_RATE[(method, resist)] * ratio,
            "strip_time": minutes,
            "residue": residue,
            "cu_oxide": cu_oxide_nm(method, minutes) * rng.gauss(1.0, 0.05),
            "stripper_used": stripper,
            "duration": total / 60.0,
        }
        plan = Plan(total, results, {"stripper": stripper} if stripper else {})
        if residue > RESIDUE_WARN_PCT:
            plan.warnings.append(996)
        return plan

    def _used(self, key: str) -> float:
        spec = next(c for c in self.interface.consumables if c.name == key)
        return min(1.0, self.used_fraction(spec))
