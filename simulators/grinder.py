"""Simulated grinder and CMP polisher (process-reference.md §2 GRIND).

In-feed grinding: removal Δz = Σ v_f·t per wheel; the tool stops on its gauge at the target,
less the spark-out excess of a dull wheel (δ = v_f·τ·2·wear, compensated for a new wheel),
which alarms THICKNESS_OVERSHOOT beyond the job's tolerance. TTV ≈ TTV_in(1 − r) + D·θ_tilt,
plus the thickness variation of the backing (the grinder references the chuck), with the
chuck-to-wheel tilt growing as the wheel wears. Ra = K·g·(v_f/v_s)^½ with the grain size
g ≈ 13 400/mesh µm and v_s the wheel's peripheral speed; subsurface damage ≈ 100·Ra in Si.
A wafer cracks when the coarse pass leaves less than its damage depth (×2 for a wafer on
tape alone) under it. Before grinding, the chuck must pull the work flat: a clamped plate
needs p = 64·D·w/R⁴ (D = E·t³/12(1 − ν²)), and the chuck's edge seal holds 5 kPa, so only stiff,
warped stacks lose vacuum. Spindle power = specific energy × removal rate (metal loads the
wheel; finer grits and dull wheels need more energy), over a 400 V drive. Wheel wear is
proportional to the volume removed, per material. A ball-shaped bump cut at distance s from
its centre shows d = 2√(r² − s²); feature tops spread by the feature range and the grind plane
by the TTV decide the fraction exposed.

CMP: Preston RR = K_p·P·v, slowed by pad age and a starved slurry flow. After the overburden
clears, the field polishes at its selectivity ratio and the inlaid features at theirs:
dishing = k·(RR_feature − RR_field)·t·w/(w + w₀) (negative: the features protrude), erosion =
RR_field·t.

Constants are engineering estimates ("calibrate them before use").
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.interface import Operation, Value
from drivers.interfaces.grinder import (
    CMP_MAX_POLISH_S,
    GRINDER,
    grit,
    wheels_used,
)
from simulators.tool import Plan, SimTool

# --- grinding ----------------------------------------------------------------------------------

WHEEL_DIAMETER_MM = 300.0
GRAIN_K_UM = 13_400.0  # grain size ≈ 13 400 / mesh µm (JIS: #320 ≈ 42 µm, #2000 ≈ 6.7 µm)
RA_K = 19.0  # Ra = K·g·√(v_f/v_s): #2000 at 0.3 µm/s, 4800 rpm ≈ 8 nm; #320 at 6 µm/s ≈ 0.22 µm
SSD_PER_RA = 100.0  # subsurface damage depth / Ra in Si
CRACK_RATIO = {"SI": 2.0, "BONDED_STACK": 1.0}  # stock under the coarse pass / its damage
RA_FACTOR = {"SI": 1.0, "EMC": 1.5, "POLYIMIDE": 0.8, "EPOXY": 1.0, "DIELECTRIC": 1.0,
             "PHOTO_INK": 1.1}  # fmt: skip  # filler pull-out roughens EMC
TTV_CORRECTION = {"SI": 0.85, "BONDED_STACK": 0.9, "PLANARIZE": 0.9}  # r in TTV_in(1 − r)
TILT_URAD = 2.0  # chuck-to-wheel tilt θ of a new wheel; doubles at the wear limit
SPARKOUT_TAU_S = 0.15  # in-feed × τ = spring-back of the wheel head
DULL_GAIN = 2.0  # a worn-out wheel pushes (1 + 2) × harder than a new one
GAUGE_SIGMA_UM = 0.3

POISSON = 0.28
MODULUS_GPA = {"SI": 130.0, "SI_WAFER": 130.0, "ORGANIC": 25.0, "EMC": 20.0, "POLYIMIDE": 3.0,
               "EPOXY": 3.0, "DIELECTRIC": 3.0, "PHOTO_INK": 3.0}  # fmt: skip
CHUCK_SEAL_KPA = 5.0

# specific grinding energy with a #320 wheel, J/mm³; finer grits need √(g₃₂₀/g) times more
SPECIFIC_ENERGY = {"SI": 4.0, "EMC": 3.0, "POLYIMIDE": 2.0, "EPOXY": 2.0, "DIELECTRIC": 2.0,
                   "PHOTO_INK": 2.0, "CU": 40.0, "PASTE": 6.0, "SOLDER_BUMP": 8.0,
                   "DIE": 4.0}  # fmt: skip  # Cu loads the diamond wheel
DULL_POWER = 1.0  # a worn-out wheel needs (1 + 1) × the energy
SPINDLE_IDLE_A = 2.0
SPINDLE_VOLTS = 400.0
SPINDLE_LIMIT_A = 20.0

# wheel rim worn per µm removed from a 300 mm wafer of Si; × material factor × area
WHEEL_WEAR_PER_UM = {"coarse": 0.003, "fine": 0.01}
WEAR_FACTOR = {"SI": 1.0, "EMC": 3.0, "POLYIMIDE": 0.3, "EPOXY": 0.5, "DIELECTRIC": 0.5,
               "PHOTO_INK": 0.4, "CU": 1.0, "PASTE": 1.5, "SOLDER_BUMP": 0.3,
               "DIE": 1.0}  # fmt: skip  # silica filler wears wheels
LOAD_S = 45.0  # load, chuck, unload and spin-clean (half before, half after grinding)
APPROACH_S = 5.0  # air cut per wheel
SPARKOUT_REV = 10.0  # chuck revolutions of spark-out per wheel
EXPOSED_WARN_PCT = 99.9
METALS = ("CU", "PASTE", "SOLDER_BUMP")

# --- CMP ---------------------------------------------------------------------------------------

PRESTON_K = {"CU": 4e-13, "OXIDE": 1.5e-13, "POLYMER": 3e-13}  # 1/Pa: 480/180/360 nm/min
# after the overburden clears: (field, inlaid features) rate as a share of the film's rate
AFTER_CLEAR = {"CU": (0.02, 1.0), "OXIDE": (1.0, 0.05), "POLYMER": (1.0, 0.4)}
DISH_K = 0.3
DISH_W0_UM = 20.0  # pad bridging: features much narrower than this barely dish
PAD_AGE_LOSS = 0.15  # share of the rate lost at the end of the pad's life
SLURRY_REF_ML_MIN, SLURRY_STARVE_ML_MIN = 200.0, 60.0
CMP_RA_NM = {"CU": 1.0, "OXIDE": 0.4, "POLYMER": 2.0}
CMP_LOAD_S = 90.0  # load, pad conditioning, post-CMP clean (half before, half after)
CONDITION_S = 30.0  # pad conditioning per job, counted in pad hours


# --- the grinding model, as pure functions --------------------------------------------------


def grain_um(mesh: int) -> float:
    """Mean abrasive grain size of a wheel of the given mesh."""
    return GRAIN_K_UM / mesh


def wheel_speed_m_s(spindle_rpm: float) -> float:
    """Peripheral speed v_s of the wheel rim."""
    return math.pi * WHEEL_DIAMETER_MM / 1000.0 * spindle_rpm / 60.0


def roughness_nm(mesh: int, infeed_um_s: float, spindle_rpm: float, material: str = "SI") -> float:
    """Ra = K·g·(v_f/v_s)^½ × the material's factor."""
    ratio = infeed_um_s * 1e-6 / wheel_speed_m_s(spindle_rpm)
    return RA_K * grain_um(mesh) * math.sqrt(ratio) * 1000.0 * RA_FACTOR[material]


