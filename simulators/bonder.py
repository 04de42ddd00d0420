"""Simulated bonder (process-reference.md §2 BOND).

Misregistration from thermal expansion: r·(α₁ΔT₁ − α₂ΔT₂), alignment at room temperature.
Adhesive squeeze flow between parallel discs (Stefan): 1/h² = 1/h₀² + 4Ft/(3πμR⁴), flowing
until the resin gels. Resin cure is n-th order Arrhenius, dα/dt = A·e^(−Ea/RT)(1−α)ⁿ, solved in
closed form; bond strength ∝ α; cure shrink ∝ Δα. Voids = v₀e^(−P/P₀)(1 + k·outgas). TCB
collapse δ = F/(N·k_b(T)) with a bump stiffness that softens with temperature and height; a
bump opens when it is shorter than the tallest by more than δ (Gaussian heights whose expected
range is the given coplanarity). Bond-line thermal resistance R_th = BLT/(k·A·(1 − void)).

The model is a set of small pure functions so tests can compute the expected values; the
constants are engineering estimates (process-reference.md: "calibrate them before use").
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from drivers.interface import Operation, Value
from drivers.interfaces.bonder import (
    ADHESIVE_CONDUCTIVITY_W_MK,
    BONDER,
    PART_CTE_PPM,
    PART_MATES_ON,
    PATTERNED_FILMS,
    SI_CTE_PPM,
    SOLIDUS_C,
    SUBSTRATE_CTE_PPM,
    SUBSTRATE_MODULUS_GPA,
    edge_shear,
    gang_force_kn,
    lamination_runout_um,
    w2w_pressure_mpa,
)
from simulators.physics import R_GAS, bilayer_curvature, expected_range, poisson
from simulators.tool import Plan, SimTool

T_ROOM_C = 25.0  # alignment temperature
P_ATM_MBAR = 1013.0


# --- resins --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resin:
    """Cure kinetics, flow and bond properties of one adhesive resin."""

    k_ref: float  # cure rate constant A·e^(−Ea/RT) at t_ref_c, 1/s
    t_ref_c: float
    ea: float  # cure activation energy, J/mol
    order: float  # reaction order n
    alpha0: float  # degree of cure as delivered (B-stage for coated films, 0 for pastes)
    alpha_gel: float  # flow stops here
    mu_ref: float  # minimum viscosity of the B-staged resin at t_ref_c, Pa·s
    e_visc: float  # viscous-flow activation energy, J/mol
    shrink: float  # thickness shrink from α0 to full cure
    strength_mpa: float  # shear strength at full cure
    outgas: float  # relative outgassing (PI imidization water = 1)


RESINS: Mapping[str, Resin] = MappingProxyType(
    {
        # PI: ~60 % imidized after 1 h at 250 °C, ~97 % after 1 h at 350 °C
        "POLYIMIDE": Resin(2.57e-4, 250.0, 62e3, 1.5, 0.2, 0.5, 20.0, 60e3, 0.10, 25.0, 1.0),
        # BCB: ~95 % after 1 h at 250 °C, ~75 % after 40 min at 210 °C (soft cure)
        "BCB": Resin(1.82e-3, 250.0, 55e3, 1.5, 0.3, 0.5, 2.0, 50e3, 0.05, 30.0, 0.1),
        # epoxy: ~90 % after 1 h at 150 °C, ~95 % after 30 min at 175 °C
        "EPOXY": Resin(1.2e-3, 150.0, 70e3, 1.5, 0.1, 0.5, 4.0, 50e3, 0.03, 20.0, 0.4),
        # addition-cure silicone TIM
        "SILICONE": Resin(2.0e-3, 150.0, 60e3, 1.5, 0.0, 0.6, 30.0, 40e3, 0.01, 5.0, 0.2),
        # snap-cure ACF resin: ~90 % in 10 s at 180 °C
        "ACF": Resin(0.43, 180.0, 80e3, 1.5, 0.05, 0.5, 10.0, 50e3, 0.02, 20.0, 0.2),
    }
)


def rate_constant(resin: Resin, temp_c: float) -> float:
    """A·e^(−Ea/RT), 1/s."""
    t, t_ref = temp_c + 273.15, resin.t_ref_c + 273.15
    return resin.k_ref * math.exp(-resin.ea / R_GAS * (1.0 / t - 1.0 / t_ref))


def cure_degree(resin: Resin, temp_c: float, time_s: float, alpha0: float | None = None) -> float:
    """Degree of cure after `time_s` at `temp_c`, from α0: closed form of
    dα/dt = k(1−α)ⁿ, i.e. (1−α)^(1−n) = (1−α0)^(1−n) + (n−1)·k·t (1 − α = (1−α0)e^(−kt) for
    n = 1)."""
    a0 = resin.alpha0 if alpha0 is None else alpha0
    kt = rate_constant(resin, temp_c) * max(0.0, time_s)
    n = resin.order
    if n == 1.0:
        return 1.0 - (1.0 - a0) * math.exp(-kt)
    return 1.0 - math.pow(math.pow(1.0 - a0, 1.0 - n) + (n - 1.0) * kt, 1.0 / (1.0 - n))


def time_to_degree(resin: Resin, temp_c: float, alpha: float, alpha0: float | None = None) -> float:
    """Seconds at `temp_c` to cure from α0 to `alpha` (inverse of `cure_degree`)."""
    a0 = resin.alpha0 if alpha0 is None else alpha0
    if alpha <= a0:
        return 0.0
    k, n = rate_constant(resin, temp_c), resin.order
    if n == 1.0:
        return math.log((1.0 - a0) / (1.0 - alpha)) / k
    return (math.pow(1.0 - alpha, 1.0 - n) - math.pow(1.0 - a0, 1.0 - n)) / ((n - 1.0) * k)


def viscosity_pa_s(resin: Resin, temp_c: float) -> float:
    """Minimum (pre-gel) viscosity of the B-staged resin: μ_ref·e^(E/R·(1/T − 1/T_ref))."""
    t, t_ref = temp_c + 273.15, resin.t_ref_c + 273.15
    return resin.mu_ref * math.exp(resin.e_visc / R_GAS * (1.0 / t - 1.0 / t_ref))


def squeeze_thickness_um(
    h0_um: float, force_n: float, time_s: float, viscosity: float, radius_mm: float
) -> float:
    """Stefan squeeze flow between parallel discs: 1/h² = 1/h₀² + 4Ft/(3πμR⁴) (SI units)."""
    h0, r = h0_um * 1e-6, radius_mm * 1e-3
    inv_h2 = 1.0 / h0**2 + 4.0 * force_n * time_s / (3.0 * math.pi * viscosity * r**4)
    return 1e6 / math.sqrt(inv_h2)


@dataclass(frozen=True)
class BondLine:
    squeezed_um: float  # thickness when the flow stopped
    blt_um: float  # after cure shrink
    cure: float  # degree of cure, 0..1
    flow_s: float  # how long the resin flowed


def resin_bond_line(
    resin_name: str,
    h0_um: float,
    force_n: float,
    temp_c: float,
    time_s: float,
    radius_mm: float,
    viscosity_factor: float = 1.0,
) -> BondLine:
    """A B-staged resin pressed at `temp_c`: it flows at its minimum viscosity (× a factor for
    filled films) until it gels or the time runs out, then shrinks as it cures."""
    resin = RESINS[resin_name]
    flow_s = min(time_s, time_to_degree(resin, temp_c, resin.alpha_gel))
    mu = viscosity_pa_s(resin, temp_c) * viscosity_factor
    squeezed = squeeze_thickness_um(h0_um, force_n, flow_s, mu, radius_mm)
    cure = cure_degree(resin, temp_c, time_s)
    return BondLine(squeezed, cure_shrunk_um(resin_name, squeezed, cure), cure, flow_s)


def cure_shrunk_um(resin_name: str, thickness_um: float, cure: float) -> float:
    resin = RESINS[resin_name]
    return thickness_um * (1.0 - resin.shrink * max(0.0, cure - resin.alpha0))


def bond_strength_mpa(resin_name: str, cure: float, void_pct: float) -> float:
    """Shear strength ∝ degree of cure, over the bonded (void-free) area."""
    return RESINS[resin_name].strength_mpa * cure * (1.0 - void_pct / 100.0)


# --- voids, misregistration, vacuum --------------------------------------------------------

K_OUTGAS = 1.0


def void_percent(v0_pct: float, pressure_mpa: float, p0_mpa: float, outgas: float) -> float:
    """v₀e^(−P/P₀)(1 + k·outgas)."""
    return v0_pct * math.exp(-pressure_mpa / p0_mpa) * (1.0 + K_OUTGAS * outgas)


def thermal_offset_um(
    radius_mm: float, alpha1_ppm: float, dt1_k: float, alpha2_ppm: float, dt2_k: float
) -> float:
    """r·(α₁ΔT₁ − α₂ΔT₂): misregistration at radius r of two parts aligned at room temperature
    and bonded at ΔT₁, ΔT₂ above it. Si–Si with ΔT₁ − ΔT₂ = 1 K gives 0.26 µm at 100 mm."""
    return radius_mm * 1e3 * (alpha1_ppm * dt1_k - alpha2_ppm * dt2_k) * 1e-6


def cte_runout_um(substrate: str, delta_t_k: float, radius_mm: float) -> float:
    """Edge runout of a Si wafer on a substrate panel, both heated ΔT above the alignment:
    ORGANIC, ΔT 195 K, r 100 mm gives (17 − 2.6)e-6 × 195 × 100 mm ≈ 281 µm."""
    return abs(
        thermal_offset_um(radius_mm, SUBSTRATE_CTE_PPM[substrate], delta_t_k, SI_CTE_PPM, delta_t_k)
    )


PUMP_TAU_S = 8.0  # chamber volume / pumping speed
CHAMBER_BASE_MBAR = 1e-5  # empty, clean chamber
PUMP_TIMEOUT_S = 900.0


def chamber_ultimate_mbar(adhesive: str) -> float:
    """What the chamber can reach with this adhesive outgassing in it."""
    return CHAMBER_BASE_MBAR * (1.0 + 4.0 * RESINS[adhesive].outgas)


def pump_down_s(setpoint_mbar: float, ultimate_mbar: float) -> float:
    """p(t) = p_ult + (p_atm − p_ult)·e^(−t/τ); infinite if the setpoint is not above p_ult."""
    if setpoint_mbar <= ultimate_mbar:
        return math.inf
    return PUMP_TAU_S * math.log((P_ATM_MBAR - ultimate_mbar) / (setpoint_mbar - ultimate_mbar))


# --- bumps ---------------------------------------------------------------------------------

BUMP_FILL = 0.6  # fraction of the wafer area carrying the bump array
PAD_FRACTION = 0.5  # pad diameter / bump pitch: a joint opens past half a pad (pitch/4)
LIQUIDUS_C: Mapping[str, float] = MappingProxyType({"SAC305": 220.0, "SNPB": 183.0})
NONWET_P0 = 1e-5  # probability a joint does not wet at the liquidus
NONWET_SCALE_K = 4.0  # ... falling e-fold per 4 K of superheat


def bump_sites(bump_pitch_um: float, radius_mm: float) -> float:
    """Bumps on a wafer: BUMP_FILL·πR²/p²."""
    return BUMP_FILL * math.pi * (radius_mm * 1e3) ** 2 / bump_pitch_um**2


def runout_opens(bump_pitch_um: float, radius_mm: float, edge_runout_um: float) -> float:
    """Joints misregistered by more than a pad radius (PAD_FRACTION·pitch/2): runout grows
    linearly with radius, so every bump beyond ρc = R·(pad radius)/runout misses its pad."""
    pad_radius = PAD_FRACTION * bump_pitch_um / 2.0
    if edge_runout_um <= pad_radius:
        return 0.0
    rho_c = radius_mm * pad_radius / edge_runout_um
    return BUMP_FILL * math.pi * ((radius_mm * 1e3) ** 2 - (rho_c * 1e3) ** 2) / bump_pitch_um**2


def nonwet_probability(alloy: str, temp_c: float) -> float:
    """Per joint; peaks below liquidus + 15 °C fail to wet (process-reference BALL)."""
    superheat = temp_c - LIQUIDUS_C[alloy]
    return NONWET_P0 * math.exp(-superheat / NONWET_SCALE_K)


HEAD_TO_BUMP = 0.85  # the bump sits this far from the stage temperature towards the head's
H_REF_UM = 30.0
# bump stiffness at 25 °C for a 30 µm bump (gf/µm) and the temperature over which it softens e-fold
STIFFNESS_25C: Mapping[str, float] = MappingProxyType({"SOLDER": 20.0, "AU": 60.0})
SOFTENING_K: Mapping[str, float] = MappingProxyType({"SOLDER": 80.0, "AU": 200.0})
COLLAPSE_LIMIT: Mapping[str, float] = MappingProxyType({"SOLDER": 0.5, "AU": 0.3})  # × height


def bump_temperature_c(head_c: float, stage_c: float) -> float:
    return stage_c + HEAD_TO_BUMP * (head_c - stage_c)


def bump_stiffness_gf_um(bump_type: str, temp_c: float, bump_height_um: float) -> float:
    """k_b(T): stiffer for short bumps, softening exponentially with temperature."""
    return (
        STIFFNESS_25C[bump_type]
        * (H_REF_UM / bump_height_um)
        * math.exp(-(temp_c - T_ROOM_C) / SOFTENING_K[bump_type])
    )


def tcb_collapse_um(
    bump_type: str, force_per_bump_gf: float, head_c: float, stage_c: float, bump_height_um: float
) -> float:
    """δ = F/(N·k_b(T)) = (force per bump)/k_b at the bump temperature."""
    t_bump = bump_temperature_c(head_c, stage_c)
    return force_per_bump_gf / bump_stiffness_gf_um(bump_type, t_bump, bump_height_um)


def tcb_open_fraction(collapse_um: float, spread_um: float, bump_count: float) -> float:
    """Bump heights ~ N(h, σ) with expected range `spread`: a bump opens when it is shorter
    than the tallest (h + spread/2) by more than δ, i.e. Φ((spread/2 − δ)/σ)."""
    if spread_um <= 0:
        return 0.0
    sigma = spread_um / expected_range(max(2, int(bump_count)))
    z = (spread_um / 2.0 - collapse_um) / sigma
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


# --- attach --------------------------------------------------------------------------------

ATTACH_RESIN: Mapping[str, str] = MappingProxyType(
    {"TC_EPOXY": "EPOXY", "AG_EPOXY": "EPOXY", "SILICONE": "SILICONE", "STRUCTURAL": "EPOXY"}
)
PASTE_VISCOSITY_PA_S: Mapping[str, float] = MappingProxyType(
    {"TC_EPOXY": 40.0, "AG_EPOXY": 20.0, "SILICONE": 30.0, "STRUCTURAL": 60.0}
)
BLT_MIN_UM: Mapping[str, float] = MappingProxyType(  # largest filler particles
    {"TC_EPOXY": 15.0, "AG_EPOXY": 10.0, "SILICONE": 20.0, "STRUCTURAL": 25.0}
)


def attach_bond_line(
    adhesive: str, h0_um: float, force_n: float, press_s: float, contact_mm: float, cure: float
) -> float:
    """Paste pressed in at room temperature (equal-area disc), floored by its filler, then
    shrunk by the cure; µm."""
    radius = contact_mm / math.sqrt(math.pi)
    squeezed = squeeze_thickness_um(h0_um, force_n, press_s, PASTE_VISCOSITY_PA_S[adhesive], radius)
    squeezed = max(BLT_MIN_UM[adhesive], squeezed)
    resin = RESINS[ATTACH_RESIN[adhesive]]
    return squeezed * (1.0 - resin.shrink * cure)


def thermal_resistance_k_w(
    blt_um: float, conductivity: float, area_mm2: float, void_pct: float
) -> float:
    """R_th = BLT/(k·A), over the void-free area."""
    return blt_um * 1e-6 / (conductivity * area_mm2 * 1e-6 * (1.0 - void_pct / 100.0))


# --- process constants -------------------------------------------------------------------

W2W_V0_PCT = 2.0  # at 1e-3 mbar, no outgassing, no pressure
W2W_P0_MPA = 0.2
W2W_ALIGN_SIGMA_UM = 0.7  # pre-bond
SLIP_RATIO = 0.4  # squeezed below 40 % of h₀: the wafer floats and slides
CHUCK_DT_SIGMA_K = 0.3
HEAT_K_PER_S = 20.0 / 60.0
COOL_K_PER_S = 10.0 / 60.0
UNLOAD_C = 50.0
VENT_S = 60.0

W2P_V0_PCT = 3.0
W2P_P0_MPA = 0.5
SUBSTRATE_OUTGAS: Mapping[str, float] = MappingProxyType(
    {"ORGANIC": 1.0, "SILICON": 0.0, "GLASS": 0.0, "GLASS_SODA_LIME": 0.0}
)
W2P_ALIGN_SIGMA_UM = 3.0
PURGE_S = 120.0
W2P_HEAT_K_PER_S = 1.0
W2P_COOL_K_PER_S = 0.5

FC_ALIGN_SIGMA_UM = 1.0
FC_BIAS_SIGMA_UM = 0.3
FC_LOAD_S = 30.0
FC_PICK_S = 3.0
FC_COOL_S = 1.0

LAM_V0_PCT: Mapping[str, float] = MappingProxyType({"VACUUM": 0.5, "AIR": 4.0})
LAM_P0_MPA = 0.3
FILM_RESIN: Mapping[str, str] = MappingProxyType(
    {
        "TC_FILM": "EPOXY",
        "DIE_ATTACH_FILM": "EPOXY",
        "CIRCUIT_FILM": "EPOXY",
        "ADHESIVE_FILM": "EPOXY",
    }
)
FILM_OUTGAS: Mapping[str, float] = MappingProxyType(
    {"TC_FILM": 0.2, "DIE_ATTACH_FILM": 0.2, "LEAD": 0.0, "CIRCUIT_FILM": 0.8,
     "ADHESIVE_FILM": 0.4}
)  # fmt: skip
FILM_SCALE_SIGMA_PPM = 2.0  # a film lot's artwork scale scatters this much about its label
RUNOUT_ALARM_UM = 50.0  # edge fiducials further apart than this: the press does not close
FILM_VISCOSITY_FACTOR = 1000.0  # filled film resins are made not to bleed
LAM_ALIGN_SIGMA_UM = 8.0
LEAD_IN_MM = 40.0
LAM_LOAD_S = 40.0

ATTACH_V0_PCT = 4.0
ATTACH_P0_MPA = 0.1
ATTACH_ALIGN_SIGMA_UM = 15.0
ATTACH_PICK_S = 4.0
ATTACH_LOAD_S = 30.0

NCF_TRAP_P = 1e-7  # per joint, at 0.5 MPa: resin left between bump and pad
NCF_OUTGAS = 0.3
TRAPPED_FILM_UM = 1.0  # resin left on a TCB bump tip through NCP/NCF at 10 gf ...
TRAP_FORCE_GF = 10.0  # ... thinner under more force (∝ F^-½)

ACF_CAPTURE = 0.35  # share of the particles over a pad that stay trapped on it
ACF_DEFORM_MPA = 40.0  # particles are fully deformed (contact) from this pressure
ACF_R_PARTICLE_MOHM = 500.0
TC_REF_C, TC_EA = 350.0, 60e3
TC_R_MOHM = {"AU_AU": 3.0, "AU_SN": 8.0}
GANG_LOAD_S, GANG_COOL_S = 40.0, 60.0

# process warnings, raised with the results (they do not stop the job)
VOID_WARN_PCT = 5.0
UNDERCURE_WARN = 0.8
SHEAR_WARN = 0.5  # CTE shear displacement / bond-line thickness
JOINT_SHEAR_WARN_PCT = 25.0  # solder joints at the wafer edge, on cool-down


def process_warnings(
    results: Mapping[str, float], *, cured: bool = False, shear: float = 0.0
) -> list[int]:
    """Warning codes for a finished job: voids, under-cure (when the job was meant to cure),
    CTE shear strain of the bond line, open joints."""
    out = []
    if results.get("void", 0.0) > VOID_WARN_PCT:
        out.append(380)
    if cured and results["cure"] < 100.0 * UNDERCURE_WARN:
        out.append(381)
    if shear > SHEAR_WARN:
        out.append(382)
    if results.get("opens", 0.0) > 0:
        out.append(383)
    return out


Planner = Callable[[Mapping[str, Value], random.Random], Plan]


class BonderSim(SimTool):
    interface = BONDER

    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        planners: dict[str, Planner] = {
            "w2w_adhesive": self._w2w,
            "wafer_to_panel": self._wafer_to_panel,
            "flip_chip": self._flip_chip,
            "laminate": self._laminate,
            "attach": self._attach,
            "gang_bond": self._gang_bond,
        }
        return planners[op.name](values, rng)

    # -- wafer to wafer -----------------------------------------------------------------------

    def _w2w(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        adhesive = str(v["adhesive"])
        h0, temp = float(v["adhesive_thickness"]), float(v["temp"])
        force_kn, time_s = float(v["force"]), float(v["time"]) * 60.0
        vacuum, diameter = float(v["vacuum"]), float(v["wafer_diameter"])
        radius = diameter / 2.0
        wear = {"bond_chuck": 1.0}

        ultimate = chamber_ultimate_mbar(adhesive)
        pump_s = pump_down_s(vacuum, ultimate)
        if math.isinf(pump_s):  # the pump-down times out before the wafers touch
            return Plan(PUMP_TIMEOUT_S, {}, {"bond_chuck": 0.0}, alarm=(301, 1.0))

        line = resin_bond_line(adhesive, h0, force_kn * 1e3, temp, time_s, radius)
        pressure = w2w_pressure_mpa(force_kn, diameter)
        voids = void_percent(
            W2W_V0_PCT * (vacuum / 1e-3) ** 0.25, pressure, W2W_P0_MPA, RESINS[adhesive].outgas
        ) * rng.lognormvariate(0.0, 0.15)
        blt = line.blt_um * rng.gauss(1.0, 0.01)
        # the wafer slides while the adhesive flows: more squeeze, more slip
        slip = 0.5 + 3.0 * (1.0 - line.squeezed_um / h0)
        sigma = math.hypot(W2W_ALIGN_SIGMA_UM, slip)
        chuck_dt = rng.gauss(0.0, CHUCK_DT_SIGMA_K)
        results = {
            "offset_x": rng.gauss(0.0, sigma),
            "offset_y": rng.gauss(0.0, sigma),
            "theta": rng.gauss(0.0, 0.5),
            "runout": abs(
                thermal_offset_um(
                    radius, SI_CTE_PPM, temp - T_ROOM_C + chuck_dt, SI_CTE_PPM, temp - T_ROOM_C
                )
            ),
            "blt": blt,
            "ttv": 0.2 + 0.04 * blt * rng.lognormvariate(0.0, 0.2),
            "void": voids,
            "cure": 100.0 * line.cure,
            "bond_strength": bond_strength_mpa(adhesive, line.cure, voids) * rng.gauss(1.0, 0.03),
            "vacuum": max(ultimate, vacuum * rng.uniform(0.7, 1.0)),
        }
        seconds = (
            pump_s
            + (temp - T_ROOM_C) / HEAT_K_PER_S
            + time_s
            + (temp - UNLOAD_C) / COOL_K_PER_S
            + VENT_S
        )
        results["duration"] = seconds / 60.0
        plan = Plan(seconds, results, wear, warnings=process_warnings(results, cured=True))
        if line.squeezed_um < SLIP_RATIO * h0:
            plan.alarm = (306, 0.5)
        return plan

    # -- wafer to panel -----------------------------------------------------------------------

    def _wafer_to_panel(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        substrate, alloy = str(v["substrate"]), str(v["bump_alloy"])
        pitch, temp = float(v["bump_pitch"]), float(v["temp"])
        pressure, time_s = float(v["pressure"]), float(v["time"]) * 60.0
        radius = float(v["wafer_diameter"]) / 2.0
        delta_t = temp - T_ROOM_C

        runout = cte_runout_um(substrate, delta_t, radius)
        bumps = bump_sites(pitch, radius)
        misregistered = runout_opens(pitch, radius, runout)
        nonwet = poisson(rng, bumps * nonwet_probability(alloy, temp))
        ncf = v["underfill"] == "NCF"
        trapped = poisson(rng, bumps * NCF_TRAP_P * (0.5 / pressure) ** 4) if ncf else 0
        chuck_dt = rng.gauss(0.0, CHUCK_DT_SIGMA_K)
        height = float(v["bump_height"])
        standoff = height * rng.gauss(1.0, 0.01)
        wafer_t, panel_t = float(v["wafer_thickness"]), float(v["panel_thickness"])
        outgas = SUBSTRATE_OUTGAS[substrate] + (NCF_OUTGAS if ncf else 0.0)
        results = {
            "offset_x": rng.gauss(0.0, W2P_ALIGN_SIGMA_UM),
            "offset_y": rng.gauss(0.0, W2P_ALIGN_SIGMA_UM),
            "theta": rng.gauss(0.0, 2.0),
            "runout": abs(runout + thermal_offset_um(radius, SI_CTE_PPM, chuck_dt, 0.0, 0.0)),
            "bumps": float(round(bumps)),
            "opens": float(round(misregistered) + nonwet + trapped),
            "void": void_percent(W2P_V0_PCT, pressure, W2P_P0_MPA, outgas)
            * rng.lognormvariate(0.0, 0.15),
            "standoff": standoff,
            "edge_shear": 100.0 * edge_shear(v),
            "warpage": panel_warpage_um(substrate, alloy, wafer_t, panel_t, 2.0 * radius)
            * rng.gauss(1.0, 0.05),
            "thickness": wafer_t * rng.gauss(1.0, 0.001) + standoff
            + panel_t * rng.gauss(1.0, 0.002),
        }  # fmt: skip
        seconds = (
            PURGE_S + delta_t / W2P_HEAT_K_PER_S + time_s + (temp - UNLOAD_C) / W2P_COOL_K_PER_S
        )
        results["duration"] = seconds / 60.0
        warnings = process_warnings(results)
        if results["edge_shear"] > JOINT_SHEAR_WARN_PCT:
            warnings.append(384)
        plan = Plan(seconds, results, {"bond_chuck": 1.0}, warnings=warnings)
        if runout > pitch / 2.0:  # bumps land on the neighbouring pads
            plan.alarm = (305, 0.5)
        return plan

    # -- flip chip --------------------------------------------------------------------------

    def _flip_chip(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        bump_type = str(v["bump_type"])
        n_bumps, height = float(v["bump_count"]), float(v["bump_height"])
        spread, pitch = float(v["bump_coplanarity"]), float(v["bump_pitch"])
        head, stage = float(v["head_temp"]), float(v["stage_temp"])
        die, dies = float(v["die_size"]), int(v["die_count"])
        wear = {"bond_head": float(dies), "collet": float(dies)}
        seconds = FC_LOAD_S + dies * (FC_PICK_S + float(v["bond_time"]) + FC_COOL_S)

        force = float(v["force_per_bump"])
        collapse = tcb_collapse_um(bump_type, force, head, stage, height)
        # through a non-conductive paste or film, a resin film stays on each bump tip
        trapped = (
            0.0 if v["underfill"] == "NONE" else TRAPPED_FILM_UM * math.sqrt(TRAP_FORCE_GF / force)
        )
        corner = die / math.sqrt(2.0)
        runout = abs(
            thermal_offset_um(
                corner,
                SI_CTE_PPM,
                head - T_ROOM_C,
                SUBSTRATE_CTE_PPM[str(v["substrate"])],
                stage - T_ROOM_C,
            )
        )
        opens = poisson(
            rng, dies * n_bumps * tcb_open_fraction(collapse - trapped, spread, n_bumps)
        )
        bias = (rng.gauss(0.0, FC_BIAS_SIGMA_UM), rng.gauss(0.0, FC_BIAS_SIGMA_UM))
        xs = [bias[0] + rng.gauss(0.0, FC_ALIGN_SIGMA_UM) for _ in range(dies)]
        ys = [bias[1] + rng.gauss(0.0, FC_ALIGN_SIGMA_UM) for _ in range(dies)]
        tilts = [abs(rng.gauss(0.0, 0.3)) * die / 10.0 for _ in range(dies)]
        results = {
            "offset_x": sum(xs) / dies,
            "offset_y": sum(ys) / dies,
            "offset_max": max(math.hypot(x, y) for x, y in zip(xs, ys, strict=True)),
            "theta": rng.gauss(0.0, 5.0),
            "runout": runout,
            "collapse": min(collapse, COLLAPSE_LIMIT[bump_type] * height) * rng.gauss(1.0, 0.02),
            "opens": float(opens),
            "tilt": max(tilts),
            "duration": seconds / 60.0,
        }
        results["standoff"] = height - results["collapse"]
        plan = Plan(seconds, results, wear, warnings=process_warnings(results))
        if collapse > COLLAPSE_LIMIT[bump_type] * height:  # the head runs into its Z limit
            plan.alarm = (307, 0.5 / dies)
        elif runout > pitch / 2.0:
            plan.alarm = (305, 0.5 / dies)
        return plan

    # -- lamination -------------------------------------------------------------------------

    def _laminate(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        material, film = str(v["material"]), float(v["film_thickness"])
        temp, pressure, time_s = float(v["temp"]), float(v["pressure"]), float(v["time"])
        width, length = float(v["work_width"]), float(v["work_length"])
        cure_temp, cure_s = float(v["cure_temp"]), float(v["cure_time"]) * 60.0
        if v["work_shape"] == "RECT":
            radius, run_mm = math.sqrt(width * length / math.pi), length
        else:
            radius, run_mm = width / 2.0, width
        force = pressure * math.pi * radius**2  # MPa × mm² = N

        thickness, cure = lamination_thickness(
            material, film, force, temp, time_s, radius, cure_temp, cure_s
        )
        film_used = (run_mm + LEAD_IN_MM) / 1000.0
        as_made = {  # the film lot's real scale, and the platen's real temperature
            **v,
            "artwork_scale": float(v["artwork_scale"]) + rng.gauss(0.0, FILM_SCALE_SIGMA_PPM),
            "temp": temp + rng.gauss(0.0, 1.0),
        }
        runout = lamination_runout_um(as_made)
        results = {
            "offset_x": rng.gauss(0.0, LAM_ALIGN_SIGMA_UM),
            "offset_y": rng.gauss(0.0, LAM_ALIGN_SIGMA_UM),
            "theta": rng.gauss(0.0, 20.0),
            "thickness": thickness * rng.gauss(1.0, 0.005),
            "void": void_percent(
                LAM_V0_PCT[str(v["atmosphere"])], pressure, LAM_P0_MPA, FILM_OUTGAS[material]
            )
            * rng.lognormvariate(0.0, 0.15),
            "cure": 100.0 * cure,
            "film_used": film_used,
        }
        seconds = LAM_LOAD_S + time_s + cure_s
        results["duration"] = seconds / 60.0
        results["runout"] = runout
        wear = {f"reel_{material.lower()}": film_used, "bond_head": 1.0}
        warnings = process_warnings(results, cured=cure_s > 0 and material != "LEAD")
        plan = Plan(seconds, results, wear, warnings=warnings)
        if material in PATTERNED_FILMS and runout > RUNOUT_ALARM_UM:
            plan.alarm = (305, LAM_LOAD_S / seconds)  # edge fiducials apart: the press stays open
        return plan

    # -- gang bond ----------------------------------------------------------------------------

    def _gang_bond(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        joint, temp = str(v["joint"]), float(v["temp"])
        pressure, time_s = float(v["pressure"]), float(v["time"])
        n, pad_mm = int(float(v["joints"])), float(v["pad_size"]) / 1000.0
        if joint == "ACF":
            lam = float(v["particle_density"]) * pad_mm**2 * ACF_CAPTURE
            contact = lam * min(1.0, pressure / ACF_DEFORM_MPA)  # deformed particles only
            p_open = math.exp(-contact)
            cure = cure_degree(RESINS["ACF"], temp, time_s)
            resistance = ACF_R_PARTICLE_MOHM / max(contact, 0.1)
        else:
            # diffusion bond quality grows with pressure, √time and Arrhenius in temperature
            q = (
                (pressure / 100.0)
                * math.sqrt(time_s / 2.0)
                * math.exp(-TC_EA / R_GAS * (1.0 / (temp + 273.15) - 1.0 / (TC_REF_C + 273.15)))
            )
            lam, p_open, cure, resistance = 0.0, math.exp(-8.0 * q), 0.0, TC_R_MOHM[joint]
        opens = poisson(rng, n * p_open)
        seconds = GANG_LOAD_S + time_s + GANG_COOL_S
        results = {
            "opens": float(opens),
            "contact_resistance": resistance * rng.lognormvariate(0.0, 0.1),
            "particles": lam * rng.gauss(1.0, 0.02),
            "cure": 100.0 * cure,
            "force": gang_force_kn(v),
            "duration": seconds / 60.0,
        }
        warnings = process_warnings(results, cured=joint == "ACF")
        return Plan(seconds, results, {"bond_head": 1.0}, warnings=warnings)

    # -- attach -----------------------------------------------------------------------------

    def _attach(self, v: Mapping[str, Value], rng: random.Random) -> Plan:
        part, material, adhesive = str(v["part"]), str(v["material"]), str(v["adhesive"])
        size, force = float(v["contact_size"]), float(v["force"])
        cure_temp, cure_s = float(v["cure_temp"]), float(v["cure_time"]) * 3600.0
        units = int(v["units"])
        resin = RESINS[ATTACH_RESIN[adhesive]]

        cure = cure_degree(resin, cure_temp, cure_s, alpha0=0.0)
        blt = attach_bond_line(
            adhesive, float(v["adhesive_thickness"]), force, float(v["press_time"]), size, cure
        ) * rng.gauss(1.0, 0.01)
        voids = void_percent(
            ATTACH_V0_PCT, force / size**2, ATTACH_P0_MPA, resin.outgas
        ) * rng.lognormvariate(0.0, 0.15)
        mate = SUBSTRATE_CTE_PPM[PART_MATES_ON[part]]
        dt = cure_temp - T_ROOM_C
        xs = [rng.gauss(0.0, ATTACH_ALIGN_SIGMA_UM) for _ in range(units)]
        ys = [rng.gauss(0.0, ATTACH_ALIGN_SIGMA_UM) for _ in range(units)]
        tilt_sigma = 2.0 * math.sqrt(10.0 / force) * size / 10.0
        results = {
            "offset_x": sum(xs) / units,
            "offset_y": sum(ys) / units,
            "offset_max": max(math.hypot(x, y) for x, y in zip(xs, ys, strict=True)),
            "theta": rng.gauss(0.0, 10.0),
            "runout": abs(
                thermal_offset_um(size / math.sqrt(2.0), PART_CTE_PPM[material], dt, mate, dt)
            ),
            "blt": blt,
            "void": voids,
            "tilt": max(abs(rng.gauss(0.0, tilt_sigma)) for _ in range(units)),
            "cure": 100.0 * cure,
            "thermal_resistance": thermal_resistance_k_w(
                blt, ADHESIVE_CONDUCTIVITY_W_MK[adhesive], size**2, voids
            ),
        }
        seconds = ATTACH_LOAD_S + units * (ATTACH_PICK_S + float(v["press_time"])) + cure_s
        results["duration"] = seconds / 60.0
        warnings = process_warnings(results, cured=True, shear=results["runout"] / blt)
        return Plan(
            seconds, results, {"bond_head": float(units), "collet": float(units)}, warnings=warnings
        )


def panel_warpage_um(
    substrate: str, alloy: str, wafer_um: float, panel_um: float, span_mm: float
) -> float:
    """Bow of a Si wafer joined to a panel (the joints couple them from the solidus down):
    bilayer curvature with Δε = Δα·(T_solidus − 25 °C), w = κL²/8."""
    strain = (SUBSTRATE_CTE_PPM[substrate] - SI_CTE_PPM) * 1e-6 * (SOLIDUS_C[alloy] - T_ROOM_C)
    kappa = bilayer_curvature(
        SUBSTRATE_MODULUS_GPA[substrate] * 1e9, panel_um * 1e-6, 130e9, wafer_um * 1e-6, strain
    )
    return abs(kappa) * (span_mm * 1e-3) ** 2 / 8.0 * 1e6


def lamination_thickness(
    material: str,
    film_um: float,
    force_n: float,
    temp_c: float,
    time_s: float,
    radius_mm: float,
    cure_temp_c: float,
    cure_s: float,
) -> tuple[float, float]:
    """(laminated thickness µm, degree of cure) of a film pressed at `temp_c` for `time_s`,
    then cured for `cure_s` at `cure_temp_c`. Leads are metal: no flow, no cure."""
    resin_name = FILM_RESIN.get(material)
    if resin_name is None:
        return film_um, 0.0
    resin = RESINS[resin_name]
    line = resin_bond_line(
        resin_name, film_um, force_n, temp_c, time_s, radius_mm, FILM_VISCOSITY_FACTOR
    )
    cure = line.cure
    if cure_s > 0:
        cure = cure_degree(resin, cure_temp_c, cure_s, alpha0=cure)
    return cure_shrunk_um(resin_name, line.squeezed_um, cure), cure
