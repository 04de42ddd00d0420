"""Simulated solder ball mounter + reflow oven (process-reference.md §2 BALL).

Placement: missing balls ~ Poisson(n·p) per work piece with p = 5 ppm at a clean mask rising
to 30 ppm when the mask is due for cleaning, and more on warped work; extra (double) balls
grow with the flux thickness; the largest placement offset is σ·√(2 ln n) for n radial
offsets. Reflow: the bump height h solves πD³/6 − V_hole = πh(3a² + h²)/6 (a = land radius);
coplanarity = range of (h_i + z_i), taken as warpage + σ_h·d2(n) with σ_h from the ball
diameter and land tolerances; IMC x = √(D₀·e^(−Q/RT)·TAL); a ball whose own peak stays below
T_liq + 15 °C does not wet, and ball-to-ball temperature spread across the work piece turns
that threshold into a fraction; bridging when reflowed neighbours close the gap left by the
pitch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from drivers.interface import Operation, Value
from drivers.interfaces.ball import (
    BALL,
    BALL_DIAMETER_UM,
    LIQUIDUS_C,
    ball_volume_um3,
    hole_volume_um3,
)
from simulators.physics import R_GAS, expected_range, poisson
from simulators.tool import Plan, SimTool

# --- placement ---
MISSING_PPM_CLEAN = 5.0  # per ball site, clean mask, flat work
MISSING_MASK_FACTOR = 5.0  # × used² : 30 ppm when the mask is due for cleaning
WARP_MISSING_UM = 300.0  # warpage at which the missing rate doubles
EXTRA_PPM = 1.0  # double balls at flux = D/3 ...
EXTRA_FLUX_GAIN = 6.0  # ... × e^(6·(t/D − 1/3)): 2.7 ppm at D/2
OFFSET_SIGMA_UM = {"WAFER": 3.0, "STRIP": 4.0, "BOAT": 5.0}
OFFSET_WARP_GAIN = 0.01  # µm of σ per µm of warpage
HOLE_SEATING = 0.6  # a ball seated in a hole is better centred
OFFSET_LIMIT_UM = 25.0
FLUX_WASTE = 0.25  # stencil and transfer losses on top of the printed volume
FLUX_PURGE_ML = 0.05  # per print
LOAD_S, PRINT_S, MOUNT_S = 15.0, 12.0, 15.0  # per work piece
AOI_BALLS_PER_S = 20_000.0

# --- reflow ---
PREHEAT_S, COOL_S, INDEX_S = 180.0, 60.0, 30.0
ZONE_SIGMA_C = 0.8
ZONE_LIMIT_C = 5.0
NONWET_MARGIN_C = 15.0  # peak below T_liq + 15 °C: the ball does not wet
BALL_T_SPREAD_C = {"WAFER": 0.5, "STRIP": 0.7, "BOAT": 1.0}  # ball-to-ball peak spread, 1σ
NONWET_BASE = 0.5e-6
O2_PENALTY_C = 2.0  # °C of wetting margin lost per decade of O₂ above 100 ppm
TAL_SHORT_S, TAL_PENALTY_C = 60.0, 0.1  # °C of margin lost per second below 60 s
O2_INGRESS_PPM = {"WAFER": 10.0, "STRIP": 30.0, "BOAT": 80.0}
O2_LIMIT_PPM = 1000.0
BALL_LOT_SIGMA = 0.003  # lot mean diameter vs nominal
BALL_SIGMA = 0.005  # ball-to-ball diameter, relative 1σ (±1.5 % at 3σ)
PAD_SIGMA_UM = 2.0  # land diameter, 1σ
WARP_REFLOW_SIGMA = 0.05
# IMC growth x² = D₀·e^(−Q/RT)·TAL: Cu₆Sn₅ on Cu, ~1.8 µm for SAC305 at 245 °C, 75 s
IMC_Q_J_MOL = 50_000.0
IMC_D0_UM2_S = {"SNPB63": 3000.0, "SAC305": 4760.0, "SN100": 5000.0, "PB95SN5": 1500.0}
SHEAR_MPA = {"SNPB63": 70.0, "SAC305": 85.0, "SN100": 60.0, "PB95SN5": 45.0}  # over the land
IMC_BRITTLE_UM = 3.0
VOIDS_PCT = {"SNPB63": 1.5, "SAC305": 3.0, "SN100": 3.5, "PB95SN5": 1.0}
GF_PER_N = 1.0 / 9.80665e-3


# --- the model, as pure functions ---------------------------------------------------------


def ball_height_um(d_um: float, pad_um: float, hole_volume: float = 0.0) -> float:
    """Cap height h above the surface: πD³/6 − V_hole = πh(3a² + h²)/6 with a = pad/2.

    h³ + 3a²h − q = 0 (q = 6V/π) has one real root (Cardano), polished by Newton."""
    a = pad_um / 2.0
    v = ball_volume_um3(d_um) - hole_volume
    if v <= 0:
        return 0.0
    p, q = 3.0 * a * a, 6.0 * v / math.pi
    s = math.sqrt(q * q / 4.0 + p**3 / 27.0)
    h = math.cbrt(q / 2.0 + s) + math.cbrt(q / 2.0 - s)
    for _ in range(2):
        h -= (h**3 + p * h - q) / (3.0 * h * h + p)
    return h


def bump_width_um(pad_um: float, height_um: float) -> float:
    """Largest diameter of a spherical cap of height h on a land of diameter pad."""
    a = pad_um / 2.0
    if height_um <= a:
        return pad_um
    return (a * a + height_um**2) / height_um  # 2R, R = (a² + h²)/2h


def height_sigma_um(d_um: float, pad_um: float, hole_volume: float = 0.0) -> float:
    """Ball-to-ball σ of the bump height from the ball diameter (0.5 %) and land (2 µm) spread."""
    dd, dp = 0.5, 0.5
    dh_dd = (ball_height_um(d_um + dd, pad_um, hole_volume)
             - ball_height_um(d_um - dd, pad_um, hole_volume)) / (2 * dd)  # fmt: skip
    dh_dp = (ball_height_um(d_um, pad_um + dp, hole_volume)
             - ball_height_um(d_um, pad_um - dp, hole_volume)) / (2 * dp)  # fmt: skip
    return math.hypot(dh_dd * BALL_SIGMA * d_um, dh_dp * PAD_SIGMA_UM)


def coplanarity_um(sigma_h: float, balls: int, warpage_um: float) -> float:
    """Range of (h_i + z_i) over `balls` bumps: warpage plus the expected range of heights."""
    return warpage_um + sigma_h * expected_range(balls)


def missing_rate(mask_used: float, warpage_um: float) -> float:
    """Probability that a site stays empty: 5 ppm on a clean mask, 30 ppm when it is due."""
    used = min(max(mask_used, 0.0), 1.0)
    return (
        MISSING_PPM_CLEAN * 1e-6
        * (1.0 + MISSING_MASK_FACTOR * used**2)
        * (1.0 + (warpage_um / WARP_MISSING_UM) ** 2)
    )  # fmt: skip


def extra_rate(flux_um: float, d_um: float) -> float:
    """Probability of a double ball at a site: thicker flux holds a second ball."""
    return EXTRA_PPM * 1e-6 * math.exp(EXTRA_FLUX_GAIN * (flux_um / d_um - 1.0 / 3.0))


def offset_sigma_um(carrier: str, warpage_um: float, hole: bool) -> float:
    sigma = OFFSET_SIGMA_UM[carrier] + OFFSET_WARP_GAIN * warpage_um
    return sigma * (HOLE_SEATING if hole else 1.0)


def max_offset_um(sigma: float, balls: int) -> float:
    """Expected largest of n radial (Rayleigh) offsets: σ·√(2 ln n); mean σ·1.25 for one."""
    return sigma * max(1.2533, math.sqrt(2.0 * math.log(max(balls, 1))))


def flux_volume_ml(balls: int, pad_um: float, flux_um: float, hole_volume: float) -> float:
    """Flux printed over the lands (and into the holes), plus stencil waste, in mL."""
    per_site = math.pi * (pad_um / 2.0) ** 2 * flux_um + hole_volume  # µm³
    return balls * per_site * 1e-12 * (1.0 + FLUX_WASTE)


def imc_um(alloy: str, peak_c: float, tal_s: float) -> float:
    """x = √(D₀·e^(−Q/RT)·TAL), T the peak in kelvin."""
    t_k = peak_c + 273.15
    return math.sqrt(IMC_D0_UM2_S[alloy] * math.exp(-IMC_Q_J_MOL / (R_GAS * t_k)) * tal_s)


def wetting_margin_c(alloy: str, peak_c: float, tal_s: float, o2_ppm: float) -> float:
    """Peak above T_liq + 15 °C, less what O₂ above 100 ppm and a TAL under 60 s cost."""
    margin = peak_c - (LIQUIDUS_C[alloy] + NONWET_MARGIN_C)
    margin -= O2_PENALTY_C * math.log10(max(o2_ppm, 100.0) / 100.0)
    margin -= TAL_PENALTY_C * max(0.0, TAL_SHORT_S - tal_s)
    return margin


def nonwet_fraction(alloy: str, peak_c: float, tal_s: float, o2_ppm: float, carrier: str) -> float:
    """Share of balls whose own peak (spread σ around the part peak) misses the margin."""
    margin = wetting_margin_c(alloy, peak_c, tal_s, o2_ppm)
    return NONWET_BASE + _phi(-margin / BALL_T_SPREAD_C[carrier])


def bridge_fraction(pitch_um: float, width_um: float, d_um: float) -> float:
    """Per neighbour pair: P(gap closed), gap = pitch − bump width, σ = 2 µm + 2 % of D."""
    gap = pitch_um - width_um
    return _phi(-gap / (2.0 + 0.02 * d_um))


def voids_pct(alloy: str, tal_s: float, o2_ppm: float, hole_share: float) -> float:
    """Mean void area: longer TAL lets voids escape; oxides and filled holes trap them."""
    return (
        VOIDS_PCT[alloy]
        * math.sqrt(60.0 / tal_s)
        * (1.0 + 0.5 * o2_ppm / 1000.0)
        * (1.0 + 3.0 * hole_share)
    )


def shear_gf(alloy: str, pad_um: float, imc: float, voids: float) -> float:
    """Shear strength × land area, less voids; thick IMC embrittles the joint."""
    area_m2 = math.pi * (pad_um * 1e-6 / 2.0) ** 2
    force = SHEAR_MPA[alloy] * 1e6 * area_m2 * GF_PER_N * (1.0 - voids / 100.0)
    if imc > IMC_BRITTLE_UM:
        force /= 1.0 + ((imc - IMC_BRITTLE_UM) / IMC_BRITTLE_UM) ** 2
    return force


def place_seconds(balls: int, pieces: int) -> float:
    return pieces * (LOAD_S + PRINT_S + MOUNT_S + balls / AOI_BALLS_PER_S)


def reflow_seconds(tal_s: float, pieces: int) -> float:
    return PREHEAT_S + tal_s + COOL_S + (pieces - 1) * INDEX_S


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# --- the tool --------------------------------------------------------------------------------


class BallSim(SimTool):
    interface = BALL

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        place = op.name in ("ball_place", "wafer_bump")
        reflow = op.name in ("reflow", "wafer_bump")
        carrier = str(values.get("carrier", "WAFER"))
        balls, pieces = int(float(values["ball_count"])), int(float(values["work_pieces"]))
        results: dict[str, float] = {}
        wear: dict[str, float] = {}
        alarm: tuple[int, float] | None = None
        t_place = place_seconds(balls, pieces) if place else 0.0
        t_reflow = 0.0
        if reflow:
            # wafer bumping is in-line: each wafer enters the oven as the mounter releases it
            # (a wafer takes longer to mount than the oven's index), so only the last
            # wafer's pass adds to the job
            t_reflow = reflow_seconds(float(values["tal"]), 1 if place else pieces)
        total = t_place + t_reflow

        if place:
            results, wear, place_alarm = self._place(values, carrier, balls, pieces, rng)
            if place_alarm is not None:
                code, at = place_alarm
                alarm = (code, at * t_place / total)
        if reflow:
            measured, reflow_alarm = self._reflow(values, carrier, balls, pieces, rng)
            results.update(measured)
            if alarm is None and reflow_alarm is not None:
                code, seconds = reflow_alarm
                alarm = (code, (t_place + seconds) / total)
        results["duration"] = total / 60.0
        return Plan(total, results, wear, alarm)

    def _place(
        self,
        values: Mapping[str, Value],
        carrier: str,
        balls: int,
        pieces: int,
        rng: random.Random,
    ) -> tuple[dict[str, float], dict[str, float], tuple[int, float] | None]:
        d = BALL_DIAMETER_UM[str(values["ball_size"])]
        pad, flux = float(values["pad_diameter"]), float(values["flux_thickness"])
        warp = float(values["warpage"])
        v_hole = hole_volume_um3(float(values["hole_diameter"]), float(values["hole_depth"]))
        mask = next(c for c in self.interface.consumables if c.name == "mask_cycles")
        p_miss = missing_rate(self.used_fraction(mask), warp)
        p_extra = extra_rate(flux, d)
        missing = [poisson(rng, balls * p_miss) for _ in range(pieces)]
        extra = sum(poisson(rng, balls * p_extra) for _ in range(pieces))
        sigma = offset_sigma_um(carrier, warp, v_hole > 0)
        offsets = [max_offset_um(sigma, balls) * rng.gauss(1.0, 0.04) for _ in range(pieces)]
        # a boat of units is printed through one mask in one stroke; wafers and strips one
        # print each
        prints = 1 if carrier == "BOAT" else pieces
        flux_ml = pieces * flux_volume_ml(balls, pad, flux, v_hole) + prints * FLUX_PURGE_ML
        used = balls * pieces + extra
        results = {
            "placed": float(balls * pieces - sum(missing)),
            "missing": float(sum(missing)),
            "extra": float(extra),
            "offset_max": max(offsets),
            "flux_measured": flux * rng.gauss(1.0, 0.03),
            "flux_used": flux_ml,
            "balls_used": float(used),
        }
        wear = {"ball_supply": float(used), "flux": flux_ml, "mask_cycles": float(prints)}
        alarm = None
        limit = int(float(values["missing_limit"]))
        for i in range(pieces):  # the AOI inspects each work piece after mounting it
            if offsets[i] > OFFSET_LIMIT_UM:
                alarm = (505, (i + 0.9) / pieces)
            elif missing[i] > limit:
                alarm = (504, (i + 0.95) / pieces)
            if alarm:
                break
        return results, wear, alarm

    def _reflow(
        self,
        values: Mapping[str, Value],
        carrier: str,
        balls: int,
        pieces: int,
        rng: random.Random,
    ) -> tuple[dict[str, float], tuple[int, float] | None]:
        alloy = str(values["alloy"])
        d_nom = BALL_DIAMETER_UM[str(values["ball_size"])]
        pad, pitch, warp = (float(values[k]) for k in ("pad_diameter", "pitch", "warpage"))
        v_hole = hole_volume_um3(float(values["hole_diameter"]), float(values["hole_depth"]))
        peak_set, tal_set, o2_set = (float(values[k]) for k in ("peak_temp", "tal", "o2"))

        zone_dev = rng.gauss(0.0, ZONE_SIGMA_C)
        peak = peak_set + zone_dev
        tal = tal_set * rng.gauss(1.0, 0.03)
        o2 = o2_set + O2_INGRESS_PPM[carrier] * rng.lognormvariate(0.0, 0.3)

        d_lot = d_nom * (1.0 + rng.gauss(0.0, BALL_LOT_SIGMA))
        height = ball_height_um(d_lot, pad, v_hole)
        width = bump_width_um(pad, height)
        sigma_h = height_sigma_um(d_lot, pad, v_hole)
        coplanarity = max(
            coplanarity_um(
                sigma_h * rng.lognormvariate(0.0, 0.08),
                balls,
                warp * max(0.0, rng.gauss(1.0, WARP_REFLOW_SIGMA)),
            )
            for _ in range(pieces)
        )
        imc = imc_um(alloy, peak, tal)
        hole_share = v_hole / ball_volume_um3(d_nom)
        voids = voids_pct(alloy, tal, o2, hole_share) * rng.lognormvariate(0.0, 0.15)
        n = balls * pieces
        nonwet = poisson(rng, n * nonwet_fraction(alloy, peak, tal, o2, carrier))
        bridged = poisson(rng, 2 * n * bridge_fraction(pitch, width, d_nom))
        results = {
            "ball_height": height * rng.gauss(1.0, 0.002),
            "bump_width": width * rng.gauss(1.0, 0.002),
            "coplanarity": coplanarity,
            "voids": voids,
            "shear": shear_gf(alloy, pad, imc, voids) * rng.gauss(1.0, 0.04),
            "imc": imc,
            "nonwet": float(nonwet),
            "bridged": float(bridged),
            "peak_measured": peak,
            "tal_measured": tal,
            "o2_measured": o2,
        }
        alarm: tuple[int, float] | None = None  # (code, seconds into the oven pass)
        if o2 > O2_LIMIT_PPM:
            alarm = (507, 0.5 * PREHEAT_S)  # checked while the first piece preheats
        elif abs(zone_dev) > ZONE_LIMIT_C:
            alarm = (506, 0.8 * PREHEAT_S)
        elif peak > float(values["peak_limit"]):
            alarm = (508, PREHEAT_S + 0.5 * tal_set)  # at the peak
        return results, alarm