def damage_depth_um(mesh: int, infeed_um_s: float, spindle_rpm: float) -> float:
    """Subsurface damage a wheel leaves in Si: ≈ 100 × Ra."""
    return SSD_PER_RA * roughness_nm(mesh, infeed_um_s, spindle_rpm) / 1000.0


def ttv_um(
    incoming_ttv: float,
    correction: float,
    size_mm: float,
    wear_fraction: float = 0.0,
    backing_ttv: float = 0.0,
    tilt_noise: float = 1.0,
) -> float:
    """TTV_in(1 − r) + D·θ_tilt (+ backing TTV), θ = 2 µrad × (1 + wear) × noise."""
    tilt = TILT_URAD * 1e-6 * (1.0 + wear_fraction) * tilt_noise
    return incoming_ttv * (1.0 - correction) + size_mm * 1000.0 * tilt + backing_ttv


def flattening_pressure_kpa(
    thickness_um: float, warpage_um: float, size_mm: float, modulus_gpa: float
) -> float:
    """Pressure that pulls a warped plate flat: p = 64·D·w/R⁴, D = E·t³/12(1 − ν²)."""
    t, w, r = thickness_um * 1e-6, warpage_um * 1e-6, size_mm / 2000.0
    rigidity = modulus_gpa * 1e9 * t**3 / (12.0 * (1.0 - POISSON**2))
    return 64.0 * rigidity * w / r**4 / 1000.0


