"""Bonder (Modbus TCP): wafer-to-wafer adhesive, wafer-to-panel, flip-chip TCB, film/lead
lamination, and heat-spreader / stiffener / heat-sink attach (process-reference.md §2 BOND)."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

from drivers.interface import (
    Alarm,
    Consumable,
    Operation,
    Param,
    Qualification,
    Result,
    Rule,
    SetupField,
    ToolInterface,
    Value,
)


def _f32(x: float) -> float:
    """`x` as the Modbus f32 slot carries it. Used for range ends that f32 cannot hold exactly
    (1e-3 rounds up on the wire), so a setpoint the driver accepts is never refused by the tool
    for a rounding error."""
    value: float = struct.unpack(">f", struct.pack(">f", x))[0]
    return value


ADHESIVES = ("POLYIMIDE", "EPOXY", "BCB")
# bond temperature window per wafer-bonding adhesive, °C: PI may be cured in the bonder up to
# 350 °C; epoxy degrades above ~200 °C; B-staged BCB needs ≥ 180 °C to flow and cures by 250 °C
ADHESIVE_TEMP_C: Mapping[str, tuple[float, float]] = {
    "POLYIMIDE": (150.0, 350.0),
    "EPOXY": (150.0, 200.0),
    "BCB": (180.0, 250.0),
}
W2W_FORCE_KN_PER_200MM = (2.0, 20.0)  # force window on a 200 mm wafer; scales with its area
WAFER_DIAMETERS_MM = (150.0, 200.0, 300.0)  # bond chucks

SUBSTRATES = ("ORGANIC", "SILICON", "GLASS", "GLASS_SODA_LIME")
SI_CTE_PPM = 2.6  # ppm/K
# GLASS is a Si-matched borosilicate (3.2 ppm/K); soda-lime glass is 9 ppm/K
SUBSTRATE_CTE_PPM: Mapping[str, float] = {
    "ORGANIC": 17.0,
    "SILICON": 2.6,
    "GLASS": 3.2,
    "GLASS_SODA_LIME": 9.0,
}
SUBSTRATE_MODULUS_GPA: Mapping[str, float] = {
    "ORGANIC": 25.0,
    "SILICON": 130.0,
    "GLASS": 64.0,
    "GLASS_SODA_LIME": 72.0,
}
BUMP_ALLOYS = ("SAC305", "SNPB")
SOLIDUS_C: Mapping[str, float] = {"SAC305": 217.0, "SNPB": 183.0}
"""The joints freeze here on cool-down: CTE shear builds from this temperature to 25 °C."""
WAFER_UNDERFILLS = ("NONE", "NCF")
DIE_UNDERFILLS = ("NONE", "NCP", "NCF")
BUMP_TYPES = ("SOLDER", "AU")
FORCE_PER_BUMP_GF: Mapping[str, tuple[float, float]] = {"SOLDER": (1.0, 20.0), "AU": (30.0, 100.0)}
HEAD_FORCE_N = (0.5, 500.0)  # the TCB head's controllable force range (load cell)
GF_TO_N = 9.80665e-3

FILMS = ("TC_FILM", "DIE_ATTACH_FILM", "LEAD", "CIRCUIT_FILM", "ADHESIVE_FILM")
"""ADHESIVE_FILM covers the B-staged adhesive films, among them the non-conductive underfill
film (NCF) pre-laminated on a bumped wafer."""
PATTERNED_FILMS = ("LEAD", "CIRCUIT_FILM")
"""Films with a pattern that must land on the wafer's (leads, traces): their CTE run-out counts.
The others are blanket films (thermal film, die-attach film, adhesive film, non-conductive
underfill film)."""
FILM_CTE_PPM: Mapping[str, float] = {
    "TC_FILM": 30.0,
    "DIE_ATTACH_FILM": 60.0,
    "LEAD": 17.0,  # Cu leads on their carrier
    "CIRCUIT_FILM": 16.0,  # polyimide film with Cu traces
    "ADHESIVE_FILM": 60.0,
}
PARTS = ("FLAT_SPREADER", "CAP_SPREADER", "STIFFENER", "HEAT_SINK")
PART_MATERIALS = ("CU", "SI", "ALSIC", "AL")
PART_CTE_PPM: Mapping[str, float] = {"CU": 17.0, "SI": 2.6, "ALSIC": 7.0, "AL": 23.0}
# what the part is glued to: spreaders sit on the die back (Si), stiffener rings and heat sinks
# on the organic substrate (001 cl. 6–13, 003 cl. 8)
PART_MATES_ON: Mapping[str, str] = {
    "FLAT_SPREADER": "SILICON",
    "CAP_SPREADER": "SILICON",
    "STIFFENER": "ORGANIC",
    "HEAT_SINK": "ORGANIC",
}
ATTACH_ADHESIVES = ("TC_EPOXY", "AG_EPOXY", "SILICONE", "STRUCTURAL")
ADHESIVE_CONDUCTIVITY_W_MK: Mapping[str, float] = {
    "TC_EPOXY": 1.5,
    "AG_EPOXY": 4.0,
    "SILICONE": 3.0,
    "STRUCTURAL": 0.3,
}


JOINTS = ("ACF", "AU_AU", "AU_SN")
# joint -> (temperature window °C, pressure window on the lead area MPa, time window s)
GANG_WINDOW: Mapping[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "ACF": ((160.0, 220.0), (20.0, 100.0), (5.0, 30.0)),
    "AU_AU": ((300.0, 450.0), (50.0, 150.0), (1.0, 10.0)),
    "AU_SN": ((290.0, 330.0), (10.0, 50.0), (2.0, 20.0)),
}
GANG_FORCE_KN = 300.0  # the wafer press's force capacity


def work_area_mm2(shape: str, width_mm: float, length_mm: float) -> float:
    return math.pi * (width_mm / 2.0) ** 2 if shape == "ROUND" else width_mm * length_mm


def gang_force_kn(v: Mapping[str, Value]) -> float:
    """Pressure on the lead area × the lead area's share of the work."""
    area = work_area_mm2(str(v["work_shape"]), float(v["work_width"]), float(v["work_length"]))
    return float(v["pressure"]) * area * float(v["lead_area"]) / 100.0 / 1000.0


