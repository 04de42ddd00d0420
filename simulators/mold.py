"""Simulated molding press + post-mold-cure oven (process-reference.md §2 MOLD).

Cure follows Kamal, dα/dt = (k₁ + k₂α^m)(1−α)ⁿ with Arrhenius k₁, k₂, slowed by vitrification
as the glass transition (DiBenedetto, Tg(α)) approaches the cure temperature. Viscosity follows
Castro–Macosko, η = η₀·e^(T_b/T)·(α_g/(α_g − α))^(C₁+C₂α), so the compound stops flowing at the
gel conversion α_g. The fill: the flow front advances at the speed the pots (TRANSFER, volume
rate Q) or the closing stroke (COMPRESSION) allow, but never faster than the pressure can push
it through the cap gap h (Hele-Shaw, d(x²)/dt = P·h²/(6η)). The fill time is V/Q when the
pressure keeps up; a short shot is a flow front that stops at gel before it reaches the end
of the flow length (reach < 1: alarm), and sites near the end of a marginal fill come out short
with a local spread of the reach (3 %). Aged compound (floor time) starts partly cured, so it
gels sooner and flows worse.

Warpage at 25 °C is the bilayer curvature of cap on substrate,
κ = 6E₁E₂t₁t₂(t₁+t₂)Δε / (E₁²t₁⁴ + 4E₁E₂t₁³t₂ + 6E₁E₂t₁²t₂² + 4E₁E₂t₁t₂³ + E₂²t₂⁴) and
w = κL²/8, with the mismatch strain Δε = Δα₁·(min(T_sf, Tg) − 25 °C) + r·Δα₂·(T_sf − Tg)⁺
built from the stress-free (cure) temperature: glassy below Tg, rubbery above it where the
modulus ratio r = 0.03 lets little stress build. Voids come from gas trapped at the cavity
pressure left by the vacuum and compressed by the packing pressure; flash grows with the
pressure and with resin fouling of the mold between cleans, which also slowly spoils the
vacuum the seals can hold. With film assist, features pressed at least 3 µm into the film stay
clean; the tallest feature tears the film when it presses in more than 30 µm.

Material data (kinetics, rheology, moduli, CTEs, Tg) are engineering estimates for generic
epoxy mold compounds; calibrate before use.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from drivers.interface import Operation, Value
from drivers.interfaces.mold import (
    ATMOSPHERE_MBAR,
    COMPOUND_FORM,
    MOLD,
    STANDARD_PRESSURE,
    cavity_area_mm2,
    clamp_force_kn,
    cure_seconds,
    pressure_mpa,
)
from simulators.physics import R_GAS, bilayer_curvature, poisson
from simulators.tool import Plan, SimTool


@dataclass(frozen=True)
class Compound:
    """A mold compound: Kamal kinetics, Castro–Macosko rheology, thermo-mechanics."""

    k1: float  # 1/s at t_ref
    k2: float  # 1/s at t_ref
    t_ref: float  # °C
    ea: float  # J/mol
    m: float
    n: float
    alpha_gel: float
    eta_ref: float  # Pa·s at t_ref, uncured
    t_b: float  # K
    c1: float
    c2: float
    modulus_gpa: float  # glassy
    cte1: float  # ppm/K below Tg
    cte2: float  # ppm/K above Tg
    tg0: float  # °C uncured
    tg_inf: float  # °C fully cured
    density: float  # g/cm³
    bleed: float  # relative flash tendency
    void_base: float  # % voids from volatiles, under vacuum


COMPOUNDS: Mapping[str, Compound] = MappingProxyType({
    "EMC_TABLET": Compound(0.003, 0.085, 175.0, 70_000.0, 1.0, 1.6, 0.25, 15.0, 5000.0, 1.5,
                           1.0, 22.0, 12.0, 42.0, 40.0, 160.0, 1.98, 1.0, 0.03),
    "EMC_TABLET_LOW_CTE": Compound(0.0026, 0.075, 175.0, 70_000.0, 1.0, 1.6, 0.25, 25.0, 5000.0,
                                   1.5, 1.0, 26.0, 7.0, 28.0, 40.0, 185.0, 2.05, 0.8, 0.03),
    "EMC_MUF": Compound(0.003, 0.09, 175.0, 70_000.0, 1.0, 1.6, 0.27, 8.0, 5000.0, 1.5, 1.0,
                        18.0, 14.0, 45.0, 35.0, 150.0, 1.95, 1.5, 0.04),
    "EMC_GRANULE": Compound(0.003, 0.085, 175.0, 70_000.0, 1.0, 1.6, 0.25, 20.0, 5000.0, 1.5,
                            1.0, 23.0, 9.0, 34.0, 40.0, 170.0, 2.0, 0.8, 0.02),
    "LMC_LIQUID": Compound(0.0015, 0.03, 125.0, 60_000.0, 1.0, 1.6, 0.30, 10.0, 4000.0, 1.5,
                           1.0, 12.0, 8.0, 35.0, 0.0, 145.0, 1.90, 1.2, 0.02),
})  # fmt: skip
# substrate -> (modulus GPa, CTE ppm/K)
SUBSTRATES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"SI": (130.0, 2.6), "ORGANIC": (25.0, 14.0), "GLASS": (70.0, 3.3)}
)

DIBENEDETTO_LAMBDA = 0.45
VITRIFY_OFFSET_C = 15.0  # cure stalls as Tg(α) climbs to T_cure + 15 °C ...
VITRIFY_STEEPNESS = 100.0  # ... over this sharpness (diffusion factor 1/(1 + e^(C(α − α_c))))
ROOM_C = 25.0
RUBBERY_RATIO = 0.03  # modulus above Tg / glassy modulus
STEPS = 400  # integration steps of a cure or a fill

ALPHA0_FRESH = 0.01  # conversion of freshly thawed compound
AGING_PER_H = 0.0008  # conversion gained per hour on the floor

TRANSFER_RATE_CM3_S = 1.0  # pot/plunger volume rate
CLOSE_S = 15.0  # compression: final closing stroke
GRANULE_FLOW_MM = 10.0  # granules are spread evenly: each flows at most this far
LIQUID_FLOW_SHARE = 0.25  # liquid dispensed centrally flows this share of the smaller side
REACH_SIGMA = 0.03  # site-to-site spread of the flow reach

LOAD_S = {"TRANSFER": 20.0, "COMPRESSION": 30.0}  # load, preheat (and dispense) per shot
PUMP_TAU_S = 2.0  # vacuum pump-down: τ·ln(1013 mbar / p)
OPEN_S = 15.0  # open, eject, degate
FILM_INDEX_S = 5.0
FILM_MARGIN_M = 0.1  # film indexed per shot beyond the work piece's longer side

RUNNER_WASTE = 0.2  # transfer: runners as a share of the part ...
CULL_G = 2.0  # ... plus one cull per shot
COMPRESSION_WASTE = 0.02

VAC_BASE_MBAR = 0.8  # best cavity vacuum of a clean mold ...
VAC_FOULING = 2.0  # ... × (1 + 2·used²) as resin fouls the vents and seals

VOID_TRAP_PCT = {"TRANSFER": 1.5, "COMPRESSION": 0.8}  # vented, at the standard pressure
VOID_AGING = 10.0  # volatiles rise with conversion gained on the floor
GAP_TRAP = 0.5  # race-tracking around narrow gaps traps more gas
OCCUPIED_TRAP = 2.0

FLASH_REF_UM = {"TRANSFER": 15.0, "COMPRESSION": 8.0}  # clean mold, standard pressure
FLASH_FOULING = 3.0  # × (1 + 3·used²)
FAM_FLASH = 0.3  # the film seals the parting line
FLASH_WARN_UM = 50.0

SHRINK = 0.002  # linear cure shrinkage of the cap
THICKNESS_SIGMA = {"TRANSFER": 1.5, "COMPRESSION": 0.01}  # µm / relative (dispense accuracy)
RANGE_BASE_UM = {"TRANSFER": 4.0, "COMPRESSION": 6.0}
RANGE_REL = {"TRANSFER": 0.005, "COMPRESSION": 0.015}

FILM_SEAL_UM = 3.0  # a feature must press this far into the film to stay clean
FILM_PUNCTURE_UM = 30.0  # ... and tears the 50 µm film beyond this
RANGE_SIGMAS = 6.0  # a feature height range spans ≈ 6σ

UNDERCURE_MOLD = 0.60
UNDERCURE_OVEN = 0.95
RAMP_C_PER_MIN = 3.0


# --- cure and flow -------------------------------------------------------------------------


def tg_c(compound: str, alpha: float) -> float:
    """DiBenedetto: (Tg − Tg₀)/(Tg∞ − Tg₀) = λα/(1 − (1 − λ)α)."""
    c, lam = COMPOUNDS[compound], DIBENEDETTO_LAMBDA
    return c.tg0 + (c.tg_inf - c.tg0) * lam * alpha / (1.0 - (1.0 - lam) * alpha)


def vitrification_alpha(compound: str, temp_c: float) -> float:
    """Conversion at which Tg(α) reaches T + 20 °C (above 1 when it never does)."""
    c, lam = COMPOUNDS[compound], DIBENEDETTO_LAMBDA
    x = (temp_c + VITRIFY_OFFSET_C - c.tg0) / (c.tg_inf - c.tg0)
    return x / (lam + (1.0 - lam) * x)


def cure_rate(compound: str, alpha: float, temp_c: float) -> float:
    """Kamal dα/dt in 1/s, times the vitrification (diffusion) factor."""
    c = COMPOUNDS[compound]
    t_k, ref_k = temp_c + 273.15, c.t_ref + 273.15
    arr = math.exp(-c.ea / R_GAS * (1.0 / t_k - 1.0 / ref_k))
    a = min(max(alpha, 0.0), 1.0)
    kamal = (c.k1 * arr + c.k2 * arr * math.pow(a, c.m)) * math.pow(1.0 - a, c.n)
    z = VITRIFY_STEEPNESS * (a - vitrification_alpha(compound, temp_c))
    return kamal / (1.0 + math.exp(min(z, 700.0)))


def cure_after(compound: str, temp_c: float, seconds: float, alpha0: float) -> float:
    """Conversion after `seconds` at `temp_c` from `alpha0` (isothermal, RK4)."""
    dt, a = seconds / STEPS, alpha0

    def f(x: float) -> float:
        return cure_rate(compound, x, temp_c)

    for _ in range(STEPS):
        k1 = f(a)
        k2 = f(a + 0.5 * dt * k1)
        k3 = f(a + 0.5 * dt * k2)
        k4 = f(a + dt * k3)
        a = min(1.0, a + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))
    return a


def gel_time_s(compound: str, temp_c: float, alpha0: float) -> float:
    """t_gel = ∫ dα / (dα/dt) from α₀ to α_g (isothermal; Simpson's rule)."""
    a_g = COMPOUNDS[compound].alpha_gel
    if alpha0 >= a_g:
        return 0.0
    h = (a_g - alpha0) / STEPS
    total = 0.0
    for i in range(STEPS + 1):
        w = 1 if i in (0, STEPS) else (4 if i % 2 else 2)
        total += w / cure_rate(compound, alpha0 + i * h, temp_c)
    return total * h / 3.0


def viscosity_pa_s(compound: str, temp_c: float, alpha: float) -> float:
    """Castro–Macosko: η = η₀·e^(T_b/T)·(α_g/(α_g − α))^(C₁ + C₂α); infinite at gel."""
    c = COMPOUNDS[compound]
    if alpha >= c.alpha_gel:
        return math.inf
    eta0 = c.eta_ref * math.exp(-c.t_b / (c.t_ref + 273.15))
    return (
        eta0
        * math.exp(c.t_b / (temp_c + 273.15))
        * math.pow(c.alpha_gel / (c.alpha_gel - alpha), c.c1 + c.c2 * alpha)
    )


def flow_length_mm(method: str, compound: str, shape: str, width: float, length: float) -> float:
    """How far the compound must flow: across the strip from the gates on its long side (or
    across the wafer) in TRANSFER; between granules, or from the central dispense pattern to
    the edge, in COMPRESSION."""
    small = width if shape == "ROUND" else min(width, length)
    if method == "TRANSFER":
        return small
    if COMPOUND_FORM[compound] == "GRANULE":
        return GRANULE_FLOW_MM
    return LIQUID_FLOW_SHARE * small


def cavity_cm3(area_mm2: float, thickness_um: float, occupied_pct: float) -> float:
    return area_mm2 * thickness_um * 1e-3 * (1.0 - occupied_pct / 100.0) / 1000.0


def min_fill_s(method: str, volume_cm3: float) -> float:
    """Fastest fill the machine allows: V/Q through the pots, or the closing stroke."""
    return volume_cm3 / TRANSFER_RATE_CM3_S if method == "TRANSFER" else CLOSE_S


def flow_front(
    compound: str,
    temp_c: float,
    alpha0: float,
    pressure: float,
    gap_um: float,
    flow_mm: float,
    fastest_s: float,
) -> tuple[float, float]:
    """(fill time s, reach) of a flow front that moves at flow_mm/fastest_s while the pressure
    keeps up and slows to d(x²)/dt = P·h²/(6η) when it does not, until the compound gels.
    reach = distance at gel / flow length (≥ 1: fills); fill time = time at gel if < 1."""
    a_g = COMPOUNDS[compound].alpha_gel
    speed = flow_mm / fastest_s  # mm/s
    push = pressure * 1e6 * (gap_um * 1e-6) ** 2 / 6.0  # m²·Pa: d(x²)/dt·η
    h = (a_g - alpha0) / STEPS
    t = x = 0.0  # s, mm
    fill = math.nan
    for i in range(STEPS):
        a_mid = alpha0 + (i + 0.5) * h
        dt = h / cure_rate(compound, a_mid, temp_c)
        eta = viscosity_pa_s(compound, temp_c, a_mid)
        x_push = math.sqrt((x * 1e-3) ** 2 + push * dt / eta) * 1e3
        x_new = min(x + speed * dt, x_push)
        if math.isnan(fill) and x_new >= flow_mm:
            fill = t + dt * (flow_mm - x) / (x_new - x)
        x, t = x_new, t + dt
    return (t if math.isnan(fill) else fill), x / flow_mm


def short_fraction(reach: float) -> float:
    """Share of sites, evenly spread along the flow, that the front misses: ∫₀¹ Φ((x − r)/s)dx
    with the site-to-site spread s of the reach."""
    s = REACH_SIGMA
    return s * (_g((1.0 - reach) / s) - _g(-reach / s))


# --- cap, film, mold condition -------------------------------------------------------------


def alpha0_after(floor_h: float) -> float:
    """Conversion of the loaded compound after floor_h hours out of the freezer."""
    return ALPHA0_FRESH + AGING_PER_H * floor_h


def achievable_vacuum_mbar(clean_used: float) -> float:
    """Best cavity vacuum the vents and seals hold, fouling as shots accumulate."""
    return VAC_BASE_MBAR * (1.0 + VAC_FOULING * clean_used**2)


def voids_pct(
    method: str,
    compound: str,
    vacuum_mbar: float,
    pressure: float,
    alpha0: float,
    thickness_um: float,
    min_gap_um: float,
    occupied_pct: float,
) -> float:
    """Volatiles plus gas trapped at the cavity pressure, compressed by the packing pressure."""
    base = COMPOUNDS[compound].void_base * (1.0 + VOID_AGING * (alpha0 - ALPHA0_FRESH))
    gap = GAP_TRAP * max(0.0, thickness_um / min_gap_um - 1.0) if min_gap_um > 0 else 0.0
    trap = (
        VOID_TRAP_PCT[method]
        * (vacuum_mbar / ATMOSPHERE_MBAR)
        * (STANDARD_PRESSURE[method] / pressure)
        * (1.0 + gap)
        * (1.0 + OCCUPIED_TRAP * occupied_pct / 100.0)
    )
    return base + trap


def flash_um(method: str, compound: str, pressure: float, clean_used: float, fam: bool) -> float:
    return (
        FLASH_REF_UM[method]
        * COMPOUNDS[compound].bleed
        * (pressure / STANDARD_PRESSURE[method])
        * (1.0 + FLASH_FOULING * clean_used**2)
        * (FAM_FLASH if fam else 1.0)
    )


def exposed_fraction(embed_um: float, coplanarity_um: float) -> float:
    """Share of features pressed ≥ 3 µm into the film; heights spread σ = range / 6."""
    margin = embed_um - FILM_SEAL_UM
    if coplanarity_um <= 0:
        return 1.0 if margin >= 0 else 0.0
    return _phi(margin / (coplanarity_um / RANGE_SIGMAS))


def film_punctured(embed_um: float, coplanarity_um: float) -> bool:
    """The tallest feature (half the range above the mean) presses through the film."""
    return embed_um + coplanarity_um / 2.0 > FILM_PUNCTURE_UM


# --- warpage --------------------------------------------------------------------------------


def mismatch_strain(compound: str, substrate: str, tg: float, stress_free_c: float) -> float:
    """Δε of cap vs substrate on cooling from the stress-free temperature to 25 °C."""
    c, (_, cte_s) = COMPOUNDS[compound], SUBSTRATES[substrate]
    glassy = (c.cte1 - cte_s) * (min(stress_free_c, tg) - ROOM_C)
    rubbery = RUBBERY_RATIO * (c.cte2 - cte_s) * max(0.0, stress_free_c - tg)
    return (glassy + rubbery) * 1e-6


def bow_um(
    compound: str,
    substrate: str,
    substrate_um: float,
    cap_um: float,
    span_mm: float,
    tg: float,
    stress_free_c: float,
) -> float:
    """Signed bow w = κL²/8 at 25 °C over the span L (+ edges up)."""
    e_s, _ = SUBSTRATES[substrate]
    kappa = bilayer_curvature(
        e_s * 1e9,
        substrate_um * 1e-6,
        COMPOUNDS[compound].modulus_gpa * 1e9,
        cap_um * 1e-6,
        mismatch_strain(compound, substrate, tg, stress_free_c),
    )
    return kappa * (span_mm * 1e-3) ** 2 / 8.0 * 1e6


def span_mm(shape: str, width: float, length: float) -> float:
    """Warpage is measured over the wafer diameter or the longer side of a strip/panel."""
    return width if shape == "ROUND" else max(width, length)


# --- consumption and time -------------------------------------------------------------------


def emc_grams(method: str, compound: str, volume_cm3: float) -> float:
    """Compound per shot: the part, plus runners and a cull (TRANSFER) or dispense losses."""
    part = volume_cm3 * COMPOUNDS[compound].density
    if method == "TRANSFER":
        return part * (1.0 + RUNNER_WASTE) + CULL_G
    return part * (1.0 + COMPRESSION_WASTE)


def film_metres(shape: str, width: float, length: float) -> float:
    """Film indexed per shot: the piece's longer side plus a margin."""
    return span_mm(shape, width, length) / 1000.0 + FILM_MARGIN_M


def shot_seconds(method: str, vacuum_mbar: float, fill_s: float, cure_s: float, fam: bool) -> float:
    pump = PUMP_TAU_S * math.log(ATMOSPHERE_MBAR / vacuum_mbar)
    return LOAD_S[method] + pump + fill_s + cure_s + OPEN_S + (FILM_INDEX_S if fam else 0.0)


def oven_minutes(cure_temp_c: float, hours: float) -> float:
    """Ramp up at 3 °C/min, hold, cool down at 3 °C/min."""
    return 2.0 * (cure_temp_c - ROOM_C) / RAMP_C_PER_MIN + 60.0 * hours


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _g(z: float) -> float:
    """∫_{-∞}^{z} Φ(u) du = zΦ(z) + φ(z)."""
    return z * _phi(z) + math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


# --- the tool -------------------------------------------------------------------------------


class MoldSim(SimTool):
    interface = MOLD

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        if op.name == "mold":
            return self._mold(values, rng)
        return self._post_mold_cure(values, rng)

    def replace_consumable(self, name: str) -> None:
        super().replace_consumable(name)
        if name.lower() == "emc_supply":  # a fresh, just-thawed lot
            super().replace_consumable("emc_floor_time")

    def _used(self, name: str) -> float:
        spec = next(c for c in self.interface.consumables if c.name == name)
        return min(1.0, self.used_fraction(spec))

    def _mold(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        compound, method = str(v["compound"]), str(v["method"])
        substrate, shape = str(v["substrate"]), str(v["work_shape"])
        fam = v["film_assist"] == "FAM"
        width, length = float(v["work_width"]), float(v["work_length"])
        cap, sub_t = float(v["thickness"]), float(v["substrate_thickness"])
        occupied, gap = float(v["occupied_volume"]), float(v["min_gap"])
        pieces, units = int(float(v["work_pieces"])), int(float(v["units"]))
        temp, pressure = float(v["mold_temp"]), pressure_mpa(v)
        cure_s, vacuum = cure_seconds(v), float(v["vacuum"])
        exposed_h, coplanarity = float(v["exposed_height"]), float(v["feature_coplanarity"])

        a0 = alpha0_after(self.levels["emc_floor_time"])
        clean_used = self._used("shots_since_clean")
        share = float(v["cavity_share"]) / 100.0
        area = cavity_area_mm2(v)
        volume = cavity_cm3(area, cap, occupied)
        flow = flow_length_mm(method, compound, shape, width, length)
        gel = gel_time_s(compound, temp, a0)
        fill, reach = flow_front(
            compound,
            temp,
            a0,
            pressure,
            cap * (1.0 - occupied / 100.0),
            flow,
            min_fill_s(method, volume),
        )
        cure = cure_after(compound, temp, fill + cure_s, a0)
        shot = shot_seconds(method, vacuum, fill, cure_s, fam)
        total = pieces * shot
        span = span_mm(shape, width, length)
        # pockets over the sites: the cap covers only their share of the span
        bow_model = share * bow_um(
            compound, substrate, sub_t, cap, span, tg_c(compound, cure), temp
        )
        flash_model = flash_um(method, compound, pressure, clean_used, fam)
        embed = exposed_h - cap
        n_sites = pieces * units
        short = min(n_sites, poisson(rng, n_sites * short_fraction(reach))) if reach >= 1 else 0
        emc = pieces * emc_grams(method, compound, volume)
        film = pieces * film_metres(shape, width, length) if fam else 0.0
        vac_measured = (
            ATMOSPHERE_MBAR if vacuum >= ATMOSPHERE_MBAR else vacuum * rng.uniform(0.9, 1.0)
        )
        thickness = [
            cap * (1.0 - SHRINK)
            + (
                rng.gauss(0.0, THICKNESS_SIGMA[method])
                if method == "TRANSFER"
                else cap * rng.gauss(0.0, THICKNESS_SIGMA[method])
            )
            for _ in range(pieces)
        ]
        bows = [bow_model * rng.gauss(1.0, 0.05) for _ in range(pieces)]
        worst = max(bows, key=abs)
        results = {
            "thickness": sum(thickness) / pieces,
            "thickness_range": max(
                (RANGE_BASE_UM[method] + RANGE_REL[method] * cap) * rng.lognormvariate(0.0, 0.1)
                for _ in range(pieces)
            ),
            "warpage": abs(worst),
            "bow": worst,
            "voids": voids_pct(method, compound, vac_measured, pressure, a0, cap, gap, occupied)
            * rng.lognormvariate(0.0, 0.2),
            "flash": flash_model * rng.lognormvariate(0.0, 0.15),
            "exposed_fraction": 100.0 * exposed_fraction(embed, coplanarity) if exposed_h else 0.0,
            "short_shot": float(short),
            "cure": 100.0 * cure,
            "tg": tg_c(compound, cure),
            "gel_time": gel,
            "fill_time": fill,
            "flow_reach": 100.0 * reach,
            "viscosity": viscosity_pa_s(compound, temp, a0),
            "mold_temp_measured": temp + rng.gauss(0.0, 0.4),
            "pressure_measured": pressure * rng.gauss(1.0, 0.01),
            "vacuum_measured": vac_measured,
            "clamp_force": clamp_force_kn(method, pressure, area),
            "emc_used": emc,
            "film_used": film,
            "duration": total / 60.0,
        }
        wear = {
            "emc_supply": emc,
            "shots_since_clean": float(pieces),
            "emc_floor_time": total / 3600.0,
        }
        if fam:
            wear["release_film"] = film
        plan = Plan(total, results, wear)
        # physics alarms, in the order the first shot would meet them (seconds into the job)
        clamped = LOAD_S[method]
        evacuated = clamped + PUMP_TAU_S * math.log(ATMOSPHERE_MBAR / vacuum)
        stops: list[tuple[int, float]] = []
        if vacuum < ATMOSPHERE_MBAR and achievable_vacuum_mbar(clean_used) > vacuum:
            stops.append((705, evacuated))  # the pump-down times out
        if fam and exposed_h > 0 and film_punctured(embed, coplanarity):
            stops.append((706, clamped))  # the film tears as the mold closes on the features
        if reach < 1.0:
            stops.append((704, evacuated + gel))  # the front stops where the compound gels
        if stops:
            code, at = min(stops, key=lambda s: s[1])
            plan.alarm = (code, min(at, total) / total)
        if cure < UNDERCURE_MOLD:
            plan.warnings.append(794)
        if short > 0:
            plan.warnings.append(795)
        if flash_model > FLASH_WARN_UM:
            plan.warnings.append(796)
        return plan

    def _post_mold_cure(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        compound, substrate, shape = str(v["compound"]), str(v["substrate"]), str(v["work_shape"])
        temp, hours = float(v["cure_temp"]), float(v["cure_time"])
        width, length = float(v["work_width"]), float(v["work_length"])
        pieces = int(float(v["work_pieces"]))
        cure = cure_after(compound, temp, hours * 3600.0, float(v["cure_in"]) / 100.0)
        tg = tg_c(compound, cure)
        bow_model = (
            float(v["cavity_share"])
            / 100.0
            * bow_um(
                compound,
                substrate,
                float(v["substrate_thickness"]),
                float(v["thickness"]),
                span_mm(shape, width, length),
                tg,
                temp,  # the cap relaxes at the oven temperature: it is stress-free there
            )
        )
        worst = max((bow_model * rng.gauss(1.0, 0.05) for _ in range(pieces)), key=abs)
        minutes = oven_minutes(temp, hours)
        results = {
            "cure": 100.0 * cure,
            "tg": tg,
            "warpage": abs(worst),
            "bow": worst,
            "cure_temp_measured": temp + rng.gauss(0.0, 0.5),
            "duration": minutes,
        }
        plan = Plan(minutes * 60.0, results)
        if cure < UNDERCURE_OVEN:
            plan.warnings.append(794)
        return plan