def sparkout_excess_um(infeed_um_s: float, wear_fraction: float) -> float:
    """How far past the gauge stop a dull wheel's spring-back grinds."""
    return infeed_um_s * SPARKOUT_TAU_S * DULL_GAIN * wear_fraction


def specific_energy_j_mm3(material: str, mesh: int, wear_fraction: float) -> float:
    return (
        SPECIFIC_ENERGY[material]
        * math.sqrt(grain_um(320) / grain_um(mesh))
        * (1.0 + DULL_POWER * wear_fraction)
    )


def area_mm2(size_mm: float) -> float:
    return math.pi * (size_mm / 2.0) ** 2


def spindle_current_a(
    infeed_um_s: float,
    size_mm: float,
    mix: Mapping[str, float],
    mesh: int,
    wear_fraction: float,
) -> float:
    """Idle current + Σ u·MRR / V over the materials being cut (`mix`: material -> area
    share). The whole face is in cut, so MRR = v_f·A."""
    mrr = infeed_um_s * 1e-3 * area_mm2(size_mm)  # mm³/s
    watts = sum(
        share * mrr * specific_energy_j_mm3(m, mesh, wear_fraction) for m, share in mix.items()
    )
    return SPINDLE_IDLE_A + watts / SPINDLE_VOLTS


def wheel_wear_um(wheel: str, depth_um: float, size_mm: float, mix: Mapping[str, float]) -> float:
    """Rim worn grinding `depth_um` off the whole face, through a material `mix`."""
    factor = sum(share * WEAR_FACTOR[m] for m, share in mix.items())
    return WHEEL_WEAR_PER_UM[wheel] * depth_um * factor * area_mm2(size_mm) / area_mm2(300.0)


def exposed_diameter_um(bump_diameter: float, cut_um: float) -> float:
    """Flat-end diameter d = 2√(r² − s²) of a ball cut `cut_um` below its top (s = |r − cut|)."""
    if cut_um <= 0:
        return 0.0
    r = bump_diameter / 2.0
    s = abs(r - cut_um)
    return 2.0 * math.sqrt(max(0.0, r * r - s * s))


def exposed_fraction_pct(overgrind_um: float, feature_range_um: float, ttv: float) -> float:
    """Share of features whose top lies above the grind plane: feature tops spread by the
    range (σ = range/6), the plane by the TTV (σ = TTV/6)."""
    sigma = math.hypot(feature_range_um, ttv) / 6.0
    if sigma == 0:
        return 100.0 if overgrind_um > 0 else 50.0
    return 100.0 * _phi(overgrind_um / sigma)


def grind_seconds(phases: list[tuple[float, float]], chuck_rpm: float) -> float:
    """Load + per wheel (approach + depth/in-feed + spark-out) for [(depth µm, in-feed µm/s)]."""
    return LOAD_S + sum(
        APPROACH_S + depth / feed + SPARKOUT_REV * 60.0 / chuck_rpm for depth, feed in phases
    )


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _stop_first(plan: Plan, alarms: list[tuple[int, float]]) -> None:
    """Stop the job at the alarm whose event comes first (ties: the one listed first). One
    raised before grinding starts (chucking, rim check) wears nothing."""
    if alarms:
        plan.alarm = min(alarms, key=lambda a: a[1])
        if plan.alarm[1] == 0.0:
            plan.wear = {}


# --- the CMP model ------------------------------------------------------------------------------


def preston_rate_nm_min(material: str, pressure_kpa: float, velocity_m_s: float) -> float:
    """RR = K_p·P·v for a fresh pad at the reference slurry flow."""
    return PRESTON_K[material] * pressure_kpa * 1e3 * velocity_m_s * 1e9 * 60.0


def slurry_factor(flow_ml_min: float) -> float:
    """A starved pad polishes slower: (1 − e^(−q/60)) relative to 200 mL/min."""
    ref = 1.0 - math.exp(-SLURRY_REF_ML_MIN / SLURRY_STARVE_ML_MIN)
    return (1.0 - math.exp(-flow_ml_min / SLURRY_STARVE_ML_MIN)) / ref