def lamination_runout_um(v: Mapping[str, Value]) -> float:
    """Edge misregistration of a patterned film at the press temperature, µm: the film and the
    wafer grow apart by (α_film − α_Si)·ΔT·r from the 25 °C alignment, less the artwork's
    pre-scale; 0 for a blanket film."""
    material = str(v["material"])
    if material not in PATTERNED_FILMS:
        return 0.0
    radius_um = float(v["work_width"]) / 2.0 * 1000.0
    if v["work_shape"] == "RECT":
        radius_um = math.hypot(float(v["work_width"]), float(v["work_length"])) / 2.0 * 1000.0
    grow = (FILM_CTE_PPM[material] - SI_CTE_PPM) * (float(v["temp"]) - 25.0)
    return abs(grow + float(v["artwork_scale"])) * 1e-6 * radius_um


def edge_shear(v: Mapping[str, Value]) -> float:
    """Cool-down shear strain of the outermost joints of a wafer on a panel: the joints freeze
    at the solidus, and from there to 25 °C the panel and the wafer shrink apart by
    Δα·ΔT·r across the joint height."""
    d_alpha = abs(SUBSTRATE_CTE_PPM[str(v["substrate"])] - SI_CTE_PPM) * 1e-6
    delta_t = SOLIDUS_C[str(v["bump_alloy"])] - 25.0
    radius_um = float(v["wafer_diameter"]) / 2.0 * 1000.0
    return d_alpha * delta_t * radius_um / float(v["bump_height"])


def w2w_pressure_mpa(force_kn: float, diameter_mm: float) -> float:
    """Mean bond pressure of a wafer bond."""
    return force_kn * 1e3 / (math.pi * (diameter_mm / 2.0) ** 2)  # N/mm² = MPa


W2W_PRESSURE_MPA = tuple(w2w_pressure_mpa(f, 200.0) for f in W2W_FORCE_KN_PER_200MM)


def _diameter(v: Mapping[str, Value]) -> str | None:
    d = float(v["wafer_diameter"])
    if d not in WAFER_DIAMETERS_MM:
        return f"wafer_diameter {d:g} mm has no chuck (150, 200 or 300 mm)"
    return None


def _adhesive_temp(v: Mapping[str, Value]) -> str | None:
    adhesive, temp = str(v["adhesive"]), float(v["temp"])
    lo, hi = ADHESIVE_TEMP_C[adhesive]
    if not lo <= temp <= hi:
        return f"temp {temp:g} °C is outside the {adhesive} window {lo:g}–{hi:g} °C"
    return None


def _w2w_force(v: Mapping[str, Value]) -> str | None:
    force, d = float(v["force"]), float(v["wafer_diameter"])
    p = w2w_pressure_mpa(force, d)
    lo, hi = W2W_PRESSURE_MPA
    if not lo * 0.9999 <= p <= hi * 1.0001:
        f_lo, f_hi = (x * (d / 200.0) ** 2 for x in W2W_FORCE_KN_PER_200MM)
        return (
            f"force {force:g} kN on {d:g} mm is {p:.3g} MPa: allowed {f_lo:.3g}–{f_hi:.3g} kN"
            f" ({lo:.2g}–{hi:.2g} MPa)"
        )
    return None


def _force_per_bump(v: Mapping[str, Value]) -> str | None:
    bump, f = str(v["bump_type"]), float(v["force_per_bump"])
    lo, hi = FORCE_PER_BUMP_GF[bump]
    if not lo <= f <= hi:
        return f"force_per_bump {f:g} gf is outside the {bump} window {lo:g}–{hi:g} gf"
    return None


def _head_force(v: Mapping[str, Value]) -> str | None:
    total = float(v["force_per_bump"]) * float(v["bump_count"]) * GF_TO_N
    lo, hi = HEAD_FORCE_N
    if not lo <= total <= hi:
        return (
            f"total force {total:.3g} N is outside the head's {lo:g}–{hi:g} N"
            " (force_per_bump × bump_count)"
        )
    return None


def _coplanarity(v: Mapping[str, Value]) -> str | None:
    spread, height = float(v["bump_coplanarity"]), float(v["bump_height"])
    if spread >= height:
        return f"bump_coplanarity {spread:g} µm must be below bump_height {height:g} µm"
    return None


def _lead_cure(v: Mapping[str, Value]) -> str | None:
    if v["material"] == "LEAD" and float(v["cure_time"]) > 0:
        return "material LEAD has nothing to cure: cure_time must be 0"
    return None


def _rect(v: Mapping[str, Value]) -> str | None:
    if v["work_shape"] == "RECT" and float(v["work_length"]) < 50:
        return "work_shape RECT needs work_length ≥ 50 mm"
    return None


def _gang_window(v: Mapping[str, Value]) -> str | None:
    joint = str(v["joint"])
    for name, unit, (lo, hi) in zip(
        ("temp", "pressure", "time"), ("°C", "MPa", "s"), GANG_WINDOW[joint], strict=True
    ):
        x = float(v[name])
        if not lo <= x <= hi:
            return f"{name} {x:g} {unit} outside the {joint} window {lo:g}–{hi:g} {unit}"
    return None


def _gang_force(v: Mapping[str, Value]) -> str | None:
    force = gang_force_kn(v)
    if force > GANG_FORCE_KN:
        return (
            f"press force {force:.0f} kN > {GANG_FORCE_KN:g} kN capacity (pressure on"
            f" {float(v['lead_area']):g} % of the work area)"
        )
    return None


def _w2p_underfill(v: Mapping[str, Value]) -> str | None:
    if v["underfill"] == "NCF" and float(v["pressure"]) < NCF_MIN_MPA:
        return (
            f"pressure {float(v['pressure']):g} MPa < {NCF_MIN_MPA:g} MPa: the bumps cannot"
            " push through a pre-applied NCF"
        )
    return None


def _si_part(v: Mapping[str, Value]) -> str | None:
    if v["material"] == "SI" and v["part"] != "FLAT_SPREADER":
        return f"material SI comes only as FLAT_SPREADER, not {v['part']}"
    return None


NCF_MIN_MPA = 0.3  # a pre-applied NCF needs this bond pressure for the bumps to displace it