def cmp_rate_nm_min(
    material: str, pressure_kpa: float, velocity_m_s: float, flow_ml_min: float, pad_used: float
) -> float:
    return (
        preston_rate_nm_min(material, pressure_kpa, velocity_m_s)
        * slurry_factor(flow_ml_min)
        * (1.0 - PAD_AGE_LOSS * min(max(pad_used, 0.0), 1.0))
    )


def dishing_nm(
    material: str, rate_nm_min: float, seconds_after_clear: float, width_um: float
) -> float:
    """k·(RR_feature − RR_field)·t·w/(w + w₀); negative when the features protrude."""
    if width_um <= 0:
        return 0.0
    field_ratio, feature_ratio = AFTER_CLEAR[material]
    removed = (feature_ratio - field_ratio) * rate_nm_min * seconds_after_clear / 60.0
    return DISH_K * removed * width_um / (width_um + DISH_W0_UM)


def erosion_nm(material: str, rate_nm_min: float, seconds_after_clear: float) -> float:
    return AFTER_CLEAR[material][0] * rate_nm_min * seconds_after_clear / 60.0


# --- the tool ----------------------------------------------------------------------------------


@dataclass
class _Phase:
    wheel: str  # "coarse" / "fine"
    depth: float  # µm removed by this wheel
    feed: float  # µm/s
    mix: dict[str, float] = field(default_factory=dict)  # material -> area share (peak)
    wear_mix: dict[str, float] = field(default_factory=dict)  # mean over the depth