_OFFSETS = (
    Result("offset_x", "µm", "placement offset in x (mean over the job's units)"),
    Result("offset_y", "µm", "placement offset in y (mean over the job's units)"),
)
_THETA = Result("theta", "mdeg", "rotation error")
_DURATION = Result("duration", "min", "time from load to unload")


BONDER = ToolInterface(
    kind="bonder",
    id_prefix="BOND",
    qualification=Qualification(
        "w2w_adhesive",
        {
            "adhesive": "BCB",
            "adhesive_thickness": "4 µm",
            "temp": "250 °C",
            "force": "10 kN",
            "time": "60 min",
        },
    ),
    consumable_alarms={
        "bond_head": (311, 390),
        "collet": (312, 391),
        "bond_chuck": (313, 392),
        **{f"reel_{f.lower()}": (314, 393) for f in FILMS},
    },
    protocol="modbus",
    title="Bonder",
    vendor="FABLINE-SIM",
    model="UNIBOND-8",
    doc=(
        "One bonder for every bonding step of the flows: wafer-to-wafer adhesive bonding in"
        " vacuum (000), wafer-to-panel bonding through bumps (001), flip-chip thermocompression"
        " of dies (003), lamination of thermally conductive film, leads or a circuit film"
        " (001, 002 cl. 45/48/49), and adhesive attach of heat spreaders, stiffener rings and"
        " heat sinks (001 cl. 6–13, 003 cl. 8), and the gang bond that joins a laminated"
        " film's trace ends to the pads (ACF or thermocompression, 002 cl. 48). Models:"
        " misregistration r·(α₁ΔT₁ − α₂ΔT₂) with CTEs ORGANIC 17, SILICON 2.6, GLASS 3.2"
        " (borosilicate), GLASS_SODA_LIME 9 ppm/K (Si die/wafer 2.6); a patterned film (leads,"
        " circuit film) runs out |(α_film − α_Si)·ΔT + artwork_scale|·r at its edge (LEAD 17,"
        " CIRCUIT_FILM 16 ppm/K); the outermost joints of a wafer on a panel shear"
        " Δα·(T_solidus − 25 °C)·r/h on cool-down; adhesive squeeze 1/h² = 1/h₀² + 4Ft/(3πμR⁴)"
        " until the resin gels; voids"
        " v₀e^(−P/P₀)(1 + k·outgas); cure dα/dt = A·e^(−Ea/RT)(1−α)ⁿ with bond strength ∝ α;"
        " TCB collapse δ = F/(N·k_b(T)), bumps open where δ is below the bump-height spread;"
        " R_th = BLT/(kA). Wafer-to-panel runout beyond half the bump pitch alarms"
        " OFFSET_TOLERANCE, as does a patterned film whose run-out exceeds 50 µm (the edge"
        " fiducials are checked before the press closes). ACF joints hold Poisson(λ) particles,"
        " λ = density × pad area × 0.35 capture; a joint with none is open. Process warnings"
        " (380–384) flag the job's voids, under-cure, CTE shear, opens and joint shear without"
        " stopping it."
    ),
    operations=(
        Operation(
            "w2w_adhesive",
            1,
            "Bond a blank wafer, non-device face down, onto the adhesive-coated (B-staged) top"
            " of a wafer stack in vacuum, under force and heat (000 cl. 11, PI or epoxy cl. 15).",
            params=(
                Param("adhesive", choices=ADHESIVES, doc="B-staged adhesive on the stack"),
                Param("adhesive_thickness", "µm", 0.5, 50, doc="adhesive as coated (h₀)"),
                Param("temp", "°C", 150, 350, doc="bond temperature (window per adhesive)"),
                Param("force", "kN", 2, 60, doc="bond force (2–20 kN per 200 mm of wafer)"),
                Param("time", "min", 10, 60, doc="time at temperature under force"),
                Param(
                    "vacuum",
                    "mbar",
                    _f32(1e-6),
                    _f32(1e-3),
                    default=1e-4,
                    doc="chamber pressure to reach before contact",
                ),
                Param("wafer_diameter", "mm", 150, 300, default=200.0, doc="150, 200 or 300"),
            ),
            results=(
                *_OFFSETS,
                _THETA,
                Result("runout", "µm", "edge misregistration from the chucks' ΔT mismatch"),
                Result("blt", "µm", "bond-line thickness after squeeze and cure shrink"),
                Result("ttv", "µm", "bond-line total thickness variation"),
                Result("void", "%", "void area (IR)"),
                Result("cure", "%", "degree of cure of the adhesive at unload"),
                Result("bond_strength", "MPa", "shear strength (∝ degree of cure)"),
                Result("vacuum", "mbar", "chamber pressure reached"),
                _DURATION,
            ),
            rules=(
                Rule(
                    "temp within the adhesive's window: POLYIMIDE 150–350 °C (cure to 350),"
                    " EPOXY 150–200 °C, BCB 180–250 °C",
                    _adhesive_temp,
                ),
                Rule(
                    "force gives 0.064–0.64 MPa (2–20 kN on 200 mm, 4.5–45 kN on 300 mm)",
                    _w2w_force,
                ),
                Rule("wafer_diameter is 150, 200 or 300 mm", _diameter),
            ),
        ),
        Operation(
            "wafer_to_panel",
            2,
            "Attach a bumped wafer face down onto a substrate panel (reflow/thermocompression"
            " in N₂, 001 cl. 19). The Si wafer and the panel grow apart by"
            " (α_sub − α_Si)·ΔT·r from the room-temperature alignment.",
            params=(
                Param("substrate", choices=SUBSTRATES, doc="panel material (sets its CTE)"),
                Param("bump_pitch", "µm", 40, 1000, doc="bump pitch on the wafer"),
                Param(
                    "bump_alloy",
                    choices=BUMP_ALLOYS,
                    default="SAC305",
                    doc="SAC305 liquidus 220 °C, SnPb 183 °C",
                ),
                Param("temp", "°C", 220, 250, doc="bond temperature"),
                Param("pressure", "MPa", 0.1, 1, doc="bond pressure over the wafer"),
                Param("time", "min", 1, 10, doc="time at temperature"),
                Param("wafer_diameter", "mm", 150, 300, default=200.0, doc="150, 200 or 300"),
                Param(
                    "bump_height",
                    "µm",
                    10,
                    200,
                    default=50.0,
                    doc="joint height (stand-off) after the bond",
                ),
                Param("wafer_thickness", "µm", 50, 1000, default=725.0, doc="bumped wafer"),
                Param("panel_thickness", "µm", 100, 3000, default=400.0, doc="substrate panel"),
                Param(
                    "underfill",
                    choices=WAFER_UNDERFILLS,
                    default="NONE",
                    doc="NCF: a non-conductive film pre-laminated on the bumped wafer, displaced"
                    " by the bumps and cured in the bond (needs ≥ 0.3 MPa)",
                ),
            ),
            results=(
                *_OFFSETS,
                _THETA,
                Result("runout", "µm", "CTE-mismatch misregistration at the wafer edge"),
                Result("bumps", "count", "bump joints on the wafer"),
                Result(
                    "opens",
                    "count",
                    "open joints (misregistered, not wetted, resin trapped); run-out puts"
                    " them at the wafer edge",
                    defect="open bump",
                    at_edge=True,
                ),
                Result("void", "%", "void area in the joints (X-ray)"),
                _DURATION,
                Result("standoff", "µm", "wafer-to-panel gap (joint height) after the bond"),
                Result(
                    "edge_shear",
                    "%",
                    "shear strain of the outermost joints on cool-down, Δα·(T_solidus − 25 °C)·r/h",
                ),
                Result("warpage", "µm", "bow of the bonded wafer and panel at 25 °C"),
                Result("thickness", "µm", "wafer + stand-off + panel"),
            ),
            rules=(
                Rule("wafer_diameter is 150, 200 or 300 mm", _diameter),
                Rule("a pre-applied NCF needs pressure ≥ 0.3 MPa", _w2p_underfill),
            ),
        ),
        Operation(
            "flip_chip",
            3,
            "Pick dies and thermocompression-bond them face down onto exposed bump ends"
            " (003 cl. 1). Each bump collapses by δ = F/k_b(T) under its share of the force.",
            params=(
                Param("bump_type", choices=BUMP_TYPES, doc="solder or Au (stud) bumps"),
                Param("bump_count", "count", 4, 20000, integer=True, doc="bumps per die"),
                Param("bump_height", "µm", 5, 150, doc="bump height before bonding"),
                Param(
                    "bump_coplanarity",
                    "µm",
                    0,
                    50,
                    default=3.0,
                    doc="bump-height spread (range) of the landing sites",
                ),
                Param("bump_pitch", "µm", 20, 1000, doc="bump pitch"),
                Param("force_per_bump", "gf", 1, 100, doc="solder 1–20 gf, Au 30–100 gf"),
                Param("head_temp", "°C", 250, 350, doc="bond-head temperature"),
                Param("stage_temp", "°C", 60, 150, default=100.0, doc="stage temperature"),
                Param("bond_time", "s", 2, 10, doc="time under force per die"),
                Param("die_size", "mm", 1, 30, doc="die edge length (square die)"),
                Param("substrate", choices=SUBSTRATES, default="ORGANIC", doc="sets its CTE"),
                Param(
                    "die_count",
                    "count",
                    1,
                    1000,
                    integer=True,
                    default=1.0,
                    doc="dies placed by this job",
                ),
                Param(
                    "underfill",
                    choices=DIE_UNDERFILLS,
                    default="NONE",
                    doc="NCP (paste dispensed on each site) or NCF (film on the die) cured in"
                    " the bond: fills the stand-off; the bumps must push through it",
                ),
            ),
            results=(
                *_OFFSETS,
                Result("offset_max", "µm", "largest placement offset of any die"),
                _THETA,
                Result("runout", "µm", "CTE misregistration at the die corner (head vs stage)"),
                Result("collapse", "µm", "bump collapse δ"),
                Result("opens", "count", "open bumps over all dies", defect="open bump"),
                Result("tilt", "µm", "largest die tilt (height difference across a die)"),
                _DURATION,
                Result("standoff", "µm", "die-to-substrate gap after the bond, height − δ"),
            ),
            rules=(
                Rule("force_per_bump: SOLDER 1–20 gf, AU 30–100 gf", _force_per_bump),
                Rule("total force force_per_bump × bump_count is 0.5–500 N", _head_force),
                Rule("bump_coplanarity below bump_height", _coplanarity),
            ),
        ),
        Operation(
            "laminate",
            4,
            "Laminate a film, leads or a circuit film onto a wafer or panel with a heated"
            " press (001 step 3 TC film; 002 cl. 45 leads, cl. 48–49 circuit film), optionally"
            " curing it in the tool.",
            params=(
                Param("material", choices=FILMS, setup="films", doc="what is laminated"),
                Param("film_thickness", "µm", 5, 200, doc="film or lead thickness as supplied"),
                Param("temp", "°C", 80, 180, doc="press temperature"),
                Param("pressure", "MPa", 0.1, 1, doc="press pressure"),
                Param("time", "s", 1, 60, doc="press time"),
                Param("atmosphere", choices=("VACUUM", "AIR"), default="VACUUM"),
                Param("work_shape", choices=("ROUND", "RECT"), default="ROUND"),
                Param(
                    "work_width", "mm", 50, 320, default=200.0, doc="wafer diameter, or panel width"
                ),
                Param("work_length", "mm", 0, 320, default=0.0, doc="panel length (RECT)"),
                Param("cure_temp", "°C", 100, 200, default=150.0, doc="in-tool cure"),
                Param("cure_time", "min", 0, 120, default=0.0, doc="0: no in-tool cure"),
                Param(
                    "artwork_scale",
                    "ppm",
                    -5000,
                    5000,
                    default=0.0,
                    doc="scale of a patterned film's artwork against the wafer's pattern at"
                    " 25 °C (negative: drawn smaller), to cancel the film's growth at the press"
                    " temperature; the film lot's measured value",
                ),
            ),
            results=(
                *_OFFSETS,
                _THETA,
                Result("thickness", "µm", "laminated thickness"),
                Result("void", "%", "void area under the film"),
                Result("cure", "%", "degree of cure at unload (0 for leads)"),
                Result("film_used", "m", "film or lead tape used, with lead-in"),
                _DURATION,
                Result(
                    "runout",
                    "µm",
                    "edge misregistration of a patterned film at the press temperature,"
                    " |(α_film − α_Si)·ΔT + scale|·r (0 for a blanket film)",
                ),
            ),
            rules=(
                Rule("LEAD takes no cure (cure_time 0)", _lead_cure),
                Rule("RECT work needs work_length", _rect),
            ),
        ),
        Operation(
            "attach",
            5,
            "Place parts on dispensed adhesive and cure them under force: flat or cap heat"
            " spreaders on the die back, stiffener rings and heat sinks on the substrate"
            " (001 cl. 6–13, 003 cl. 8).",
            params=(
                Param("part", choices=PARTS),
                Param("material", choices=PART_MATERIALS, doc="part material (sets its CTE)"),
                Param("adhesive", choices=ATTACH_ADHESIVES, doc="dispensed adhesive"),
                Param(
                    "adhesive_thickness",
                    "µm",
                    10,
                    300,
                    default=60.0,
                    doc="adhesive as dispensed (h₀)",
                ),
                Param("contact_size", "mm", 2, 60, doc="edge of the square bonded footprint"),
                Param("force", "N", 1, 20, doc="placement and clamp force"),
                Param("press_time", "s", 0.5, 10, default=2.0, doc="placement dwell"),
                Param("cure_temp", "°C", 125, 175, doc="clamped cure temperature"),
                Param("cure_time", "h", 0.5, 2, doc="clamped cure time"),
                Param(
                    "units",
                    "count",
                    1,
                    1000,
                    integer=True,
                    default=1.0,
                    doc="parts placed by this job",
                ),
                Param(
                    "clearance",
                    "µm",
                    0,
                    2000,
                    default=0.0,
                    doc="gap the part leaves over the die beneath it (a drop-in heat sink on"
                    " legs); 0: bonded face to face",
                ),
            ),
            results=(
                *_OFFSETS,
                Result("offset_max", "µm", "largest placement offset of any part"),
                _THETA,
                Result("runout", "µm", "part-to-mate CTE shear locked in at the footprint corner"),
                Result("blt", "µm", "bond-line thickness"),
                Result("void", "%", "void area in the bond line"),
                Result("tilt", "µm", "largest part tilt across the footprint"),
                Result("cure", "%", "degree of cure of the adhesive"),
                Result("thermal_resistance", "K/W", "bond line BLT/(k·A·(1 − void))"),
                _DURATION,
            ),
            rules=(Rule("SI parts are flat spreaders only", _si_part),),
        ),
        Operation(
            "gang_bond",
            6,
            "Join every trace or lead end of a laminated film to its pad at once in the wafer"
            " press (002 cl. 48): ACF (anisotropic conductive film or paste between them,"
            " particles trapped and deformed, resin cured) or thermocompression (AU_AU, or"
            " AU_SN eutectic). A lamination through a non-conductive adhesive makes no contact.",
            params=(
                Param("joint", choices=JOINTS, doc="ACF, AU_AU thermocompression, AU_SN eutectic"),
                Param("temp", "°C", 150, 450, doc="press (thermode) temperature"),
                Param("pressure", "MPa", 1, 150, doc="pressure on the lead area"),
                Param("time", "s", 1, 60, doc="time under pressure"),
                Param("lead_area", "%", 0.1, 30, doc="share of the work area under the leads"),
                Param("joints", "count", 1, 10_000_000, integer=True, doc="joints per work piece"),
                Param("pad_size", "µm", 20, 500, doc="edge of the (square) joint area"),
                Param(
                    "particle_density",
                    "count",
                    0,
                    100_000,
                    default=0.0,
                    doc="ACF conductive particles per mm² (0 for thermocompression)",
                ),
                Param("work_shape", choices=("ROUND", "RECT"), default="ROUND"),
                Param("work_width", "mm", 50, 320, default=300.0, doc="wafer diameter or width"),
                Param("work_length", "mm", 0, 320, default=0.0, doc="panel length (RECT)"),
            ),
            results=(
                Result("opens", "count", "joints without electrical contact", defect="open bump"),
                Result("contact_resistance", "mΩ", "mean joint resistance"),
                Result("particles", "count", "ACF particles trapped per joint, mean (0 for TC)"),
                Result("cure", "%", "degree of cure of the ACF resin (0 for TC)"),
                Result("force", "kN", "press force"),
                _DURATION,
            ),
            rules=(
                Rule(
                    "temp, pressure and time inside the joint's window: "
                    + "; ".join(
                        f"{j} {t[0]:g}–{t[1]:g} °C, {p[0]:g}–{p[1]:g} MPa, {s[0]:g}–{s[1]:g} s"
                        for j, (t, p, s) in GANG_WINDOW.items()
                    ),
                    _gang_window,
                ),
                Rule(f"pressure × lead area ≤ the press's {GANG_FORCE_KN:g} kN", _gang_force),
                Rule(
                    "ACF needs a particle_density > 0",
                    lambda v: (
                        "joint ACF needs particle_density > 0"
                        if v["joint"] == "ACF" and float(v["particle_density"]) <= 0
                        else None
                    ),
                ),
            ),
        ),
    ),
    alarms=(
        Alarm(301, "VACUUM_NOT_REACHED", "chamber vacuum not reached"),
        Alarm(302, "TEMP_DEVIATION", "temperature deviation from setpoint"),
        Alarm(303, "FORCE_DEVIATION", "bond force deviation from setpoint"),
        Alarm(304, "MARK_NOT_FOUND", "alignment mark not found"),
        Alarm(305, "OFFSET_TOLERANCE", "offset out of tolerance (misregistration > ½ bump pitch)"),
        Alarm(306, "WAFER_SLIP", "wafer slip: adhesive squeezed out, wafer floated"),
        Alarm(307, "HEAD_COLLISION", "bond head collision / Z limit (bump collapse over limit)"),
        Alarm(308, "PICK_FAIL", "pick fail (die or part not picked)"),
        Alarm(309, "MATERIAL_EXPIRED", "adhesive or film past its floor life"),
        Alarm(310, "N2_PURGE", "N₂ purge low / O₂ high"),
        Alarm(311, "BOND_HEAD_WORN", "bond head at its cycle limit: replace it"),
        Alarm(312, "COLLET_WORN", "pick collet at its cycle limit: replace it"),
        Alarm(313, "BOND_CHUCK_WORN", "wafer bond chuck at its cycle limit: replace it"),
        Alarm(314, "REEL_EMPTY", "film or lead reel empty: replace it"),
        Alarm(380, "VOID_HIGH", "void area above 5 %", warning=True),
        Alarm(381, "UNDERCURED", "adhesive below 80 % cure: post-cure it", warning=True),
        Alarm(382, "CTE_SHEAR_HIGH", "bond-line CTE shear strain above 50 %", warning=True),
        Alarm(383, "OPENS_DETECTED", "open joints detected", warning=True),
        Alarm(
            384,
            "JOINT_SHEAR_HIGH",
            "outermost joints sheared above 25 % on cool-down",
            warning=True,
        ),
        Alarm(390, "BOND_HEAD_WARNING", "bond head above 90 % of its cycles", warning=True),
        Alarm(391, "COLLET_WARNING", "pick collet above 90 % of its cycles", warning=True),
        Alarm(392, "BOND_CHUCK_WARNING", "bond chuck above 90 % of its cycles", warning=True),
        Alarm(393, "REEL_LOW", "a film or lead reel is below 10 %", warning=True),
    ),
    consumables=(
        Consumable("bond_head", "count", 200_000.0, "bond cycles (TCB, lamination, attach)"),
        Consumable("collet", "count", 50_000.0, "die and part picks"),
        Consumable("bond_chuck", "count", 5_000.0, "wafer bonds (w2w, wafer-to-panel)"),
        *(
            Consumable(f"reel_{f.lower()}", "m", 100.0, f"{f} left on the reel", supply=True)
            for f in FILMS
        ),
    ),
    setup=(SetupField("films", FILMS, doc="film and lead reels mounted on the laminator"),),
    default_setup={"films": ("TC_FILM", "LEAD", "CIRCUIT_FILM", "ADHESIVE_FILM")},
)