class GrinderSim(SimTool):
    interface = GRINDER

    def refuse_reason(self, op: Operation, values: Mapping[str, Value]) -> str | None:
        if "wheel" in values:
            for w in wheels_used(str(values["wheel"])):
                if not self.setup.get(f"{w}_wheel"):
                    return f"no {w} wheel mounted (setup {w}_wheel is empty)"
        return None

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        if op.name == "back_grind":
            return self._back_grind(values, rng)
        if op.name == "planarize":
            return self._planarize(values, rng)
        return self._cmp(values, rng)

    # -- helpers --------------------------------------------------------------------------------

    def mesh(self, wheel: str) -> int:
        return grit(self.setup[f"{wheel}_wheel"][0])

    def wear_fraction(self, wheel: str) -> float:
        spec = next(c for c in self.interface.consumables if c.name == f"{wheel}_wheel_wear")
        return min(1.0, self.levels[spec.name] / spec.limit)

    def _split(self, wheel: str, removal: float, fine_removal: float) -> list[tuple[str, float]]:
        """[(wheel, depth)]: BOTH leaves fine_removal for the fine wheel."""
        if wheel == "COARSE":
            return [("coarse", removal)]
        if wheel == "FINE" or removal <= fine_removal:
            return [("fine", removal)]
        return [("coarse", removal - fine_removal), ("fine", fine_removal)]

    def _grind(
        self,
        v: Mapping[str, Value],
        phases: list[_Phase],
        final_plane_excess: float,
        rng: random.Random,
    ) -> tuple[Plan, list[tuple[int, float]], list[float]]:
        """Shared grinding mechanics: wear, spindle current, time line. Returns the plan, the
        alarms every grinding job can raise (code, fraction) and the phase ends (fractions)."""
        size, chuck = float(v["work_size"]), float(v["chuck"])
        wear: dict[str, float] = {}
        currents: list[float] = []
        ends: list[float] = []
        t = LOAD_S / 2.0
        starts: list[float] = []
        for ph in phases:
            w = wheel_wear_um(ph.wheel, ph.depth, size, ph.wear_mix)
            wear[f"{ph.wheel}_wheel_wear"] = wear.get(f"{ph.wheel}_wheel_wear", 0.0) + w
            currents.append(
                spindle_current_a(
                    ph.feed, size, ph.mix, self.mesh(ph.wheel), self.wear_fraction(ph.wheel)
                )
            )
            starts.append(t + APPROACH_S)
            t += APPROACH_S + ph.depth / ph.feed + SPARKOUT_REV * 60.0 / chuck
            ends.append(t)
        total = t + LOAD_S / 2.0
        results = {
            "coarse_wheel_wear": wear.get("coarse_wheel_wear", 0.0),
            "fine_wheel_wear": wear.get("fine_wheel_wear", 0.0),
            "spindle_current": max(currents) * rng.gauss(1.0, 0.02),
            "duration": total / 60.0,
        }
        plan = Plan(total, results, wear)
        # candidate alarms as (code, fraction of the job); the earliest event stops the job
        alarms: list[tuple[int, float]] = []
        for name, amount in wear.items():
            level, limit = self.levels[name], self._limit(name)
            if level < limit < level + amount:  # the tool checks the rim left before it starts
                alarms.append((self.interface.consumable_alarms[name][0], 0.0))
        for i, amps in enumerate(currents):
            if amps > SPINDLE_LIMIT_A:
                alarms.append((801, starts[i] / total))
        if final_plane_excess > float(v["tolerance"]):
            alarms.append((807, ends[-1] / total))
        return plan, alarms, [e / total for e in ends]

    def _limit(self, name: str) -> float:
        return next(c.limit for c in self.interface.consumables if c.name == name)

    # -- operations -----------------------------------------------------------------------------

    def _back_grind(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        work = str(v["work"])
        target, incoming = float(v["target_thickness"]), float(v["incoming_thickness"])
        below, size = float(v["stack_below"]), float(v["work_size"])
        spindle = float(v["spindle"])
        removal = incoming - target
        split = self._split(str(v["wheel"]), removal, float(v["fine_removal"]))
        phases = [
            _Phase(w, depth, float(v[f"{w}_infeed"]), {"SI": 1.0}, {"SI": 1.0})
            for w, depth in split
        ]
        last = phases[-1]
        mesh_last = self.mesh(last.wheel)
        excess = sparkout_excess_um(last.feed, self.wear_fraction(last.wheel))
        plan, alarms, ends = self._grind(v, phases, excess, rng)

        thickness = target - excess + rng.gauss(0.0, GAUGE_SIGMA_UM)
        ra = roughness_nm(mesh_last, last.feed, spindle) * rng.lognormvariate(0.0, 0.08)
        plan.results = {
            "thickness": thickness,
            "stack_thickness": thickness + below,
            "removed": incoming - thickness,
            "damage_depth": SSD_PER_RA * ra / 1000.0,
            "ttv": ttv_um(
                float(v["incoming_ttv"]),
                TTV_CORRECTION[work],
                size,
                self.wear_fraction(last.wheel),
                float(v["backing_ttv"]),
                rng.lognormvariate(0.0, 0.15),
            ),
            "ra": ra,
            "finish_grit": float(mesh_last),
            **plan.results,
        }
        p = flattening_pressure_kpa(incoming + below, float(v["warpage"]), size, MODULUS_GPA["SI"])
        if p > CHUCK_SEAL_KPA:
            alarms.append((805, 0.0))
        if phases[0].wheel == "coarse":
            ssd = damage_depth_um(self.mesh("coarse"), phases[0].feed, spindle)
            left = incoming - phases[0].depth  # under the wheel when the coarse pass ends
            if left < CRACK_RATIO[work] * ssd:
                alarms.append((806, ends[0]))
            elif len(phases) == 2 and phases[1].depth < ssd:
                plan.warnings.append(880)
        _stop_first(plan, alarms)
        return plan

    def _planarize(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        layer, feature = str(v["material"]), str(v["feature"])
        top, height = float(v["incoming_thickness"]), float(v["feature_height"])
        over, spread = float(v["overgrind"]), float(v["feature_range"])
        bump, density = float(v["bump_diameter"]), float(v["feature_density"]) / 100.0
        size, spindle = float(v["work_size"]), float(v["spindle"])
        plane = height - over
        removal = top - plane
        split = self._split(str(v["wheel"]), removal, float(v["fine_removal"]))

        # feature area share in the grind plane (a bump's cut face, not its footprint)
        if feature == "SOLDER_BUMP":
            share = density * (exposed_diameter_um(bump, over) / bump) ** 2
        else:
            share = density
        phases = []
        level = top
        for w, depth in split:
            bottom = level - depth
            # depth of this pass that cuts through features (mean tops), and whether the
            # highest feature tops reach into it
            through = max(0.0, min(level, height) - bottom)
            touches = bottom < height + spread / 2.0
            mix = {layer: 1.0 - share, feature: share} if touches else {layer: 1.0}
            frac = through / depth if depth > 0 else 0.0
            wear_mix = {layer: 1.0 - share * frac, feature: share * frac}
            phases.append(_Phase(w, depth, float(v[f"{w}_infeed"]), mix, wear_mix))
            level = bottom
        last = phases[-1]
        mesh_last = self.mesh(last.wheel)
        excess = sparkout_excess_um(last.feed, self.wear_fraction(last.wheel))
        plan, alarms, _ = self._grind(v, phases, excess, rng)

        ttv_nominal = ttv_um(
            float(v["incoming_ttv"]), TTV_CORRECTION["PLANARIZE"], size,
            self.wear_fraction(last.wheel),
        )  # fmt: skip
        cut = over + excess  # how far below the mean feature top the plane really ends
        exposed = exposed_fraction_pct(cut, spread, ttv_nominal)
        if feature == "SOLDER_BUMP":
            d_mean = exposed_diameter_um(bump, cut)
            d_min = exposed_diameter_um(bump, cut - spread / 2.0 - ttv_nominal / 2.0)
        else:
            d_mean = d_min = 0.0
        thickness = plane - excess + rng.gauss(0.0, GAUGE_SIGMA_UM)
        ra = roughness_nm(mesh_last, last.feed, spindle, layer) * rng.lognormvariate(0.0, 0.08)
        plan.results = {
            "thickness": thickness,
            "removed": top - thickness,
            "feature_removed": height - thickness,
            "exposed_fraction": exposed,
            "exposed_diameter": d_mean * rng.gauss(1.0, 0.005) if d_mean else 0.0,
            "exposed_diameter_min": d_min,
            "ttv": ttv_nominal * rng.lognormvariate(0.0, 0.1),
            "ra": ra,
            "finish_grit": float(mesh_last),
            **plan.results,
        }
        modulus = (MODULUS_GPA[str(v["base"])] * float(v["base_thickness"])
                   + MODULUS_GPA[layer] * top) / (float(v["base_thickness"]) + top)  # fmt: skip
        p = flattening_pressure_kpa(
            float(v["base_thickness"]) + top, float(v["warpage"]), size, modulus
        )
        if p > CHUCK_SEAL_KPA:
            alarms.append((805, 0.0))
        _stop_first(plan, alarms)
        if exposed < EXPOSED_WARN_PCT:
            plan.warnings.append(881)
        if feature in METALS and phases[0].wheel == "coarse" and feature in phases[0].mix:
            plan.warnings.append(882)  # the coarse wheel reached the highest feature tops
        return plan

    def _cmp(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material = str(v["material"])
        pressure, velocity = float(v["pressure"]), float(v["velocity"])
        overburden, width = float(v["overburden"]), float(v["feature_width"])
        flow = float(v["slurry_flow"])
        pad = next(c for c in self.interface.consumables if c.name == "cmp_pad")
        nominal = cmp_rate_nm_min(material, pressure, velocity, flow, self.used_fraction(pad))
        rate = nominal * rng.gauss(1.0, 0.02)
        alarm: tuple[int, float] | None = None
        if v["endpoint"] == "CLEAR":
            clear_s = overburden / rate * 60.0
            seconds = clear_s * (1.0 + float(v["overpolish"]) / 100.0)
            if overburden / nominal * 60.0 > CMP_MAX_POLISH_S:
                seconds = CMP_MAX_POLISH_S
                alarm = (810, (CMP_LOAD_S / 2.0 + seconds) / (CMP_LOAD_S + seconds))
        else:
            seconds = float(v["time"])
        potential = rate * seconds / 60.0
        film = min(overburden, potential)
        residue = overburden - film
        after = max(0.0, seconds - overburden / rate * 60.0)
        erosion = erosion_nm(material, rate, after)
        results = {
            "removed": film + erosion,
            "rate": rate,
            "residue": residue,
            "dishing": dishing_nm(material, rate, after, width),
            "erosion": erosion,
            "ra": CMP_RA_NM[material] * (pressure / 20.0) ** 0.3 * rng.lognormvariate(0.0, 0.1),
            "polish_time": seconds,
            "slurry_used": flow * seconds / 60.0 / 1000.0,
            "duration": (CMP_LOAD_S + seconds) / 60.0,
        }
        wear = {
            "cmp_pad": (seconds + CONDITION_S) / 3600.0,
            "slurry": results["slurry_used"],
        }
        plan = Plan(CMP_LOAD_S + seconds, results, wear, alarm)
        if residue > 0:
            plan.warnings.append(883)
        return plan
